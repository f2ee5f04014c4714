// Library mode's metadata calls end to end: the real `fdbroker run`, a worker running as nobody that
// calls libfdbroker's C drop-ins, and the files on disk. The policy decides what may be asked; the
// broker then makes the change as the worker's user, so the kernel's own rules decide who may change
// what (a root-owned file in a writable tree stays root's).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

constexpr uid_t kNobody = 65534;

struct ::stat lstat_of(const std::string& path) {
    struct ::stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
}

// The value of an extended attribute on disk, or "" when it has none.
std::string xattr_of(const std::string& path, const char* name) {
    char buf[256];
    const ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}

class Metadata : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody, which needs a root broker";
        for (const char* d : {"ro", "ro/secret", "rw", "wo"})
            ::mkdir((dir / d).c_str(), 0755);
        write_file(dir / "ro/file", "read-only content");
        write_file(dir / "ro/secret/key", "secret");
        write_file(dir / "rw/file", "writable");
        ASSERT_EQ(::symlink("file", (dir / "rw/link").c_str()), 0);
        give_to_nobody(dir / "rw");
        // Root's file in the writable tree: the policy grants write, the kernel refuses nobody.
        write_file(dir / "rw/rootfile", "root's");
        write_file(dir / "outside", "outside");
        write_file(dir / "wo/file", "write-only");
        ASSERT_EQ(::setxattr((dir / "ro/file").c_str(), "user.note", "hello", 5, 0), 0);
        ASSERT_EQ(::setxattr((dir / "wo/file").c_str(), "user.note", "hello", 5, 0), 0);
        ASSERT_EQ(::setxattr((dir / "outside").c_str(), "user.note", "hello", 5, 0), 0);
        ASSERT_EQ(::setxattr((dir / "ro/secret/key").c_str(), "user.note", "hello", 5, 0), 0);
    }
    [[nodiscard]] virtual std::string policy() const {
        const std::string& d = dir.path();
        return "version = 1\n[profile.default]\nread = [\"" + d + "/ro/**\", \"" + d +
               "/rw/**\"]\nwrite = [\"" + d + "/rw/**\", \"" + d + "/wo/**\"]\ncreate = [\"" + d +
               "/rw/**\"]\ndeny = [\"" + d + "/ro/secret/**\"]\n";
    }
    // Runs the script and returns one result line per command.
    std::vector<std::string> run(const Script& script) {
        const Outcome o = run_worker(dir, policy(), script);
        EXPECT_EQ(o.status, 0) << o.err;
        return o.lines();
    }
    TempDir dir;
};

TEST_F(Metadata, ChmodWhereGrantedAndWhereTheWorkerOwnsTheFile) {
    EXPECT_EQ(run({{"chmod", dir / "rw/file", "600"},
                   {"chmod", dir / "ro/file", "777"},
                   {"chmod", dir / "ro/secret/key", "777"},
                   {"chmod", dir / "outside", "777"},
                   {"chmod", dir / "rw/rootfile", "777"},
                   {"chmod", dir / "rw/missing", "600"},
                   {"lchmod", dir / "rw/link", "600"},
                   {"chmod", dir / "rw/link", "640"}}),
              (std::vector<std::string>{"ok", "EACCES", "EACCES", "EACCES", "EPERM", "ENOENT", "EOPNOTSUPP",
                                        "ok"}));
    EXPECT_EQ(lstat_of(dir / "rw/file").st_mode & 07777, 0640u);
    EXPECT_EQ(lstat_of(dir / "ro/file").st_mode & 07777, 0644u);
    EXPECT_EQ(lstat_of(dir / "ro/secret/key").st_mode & 07777, 0644u);
    EXPECT_EQ(lstat_of(dir / "outside").st_mode & 07777, 0644u);
    EXPECT_EQ(lstat_of(dir / "rw/rootfile").st_mode & 07777, 0644u);
}

TEST_F(Metadata, ChownGetsTheKernelsAnswerForTheWorker) {
    EXPECT_EQ(run({{"chown", dir / "rw/file", "0", "-1"},
                   {"chown", dir / "rw/file", "-1", "0"},
                   {"chown", dir / "rw/rootfile", "65534", "-1"},
                   {"chown", dir / "ro/file", "65534", "-1"},
                   {"chown", dir / "rw/file", "65534", "65534"},
                   {"lchown", dir / "rw/link", "-1", "65534"}}),
              (std::vector<std::string>{"EPERM", "EPERM", "EPERM", "EACCES", "ok", "ok"}));
    EXPECT_EQ(lstat_of(dir / "rw/file").st_uid, kNobody);
    EXPECT_EQ(lstat_of(dir / "rw/file").st_gid, kNobody);
    EXPECT_EQ(lstat_of(dir / "rw/rootfile").st_uid, 0u);
    EXPECT_EQ(lstat_of(dir / "ro/file").st_uid, 0u);
}

TEST_F(Metadata, TruncateWhereGranted) {
    EXPECT_EQ(run({{"truncate", dir / "rw/file", "3"},
                   {"truncate", dir / "rw/link", "2"},
                   {"truncate", dir / "ro/file", "0"},
                   {"truncate", dir / "outside", "0"},
                   {"truncate", dir / "rw/rootfile", "0"},
                   {"truncate", dir / "rw/file", "-1"}}),
              (std::vector<std::string>{"ok", "ok", "EACCES", "EACCES", "EACCES", "EINVAL"}));
    EXPECT_EQ(read_file(dir / "rw/file"), "wr");
    EXPECT_EQ(read_file(dir / "ro/file"), "read-only content");
    EXPECT_EQ(read_file(dir / "outside"), "outside");
    EXPECT_EQ(read_file(dir / "rw/rootfile"), "root's") << "nobody may not write root's 0644 file";
}

TEST_F(Metadata, UtimensSetsTimesWhereGranted) {
    const struct ::stat ro_before = lstat_of(dir / "ro/file");
    const struct ::stat link_target_before = lstat_of(dir / "rw/file");
    EXPECT_EQ(run({{"utimens", dir / "rw/link", "1000000000", "1100000000", "nofollow"},
                   {"utimens", dir / "rw/file", "1200000000", "omit"},
                   {"utimens", dir / "ro/file", "1", "1"},
                   {"utimens", dir / "rw/rootfile", "1", "1"},
                   {"utimens", dir / "rw/rootfile", "now", "now"}}),
              (std::vector<std::string>{"ok", "ok", "EACCES", "EPERM", "EACCES"}));
    const struct ::stat link = lstat_of(dir / "rw/link");
    EXPECT_EQ(link.st_atim.tv_sec, 1000000000);
    EXPECT_EQ(link.st_mtim.tv_sec, 1100000000);
    const struct ::stat file = lstat_of(dir / "rw/file");
    EXPECT_EQ(file.st_atim.tv_sec, 1200000000);
    EXPECT_EQ(file.st_mtim.tv_sec, link_target_before.st_mtim.tv_sec) << "omitted, and not the link's";
    EXPECT_EQ(lstat_of(dir / "ro/file").st_mtim.tv_sec, ro_before.st_mtim.tv_sec);
    EXPECT_NE(lstat_of(dir / "rw/rootfile").st_mtim.tv_sec, 1);
}

TEST_F(Metadata, LinkNeedsCreateAndGrantsNothingTheOldNameDoesNot) {
    EXPECT_EQ(run({{"link", dir / "rw/file", dir / "rw/hard"},
                   {"link", dir / "ro/file", dir / "rw/stolen"},
                   {"link", dir / "ro/secret/key", dir / "rw/key"},
                   {"link", dir / "rw/file", dir / "ro/planted"},
                   {"link", dir / "rw/file", dir / "rw/hard"},
                   {"read", dir / "rw/stolen"}}),
              (std::vector<std::string>{"ok", "EACCES", "EACCES", "EACCES", "EEXIST", "ENOENT"}));
    EXPECT_EQ(lstat_of(dir / "rw/file").st_nlink, 2u);
    EXPECT_EQ(lstat_of(dir / "ro/file").st_nlink, 1u) << "a read-only file may not become writable";
    EXPECT_EQ(lstat_of(dir / "ro/secret/key").st_nlink, 1u);
    EXPECT_FALSE(exists(dir / "rw/stolen"));
    EXPECT_FALSE(exists(dir / "ro/planted"));
}

TEST_F(Metadata, MknodAndMkfifoNeedCreate) {
    EXPECT_EQ(run({{"mkfifo", dir / "rw/fifo", "600"},
                   {"mkfifo", dir / "rw/fifo", "600"},
                   {"mkfifo", dir / "ro/fifo", "600"},
                   {"mknod", dir / "rw/sock", "sock", "600"},
                   {"mknod", dir / "rw/null", "chr", "666", "1", "3"}}),
              (std::vector<std::string>{"ok", "EEXIST", "EACCES", "ok", "EPERM"}));
    const struct ::stat fifo = lstat_of(dir / "rw/fifo");
    EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
    EXPECT_EQ(fifo.st_uid, kNobody) << "made as the worker";
    EXPECT_TRUE(S_ISSOCK(lstat_of(dir / "rw/sock").st_mode));
    EXPECT_FALSE(exists(dir / "ro/fifo"));
    EXPECT_FALSE(exists(dir / "rw/null")) << "a device node needs a privilege the worker has not";
}

TEST_F(Metadata, ExtendedAttributesAreReadAndWrittenAsGranted) {
    EXPECT_EQ(run({{"setxattr", dir / "rw/file", "user.a", "one", "create"},
                   {"setxattr", dir / "rw/file", "user.a", "two", "create"},
                   {"setxattr", dir / "rw/link", "user.a", "two", "replace"},
                   {"getxattr", dir / "rw/file", "user.a"},
                   {"getxattr", dir / "rw/file", "user.a", "0"},
                   {"lgetxattr", dir / "rw/link", "user.a"},
                   {"lsetxattr", dir / "rw/link", "user.a", "x"},
                   {"getxattr", dir / "ro/file", "user.note"},
                   {"listxattr", dir / "ro/file"},
                   {"setxattr", dir / "ro/file", "user.a", "x"},
                   {"removexattr", dir / "ro/file", "user.note"},
                   {"getxattr", dir / "ro/secret/key", "user.note"},
                   {"listxattr", dir / "outside"},
                   {"setxattr", dir / "rw/file", "trusted.a", "x"},
                   {"setxattr", dir / "rw/rootfile", "user.a", "x"}}),
              (std::vector<std::string>{"ok", "EEXIST", "ok", "ok 3 two", "ok 3", "ENODATA", "EPERM",
                                        "ok 5 hello", "ok user.note", "EACCES", "EACCES", "EACCES", "EACCES",
                                        "EPERM", "EACCES"}));
    EXPECT_EQ(xattr_of(dir / "rw/file", "user.a"), "two");
    EXPECT_EQ(xattr_of(dir / "ro/file", "user.a"), "");
    EXPECT_EQ(xattr_of(dir / "ro/file", "user.note"), "hello");
    EXPECT_EQ(xattr_of(dir / "rw/file", "trusted.a"), "");
    EXPECT_EQ(xattr_of(dir / "rw/rootfile", "user.a"), "");

    EXPECT_EQ(run({{"removexattr", dir / "rw/link", "user.a"},
                   {"removexattr", dir / "rw/file", "user.a"},
                   {"lremovexattr", dir / "rw/link", "user.a"},
                   {"listxattr", dir / "rw/file"}}),
              (std::vector<std::string>{"ok", "ENODATA", "EPERM", "ok"}));
    EXPECT_EQ(xattr_of(dir / "rw/file", "user.a"), "");
}

TEST_F(Metadata, WhereReadIsNotGrantedAFileLooksAsIfItHadNoAttributes) {
    // The worker may write wo/file (its own) but not read it: its attributes are no more the worker's
    // to see than its content, while changing them is writing.
    give_to_nobody(dir / "wo/file");
    EXPECT_EQ(run({{"getxattr", dir / "wo/file", "user.note"},
                   {"listxattr", dir / "wo/file"},
                   {"setxattr", dir / "wo/file", "user.b", "x"},
                   {"removexattr", dir / "wo/file", "user.note"}}),
              (std::vector<std::string>{"ENODATA", "ok", "ok", "ok"}));
    EXPECT_EQ(xattr_of(dir / "wo/file", "user.note"), "");
    EXPECT_EQ(xattr_of(dir / "wo/file", "user.b"), "x");
}

TEST_F(Metadata, MalformedMetadataFramesEndOnlyThatChannel) {
    const std::string f = dir / "rw/file";
    EXPECT_EQ(run({{"malformed", f, "utimens-short-times"},
                   {"malformed", f, "getxattr-huge-buffer"},
                   {"malformed", f, "chmod-follow-flag"},
                   {"malformed", f, "removexattr-long-name"},
                   {"malformed", f, "setxattr-huge-value"},
                   {"chmod", f, "604"}}),
              (std::vector<std::string>{"closed", "closed", "closed", "closed", "closed", "ok"}));
    EXPECT_EQ(lstat_of(f).st_mode & 07777, 0604u);
}

// Values of 64 KiB, the most an extended attribute may hold: only some file systems keep one (tmpfs
// does, ext4 keeps a block), so this tree lives in /dev/shm.
class LargeMetadata : public Metadata {
  protected:
    void SetUp() override {
        Metadata::SetUp();
        if (IsSkipped()) return;
        char tmpl[] = "/dev/shm/fdbroker-metadata-test-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) GTEST_SKIP() << "no /dev/shm";
        shm_ = tmpl;
        ::chmod(shm_.c_str(), 0755);
        write_file(shm_ + "/file", "");
        const std::vector<char> probe(65536, 'p');
        if (::setxattr((shm_ + "/file").c_str(), "user.probe", probe.data(), probe.size(), 0) != 0)
            GTEST_SKIP() << "/dev/shm keeps no extended attribute of 64 KiB";
        ::removexattr((shm_ + "/file").c_str(), "user.probe");
        give_to_nobody(shm_);
    }
    void TearDown() override {
        if (!shm_.empty()) std::filesystem::remove_all(shm_);
    }
    [[nodiscard]] std::string policy() const override {
        return "version = 1\n[profile.default]\nread = [\"" + shm_ + "/**\"]\nwrite = [\"" + shm_ +
               "/**\"]\n";
    }
    std::string shm_;
};

TEST_F(LargeMetadata, ValuesOf64KiBTravelBothWays) {
    const std::string f = shm_ + "/file";
    EXPECT_EQ(run({{"setxattr-sized", f, "user.big", "65536"},
                   {"getxattr-sized", f, "user.big"},
                   {"getxattr", f, "user.big", "0"},
                   {"getxattr", f, "user.big", "65535"},
                   {"setxattr-sized", f, "user.bigger", "65537"}}),
              (std::vector<std::string>{"ok", "ok 65536 intact", "ok 65536", "ERANGE", "E2BIG"}));
    std::vector<char> stored(65536);
    ASSERT_EQ(::getxattr(f.c_str(), "user.big", stored.data(), stored.size()), 65536);
    EXPECT_EQ(stored[0], 'a');
    EXPECT_EQ(stored[65535], static_cast<char>('a' + 65535 % 26));
}

}  // namespace
}  // namespace fdbroker::test
