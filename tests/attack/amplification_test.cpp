// Operations that would change which rules, or which of the kernel's protections, apply to a file: a
// worker must not be able to use the broker to make a file it may not read reachable under a granted
// name, nor to plant objects that others would treat as trusted.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

class Amplification : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody, which needs a root broker";
        ::mkdir((dir / "x").c_str(), 0755);
    }
    TempDir dir;
};

TEST_F(Amplification, SymlinksMadeForAWorkerBelongToIt) {
    // fs.protected_symlinks trusts a link in a sticky world-writable directory only when its owner is
    // the follower or the directory's owner: a root-owned link would be followed by everyone.
    const std::string policy =
        "version = 1\n[profile.default]\ninclude = [\"runtime\"]\ncreate = [\"" + dir.path() + "/x/**\"]\n";
    const Outcome o =
        run_broker(dir, policy, {"/bin/ln", "-s", "/etc/hostname", dir / "x/link"}, {"--transparent"});
    ASSERT_EQ(o.status, 0) << o.err;
    struct ::stat st {};
    ASSERT_EQ(::lstat((dir / "x/link").c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(st.st_uid, 65534u);
    EXPECT_EQ(st.st_gid, 65534u);
}

}  // namespace
}  // namespace fdbroker::test
