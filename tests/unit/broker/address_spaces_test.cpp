// The descriptors kept for writing results into a transparent caller (broker/notify/address_spaces.hpp):
// kept only while they provably name the thread's current address space.
#include "broker/notify/address_spaces.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <thread>
#include <utility>

#include "broker/core/process_tree.hpp"

namespace fdbroker::broker {
namespace {

// Opens thread tid's memory and map as the broker does, with its fingerprint.
AddressSpace open_space(pid_t tid) {
    AddressSpace space;
    space.tid = tid;
    char path[40];
    std::snprintf(path, sizeof path, "/proc/%d/mem", tid);
    space.mem.reset(::open(path, O_RDWR | O_CLOEXEC));
    std::snprintf(path, sizeof path, "/proc/%d/maps", tid);
    space.maps.reset(::open(path, O_RDONLY | O_CLOEXEC));
    if (space.mem) space.fingerprint();
    return space;
}

bool has_thread_pidfds() {
    const unique_fd probe(open_thread_pidfd(::gettid()));
    return static_cast<bool>(probe);
}

TEST(AddressSpace, IsCurrentUntilItsThreadExits) {
    if (!has_thread_pidfds()) GTEST_SKIP() << "no PIDFD_THREAD before Linux 6.9: nothing is kept";
    std::promise<pid_t> tid;
    std::promise<void> leave;
    std::thread thread([&] {
        tid.set_value(::gettid());
        leave.get_future().wait();
    });
    const AddressSpace space = open_space(tid.get_future().get());
    ASSERT_TRUE(space.pidfd) << "a thread's pidfd and random bytes were not had";
    EXPECT_TRUE(space.still_current());
    leave.set_value();
    thread.join();
    // Its id may now go to another thread, perhaps a fork's with a copy of this memory.
    EXPECT_FALSE(space.still_current());
}

TEST(AddressSpace, IsNotCurrentOnceItsThreadExitedThoughItsIdNamesAThreadWithTheSameMemory) {
    // A reused thread id may name a fork of the thread that had it, with a copy of its memory (random
    // bytes included): only the thread's own pidfd tells. Simulated with a second thread of this
    // process standing in for the new holder of the id.
    if (!has_thread_pidfds()) GTEST_SKIP() << "no PIDFD_THREAD before Linux 6.9: nothing is kept";
    std::promise<pid_t> tid;
    std::promise<void> leave;
    std::thread thread([&] {
        tid.set_value(::gettid());
        leave.get_future().wait();
    });
    AddressSpace space = open_space(tid.get_future().get());
    ASSERT_TRUE(space.pidfd);
    space.tid = ::gettid();
    EXPECT_TRUE(space.still_current());
    leave.set_value();
    thread.join();
    EXPECT_FALSE(space.still_current());
}

TEST(AddressSpace, IsNotCurrentOnceItsThreadExecs) {
    if (!has_thread_pidfds()) GTEST_SKIP() << "no PIDFD_THREAD before Linux 6.9: nothing is kept";
    int go[2];
    ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        char byte = 0;
        if (::read(go[0], &byte, 1) == 1) ::execl("/bin/sleep", "sleep", "5", static_cast<char*>(nullptr));
        ::_exit(1);
    }
    ::close(go[0]);
    const AddressSpace space = open_space(child);
    ASSERT_TRUE(space.pidfd);
    EXPECT_TRUE(space.still_current());
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    ::close(go[1]);
    // Same thread, alive: only its address space changed.
    bool current = true;
    for (int i = 0; i < 500 && current; ++i) {
        current = space.still_current();
        if (current) ::usleep(2000);
    }
    EXPECT_FALSE(current);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
}

TEST(AddressSpaces, KeepsTheMostRecentlyUsedAndGivesEachBackOnce) {
    if (!has_thread_pidfds()) GTEST_SKIP() << "no PIDFD_THREAD before Linux 6.9: nothing is kept";
    AddressSpaces kept;
    const pid_t self = ::gettid();
    kept.keep(open_space(self));
    AddressSpace again = kept.take(self);
    EXPECT_EQ(again.tid, self);
    EXPECT_TRUE(again.still_current());
    EXPECT_FALSE(kept.take(self).mem) << "taken out: not there twice";
    kept.keep(std::move(again));
    // Sixteen more: the first is forgotten (no thread has these ids, but keep() does not look).
    for (pid_t other = 1; other <= 16; ++other) {
        AddressSpace s = open_space(self);
        s.tid = self + other;
        kept.keep(std::move(s));
    }
    EXPECT_FALSE(kept.take(self).mem);
    EXPECT_TRUE(kept.take(self + 16).mem);
}

TEST(AddressSpaces, KeepsNothingItCouldNotProveCurrentLater) {
    AddressSpaces kept;
    AddressSpace space = open_space(::gettid());
    space.pidfd.reset();  // as on a kernel without thread pidfds
    kept.keep(std::move(space));
    EXPECT_FALSE(kept.take(::gettid()).mem);
}

}  // namespace
}  // namespace fdbroker::broker
