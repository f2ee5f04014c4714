// Unit tests for spawning: exit codes for programs that cannot run, fd hygiene, identity choice.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
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
