// The identities a broker thread takes for a worker: what each holds (ids, capabilities), that each
// is the calling thread's alone, and that the event loop gives every other handler the broker's back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "broker/core/event_loop.hpp"
#include "broker/core/worker_identity.hpp"
#include "support/harness.hpp"

namespace fdbroker::broker {
namespace {

constexpr FileOwner kNobody{65534, 65534};
constexpr std::uint64_t kPtrace = std::uint64_t{1} << 19;  // CAP_SYS_PTRACE

// What /proc says of a thread: its uids and gids (real, effective, saved, file-system) and its
// effective and permitted capabilities.
struct Creds {
    std::string uid, gid;
    std::uint64_t effective = 0, permitted = 0;
};

Creds creds_of(const std::string& status_path) {
    std::ifstream in(status_path);
    Creds c;
    for (std::string line; std::getline(in, line);) {
        const auto value = [&] { return line.substr(line.find('\t') + 1); };
        if (line.starts_with("Uid:")) c.uid = value();
        if (line.starts_with("Gid:")) c.gid = value();
        if (line.starts_with("CapEff:")) c.effective = std::stoull(value(), nullptr, 16);
        if (line.starts_with("CapPrm:")) c.permitted = std::stoull(value(), nullptr, 16);
    }
    return c;
}

Creds mine() {
    return creds_of("/proc/thread-self/status");
}

// Runs f on a thread of its own: identities are per thread, and the test's own stays root's.
template <class F>
void on_a_thread(F&& f) {
    std::thread t(std::forward<F>(f));
    t.join();
}

class WorkerIdentity : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "taking another user's identity needs root";
        if ((mine().permitted & kPtrace) == 0) GTEST_SKIP() << "no CAP_SYS_PTRACE to keep";
        ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
        test::write_file(dir / "roots", "secret", 0600);
    }
    test::TempDir dir;
};

TEST_F(WorkerIdentity, FilesAsTakesTheFileSystemIdsAndOnlyPtraceAndKeepsThem) {
    const pid_t tid = ::gettid();
    on_a_thread([&] {
        ASSERT_EQ(thread_identity::files_as(kNobody), 0);
        const Creds c = mine();
        EXPECT_EQ(c.uid, "0\t0\t0\t65534");
        EXPECT_EQ(c.effective, kPtrace);
        EXPECT_TRUE(thread_identity::acting_as_worker());
        // The kernel judges as the worker: a root-only file is refused, a new one is the worker's.
        EXPECT_LT(::open((dir / "roots").c_str(), O_RDONLY | O_CLOEXEC), 0);
        EXPECT_EQ(errno, EACCES);
        const int fd = ::open((dir / "new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0);
        ::close(fd);
        // Kept for the next call; the test's own thread is still root.
        ASSERT_EQ(thread_identity::files_as(kNobody), 0);
        EXPECT_EQ(mine().uid, "0\t0\t0\t65534");
        EXPECT_EQ(creds_of("/proc/self/task/" + std::to_string(tid) + "/status").uid, "0\t0\t0\t0");
        thread_identity::as_broker();
        const Creds back = mine();
        EXPECT_EQ(back.uid, "0\t0\t0\t0");
        EXPECT_EQ(back.effective, back.permitted);
        EXPECT_FALSE(thread_identity::acting_as_worker());
    });
    struct ::stat st {};
    ASSERT_EQ(::stat((dir / "new").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u);
}

TEST_F(WorkerIdentity, WithoutPtraceLeavesNoCapabilityUntilTheNextCall) {
    on_a_thread([] {
        EXPECT_FALSE(thread_identity::without_ptrace()) << "nothing to drop as the broker";
        ASSERT_EQ(thread_identity::files_as(kNobody), 0);
        EXPECT_TRUE(thread_identity::without_ptrace());
        EXPECT_EQ(mine().effective, 0u);
        EXPECT_FALSE(thread_identity::without_ptrace());
        ASSERT_EQ(thread_identity::files_as(kNobody), 0);
        EXPECT_EQ(mine().effective, kPtrace);
        thread_identity::as_broker();
    });
}

TEST_F(WorkerIdentity, PtraceComesBackWhenTheOperationEnds) {
    on_a_thread([] {
        thread_identity::ptrace_back();  // nothing to do as the broker
        ASSERT_EQ(thread_identity::files_as(kNobody), 0);
        ASSERT_TRUE(thread_identity::without_ptrace());
        EXPECT_EQ(mine().effective, 0u);
        thread_identity::ptrace_back();
        EXPECT_EQ(mine().effective, kPtrace);
        EXPECT_TRUE(thread_identity::acting_as_worker());
        thread_identity::as_broker();
    });
}

TEST_F(WorkerIdentity, AnotherWorkerAndAsWorkerStartFromTheBroker) {
    on_a_thread([] {
        ASSERT_EQ(thread_identity::files_as(kNobody), 0);
        ASSERT_EQ(thread_identity::files_as({1, 1}), 0);  // daemon
        EXPECT_EQ(mine().uid, "0\t0\t0\t1");
        EXPECT_EQ(mine().gid, "0\t0\t0\t1");
        {
            const AsWorker whole(kNobody);
            ASSERT_EQ(whole.error(), 0);
            const Creds c = mine();
            EXPECT_EQ(c.uid, "0\t65534\t0\t65534");
            EXPECT_EQ(c.effective, 0u) << "no capability at all";
            const AsWorker nested(kNobody);  // already the worker: changes nothing
            EXPECT_EQ(nested.error(), 0);
        }
        const Creds back = mine();
        EXPECT_EQ(back.uid, "0\t0\t0\t0");
        EXPECT_EQ(back.gid, "0\t0\t0\t0");
        EXPECT_EQ(back.effective, back.permitted);
    });
}

// A handler that takes the worker's identity and keeps it, as a transparent listener does.
class KeepsIdentity final : public EventHandler {
  public:
    explicit KeepsIdentity(int fd) : fd_(fd) {}
    void on_event(std::uint32_t) noexcept override {
        char c;
        [[maybe_unused]] const ssize_t n = ::read(fd_, &c, 1);
        taken = thread_identity::files_as(kNobody) == 0;
    }
    [[nodiscard]] bool keeps_worker_identity() const noexcept override { return true; }
    bool taken = false;

  private:
    int fd_;
};

class RecordsIdentity final : public EventHandler {
  public:
    explicit RecordsIdentity(int fd) : fd_(fd) {}
    void on_event(std::uint32_t) noexcept override {
        char c;
        [[maybe_unused]] const ssize_t n = ::read(fd_, &c, 1);
        uid = mine().uid;
    }
    std::string uid;

  private:
    int fd_;
};

TEST_F(WorkerIdentity, EveryOtherHandlerRunsAsTheBroker) {
    on_a_thread([] {
        int a[2], b[2];
        ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
        ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
        const unique_fd a_read(a[0]), a_write(a[1]), b_read(b[0]), b_write(b[1]);
        EventLoop loop;
        KeepsIdentity keeps(a_read.get());
        RecordsIdentity records(b_read.get());
        ASSERT_TRUE(loop.add(a_read.get(), EPOLLIN, &keeps));
        ASSERT_TRUE(loop.add(b_read.get(), EPOLLIN, &records));
        int turns = 0;
        EventLoop::Hooks hooks;
        hooks.end_of_turn = [&] {
            // One event per turn: first the keeper's, then the recorder's.
            if (++turns == 1) {
                EXPECT_EQ(::write(b_write.get(), "x", 1), 1);
            }
            return turns == 2;
        };
        ASSERT_EQ(::write(a_write.get(), "x", 1), 1);
        ASSERT_TRUE(loop.run(std::move(hooks)));
        EXPECT_TRUE(keeps.taken);
        EXPECT_EQ(records.uid, "0\t0\t0\t0") << "the keeper's identity leaked into another handler";
        EXPECT_EQ(mine().uid, "0\t0\t0\t0") << "what follows the loop runs as the broker";
    });
}

}  // namespace
}  // namespace fdbroker::broker
