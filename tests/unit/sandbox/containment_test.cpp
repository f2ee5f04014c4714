// Containment's end: the broker's cgroup removed and its keeper reaped, nothing left behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "sandbox/containment.hpp"
#include "sandbox/kernel_features.hpp"

namespace fdbroker::sandbox {
namespace {

// The cgroup this process is in, as a path under the cgroup v2 mount.
std::string own_cgroup_path() {
    std::ifstream cgroup("/proc/self/cgroup");
    for (std::string line; std::getline(cgroup, line);)
        if (line.starts_with("0::")) return cgroup2_mount() + line.substr(3);
    return {};
}

// Where the cgroup of broker `pid` is: beneath the broker's own cgroup, or, where the keeper could not
// remove it from there, beneath the shared "fdbroker" directory in it. Empty if neither exists.
std::string broker_cgroup(pid_t pid) {
    const std::string name = "fdbroker-" + std::to_string(pid);
    struct stat st {};
    for (const std::string& path : {own_cgroup_path() + "/" + name, own_cgroup_path() + "/fdbroker/" + name})
        if (::stat(path.c_str(), &st) == 0) return path;
    return {};
}

TEST(Containment, EndingLeavesNeitherCgroupNorKeeper) {
    if (::geteuid() != 0) GTEST_SKIP() << "creating cgroups needs root";
    std::string note;
    std::unique_ptr<Containment> containment = Containment::create(note);
    if (!containment->uses_cgroups()) GTEST_SKIP() << note;
    const pid_t keeper = containment->keeper();
    ASSERT_GT(keeper, 0);
    const std::string mine = broker_cgroup(::getpid());
    ASSERT_FALSE(mine.empty());
    struct stat st {};
    {
        const unique_fd worker = containment->cgroup_for("worker");
        ASSERT_TRUE(worker);
    }
    containment->end_all();
    containment.reset();
    EXPECT_NE(::stat(mine.c_str(), &st), 0) << mine << " is still there";
    // The keeper has been reaped: it is no child of ours any more, not even a zombie.
    EXPECT_EQ(::waitpid(keeper, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

TEST(Containment, TheKeeperRemovesTheCgroupOfABrokerKilledOutright) {
    if (::geteuid() != 0) GTEST_SKIP() << "creating cgroups needs root";
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t broker = ::fork();
    ASSERT_GE(broker, 0);
    if (broker == 0) {
        // A broker in miniature: its cgroup, its keeper, a worker's cgroup; then it waits to be killed.
        std::string note;
        const std::unique_ptr<Containment> containment = Containment::create(note);
        const char answer = containment->uses_cgroups() && containment->cgroup_for("worker") ? 'y' : 'n';
        if (::write(ready[1], &answer, 1) != 1) ::_exit(1);
        ::pause();
        ::_exit(0);
    }
    ::close(ready[1]);
    char answer = 0;
    ASSERT_EQ(::read(ready[0], &answer, 1), 1);
    ::close(ready[0]);
    const std::string cgroup = broker_cgroup(broker);
    ::kill(broker, SIGKILL);
    ::waitpid(broker, nullptr, 0);
    if (answer != 'y') GTEST_SKIP() << "no cgroup v2 for the broker here";
    ASSERT_FALSE(cgroup.empty());
    // The keeper, without capabilities, kills what is left and removes the cgroup and the worker's.
    for (int i = 0; i < 1000 && !broker_cgroup(broker).empty(); ++i)
        ::usleep(10000);
    EXPECT_EQ(broker_cgroup(broker), "") << cgroup << " is still there";
}

}  // namespace
}  // namespace fdbroker::sandbox
