// Containment's end: the broker's cgroup removed and its keeper reaped, nothing left behind.
#include <gtest/gtest.h>
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

TEST(Containment, EndingLeavesNeitherCgroupNorKeeper) {
    if (::geteuid() != 0) GTEST_SKIP() << "creating cgroups needs root";
    std::string note;
    std::unique_ptr<Containment> containment = Containment::create(note);
    if (!containment->uses_cgroups()) GTEST_SKIP() << note;
    const pid_t keeper = containment->keeper();
    ASSERT_GT(keeper, 0);
    const std::string mine = own_cgroup_path() + "/fdbroker-" + std::to_string(::getpid());
    struct stat st {};
    ASSERT_EQ(::stat(mine.c_str(), &st), 0) << mine;
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

}  // namespace
}  // namespace fdbroker::sandbox
