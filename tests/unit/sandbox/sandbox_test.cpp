// Unit tests for spawning: exit codes for programs that cannot run, fd hygiene, identity choice.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/confinement.hpp"
#include "sandbox/spawn.hpp"
#include "support/harness.hpp"

namespace fdbroker::sandbox {
namespace {

const policy::Confinement kDefaults;

int wait_exit(const Spawned& s) {
    int status = 0;
    ::waitpid(s.pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Identity own_identity() {
    std::string note;
    return ::geteuid() == 0 ? Identity::for_worker(0, 0, note) : Identity::for_worker({}, {}, note);
}

TEST(Spawn, ReportsNotFoundAndNotExecutableLikeEnv) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    unique_fd a(pair[0]), b(pair[1]);
    const Spawned missing = spawn({{"/nonexistent/program"}, b.get(), own_identity(), kDefaults});
    EXPECT_LT(missing.pid, 0);
    EXPECT_EQ(missing.exit_code, 127);
    EXPECT_NE(missing.error.find("No such file"), std::string::npos) << missing.error;
    test::TempDir dir;
    test::write_file(dir / "script", "#!/bin/sh\n", 0644);
    const Spawned not_exec = spawn({{dir / "script"}, b.get(), own_identity(), kDefaults});
    EXPECT_EQ(not_exec.exit_code, 126);
    EXPECT_EQ(spawn({{}, b.get(), own_identity(), kDefaults}).exit_code, 125);
}

TEST(Spawn, ChannelIsFdThreeAndNothingElseLeaks) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    unique_fd a(pair[0]), b(pair[1]);
    // A descriptor without close-on-exec, as an unhygienic parent might leave: it must not reach the worker.
    unique_fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    unique_fd leaky(::fcntl(devnull.get(), F_DUPFD, 20));  // F_DUPFD: no close-on-exec
    ASSERT_GE(leaky.get(), 20);
    // Shell built-ins only (the worker may not exec again): the exit status says what was found.
    const std::string fd = std::to_string(leaky.get());
    const Spawned s = spawn({{"/bin/sh", "-c",
                              "test -e /proc/self/fd/" + fd +
                                  " && exit 1; test \"$FDBROKER_FD\" = 3 || exit 2; "
                                  "test -S /proc/self/fd/3 || exit 3; exit 0"},
                             b.get(),
                             own_identity(),
                             kDefaults});
    ASSERT_GT(s.pid, 0) << s.error;
    ASSERT_TRUE(s.pidfd);
    EXPECT_GT(s.landlock_abi, 0);
    EXPECT_EQ(wait_exit(s), 0);
}

TEST(Spawn, MeanwhileRunsBeforeTheProgramStarts) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    unique_fd a(pair[0]), b(pair[1]);
    test::TempDir dir;
    ::chmod(dir.path().c_str(), 0755);  // the worker may be nobody
    const std::string marker = dir / "marker";
    // Whether the broker answers the worker's execve or the filter allows exec outright.
    for (const bool exec : {false, true}) {
        SCOPED_TRACE(exec ? "exec allowed" : "exec answered");
        policy::Confinement confinement;
        confinement.exec = exec;
        ::unlink(marker.c_str());
        // Late on purpose: a program started before `meanwhile` ended would find no marker.
        auto meanwhile = [&] {
            ::usleep(200'000);
            test::write_file(marker, "");
            return std::string();
        };
        SpawnSpec spec{{"/bin/sh", "-c", "test -e " + marker}, b.get(), own_identity(), confinement};
        spec.meanwhile = meanwhile;
        const Spawned s = spawn(spec);
        ASSERT_GT(s.pid, 0) << s.error;
        EXPECT_EQ(wait_exit(s), 0);
    }
}

TEST(Spawn, MeanwhileFailingEndsTheWorkerBeforeItsProgram) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    unique_fd a(pair[0]), b(pair[1]);
    // The program would say so on the channel (fd 3) if it ran.
    SpawnSpec spec{{"/bin/sh", "-c", "echo ran >&3"}, b.get(), own_identity(), kDefaults};
    spec.meanwhile = [] { return std::string("confining the broker: nope"); };
    const Spawned s = spawn(spec);
    EXPECT_LT(s.pid, 0);
    EXPECT_EQ(s.exit_code, 125);
    EXPECT_EQ(s.error, "confining the broker: nope");
    b.reset();
    char byte = 0;
    EXPECT_EQ(::recv(a.get(), &byte, 1, MSG_DONTWAIT), 0);  // the worker is gone: end of file, no data
    // And reaped: no child is left.
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

TEST(Identity, DefaultsToNobodyOnlyForRoot) {
    std::string note;
    const Identity id = Identity::for_worker({}, {}, note);
    if (::geteuid() == 0) {
        EXPECT_TRUE(id.switches());
        EXPECT_EQ(id.uid(), 65534u);
    } else {
        EXPECT_FALSE(id.switches());
        EXPECT_EQ(id.uid(), ::geteuid());
        static_cast<void>(Identity::for_worker(12345, {}, note));
        EXPECT_NE(note.find("not running as root"), std::string::npos);
    }
}

}  // namespace
}  // namespace fdbroker::sandbox
