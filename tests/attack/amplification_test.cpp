// Operations that would change which rules, or which of the kernel's protections, apply to a file: a
// worker must not be able to use the broker to make a file it may not read reachable under a granted
// name, nor to plant objects that others would treat as trusted.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/harness.hpp"
#include "support/serve_broker.hpp"

namespace fdbroker::test {
namespace {

class Amplification : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody, which needs a root broker";
        for (const char* d : {"x", "x/a", "x/a/secret", "x/c", "x/c/sub"})
            ::mkdir((dir / d).c_str(), 0777);
        write_file(dir / "x/a/secret/key", "SECRET");
        write_file(dir / "x/a/note", "note");
        write_file(dir / "x/c/sub/file", "plain");
    }
    // Everything in x may be read, written and created, except beneath x/a/secret.
    [[nodiscard]] std::string rules() const {
        const std::string x = dir / "x";
        return "read = [\"" + x + "/**\"]\nwrite = [\"" + x + "/**\"]\ncreate = [\"" + x +
               "/**\"]\ndeny = [\"" + x + "/a/secret/**\"]\n";
    }
    [[nodiscard]] std::string policy() const { return "version = 1\n[profile.default]\n" + rules(); }
    // The denied file is still where its rule covers it, untouched.
    void expect_secret_in_place() const {
        EXPECT_EQ(read_file(dir / "x/a/secret/key"), "SECRET");
        EXPECT_FALSE(exists(dir / "x/b"));
    }
    TempDir dir;
};

// With write and create on x/** and a deny on x/a/secret/**, renaming x/a to x/b would make
// x/b/secret/key readable: the rule must follow the file, so the rename is refused.
TEST_F(Amplification, RenamingAnAncestorOfADenyIsRefused) {
    const Outcome o = run_worker(dir, policy(),
                                 {{"rename", dir / "x/a", dir / "x/b"},
                                  {"read", dir / "x/b/secret/key"},
                                  {"rename", dir / "x", dir / "y"},
                                  {"rename", dir / "x/c", dir / "x/a/secret/c"},
                                  {"rename", dir / "x/c", dir / "x/d"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EACCES", "ENOENT", "EACCES", "EACCES", "ok"}));
    expect_secret_in_place();
    EXPECT_EQ(read_file(dir / "x/d/sub/file"), "plain");  // a uniform subtree moves freely
}

TEST_F(Amplification, MovingAnythingToWhereADenyWouldStartIsRefused) {
    // With x/a out of the way, x/c moved to x/a would put a subtree under the deny's reach: some of its
    // files would change rules (a worker that planted x/c/secret would lose it, another could gain).
    ASSERT_EQ(::rename((dir / "x/a").c_str(), (dir / "a.away").c_str()), 0);
    const Outcome o = run_worker(dir, policy(), {{"rename", dir / "x/c", dir / "x/a"}});
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EACCES"})) << o.err;
    EXPECT_TRUE(exists(dir / "x/c/sub/file"));
    ASSERT_EQ(::rename((dir / "a.away").c_str(), (dir / "x/a").c_str()), 0);
}

TEST_F(Amplification, TransparentModeRefusesTheSameRenames) {
    const std::string p = policy() + "include = [\"runtime\"]\n";
    const Outcome mv = run_broker(dir, p, {"/bin/mv", dir / "x/a", dir / "x/b"}, {"--transparent"});
    EXPECT_NE(mv.status, 0);
    EXPECT_NE(mv.err.find("Permission denied"), std::string::npos) << mv.err;
    const Outcome cat = run_broker(dir, p, {"/bin/cat", dir / "x/b/secret/key"}, {"--transparent"});
    EXPECT_EQ(cat.out.find("SECRET"), std::string::npos);
    expect_secret_in_place();
}

TEST_F(Amplification, ServeModeRefusesTheSameRenames) {
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
    ServeBroker broker(dir, "[profile.p]\nclients = { users = [65534] }\n" + rules());
    ASSERT_TRUE(broker.ready());
    const Outcome o = broker.run_client(
        65534, 65534, {{"rename", dir / "x/a", dir / "x/b"}, {"read", dir / "x/b/secret/key"}});
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EACCES", "ENOENT"})) << o.err;
    expect_secret_in_place();
}

TEST_F(Amplification, AFileMayNotMoveToWhereItWouldGainAPermission) {
    ::mkdir((dir / "in").c_str(), 0777);
    ::mkdir((dir / "out").c_str(), 0777);
    write_file(dir / "in/f", "read only here");
    const std::string p = "version = 1\n[profile.default]\nread = [\"" + dir.path() + "/in/**\", \"" +
                          dir.path() + "/out/**\"]\ncreate = [\"" + dir.path() + "/in/**\", \"" + dir.path() +
                          "/out/**\"]\nwrite = [\"" + dir.path() + "/out/**\"]\n";
    const Outcome o = run_worker(dir, p,
                                 {{"rename", dir / "in/f", dir / "out/f"},
                                  {"open", dir / "in/f", "rdwr"},
                                  {"rename", dir / "in/f", dir / "in/g"}});
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EACCES", "EACCES", "ok"})) << o.err;
}

TEST_F(Amplification, SymlinksMadeForAWorkerBelongToIt) {
    // fs.protected_symlinks trusts a link in a sticky world-writable directory only when its owner is
    // the follower or the directory's owner: a root-owned link would be followed by everyone.
    const std::string policy =
        "version = 1\n[profile.default]\ninclude = [\"runtime\"]\ncreate = [\"" + dir.path() + "/x/**\"]\n";
    ASSERT_EQ(::chmod((dir / "x").c_str(), 01777), 0);
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
