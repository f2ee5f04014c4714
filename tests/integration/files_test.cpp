// Contract 4 end to end: the real `fdbroker run`, a real worker linked with libfdbroker, real files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

class Files : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "ro").c_str(), 0755);
        ::mkdir((dir / "ro/secret").c_str(), 0755);
        ::mkdir((dir / "rw").c_str(), 0755);
        ::mkdir((dir / "good").c_str(), 0755);
        ::mkdir((dir / "good_extra").c_str(), 0755);
        write_file(dir / "ro/file", "read-only content");
        write_file(dir / "ro/secret/key", "secret");
        write_file(dir / "rw/file", "writable");
        write_file(dir / "good/file", "good");
        write_file(dir / "good_extra/file", "extra");
        write_file(dir / "outside", "outside");
    }
    std::string policy() const {
        const std::string& d = dir.path();
        return "version = 1\n[profile.default]\n"
               "read = [\"" +
               d + "/ro/**\", \"" + d +
               "/good/**\"]\n"
               "write = [\"" +
               d +
               "/rw/**\"]\n"
               "create = [\"" +
               d +
               "/rw/**\"]\n"
               "deny = [\"" +
               d + "/ro/secret/**\"]\n";
    }
    // Runs the script and returns one result line per command.
    std::vector<std::string> run(const Script& script) {
        const Outcome o = run_worker(dir, policy(), script);
        EXPECT_EQ(o.status, 0) << o.err;
        return o.lines();
    }
    TempDir dir;
};

TEST_F(Files, ReadOnlyRuleAllowsOnlyReading) {
    const auto f = dir / "ro/file";
    EXPECT_EQ(run({{"read", f}, {"open", f, "wronly"}, {"open", f, "rdwr"}, {"open", f, "rdonly|append"}}),
              (std::vector<std::string>{"ok read-only content", "EACCES", "EACCES", "EACCES"}));
}

TEST_F(Files, CreateNeedsCreateRuleEvenWhenTheFileExists) {
    EXPECT_EQ(run({{"open", dir / "ro/file", "rdonly|creat"}, {"open", dir / "ro/new", "rdonly|creat"}}),
              (std::vector<std::string>{"EACCES", "EACCES"}));
    EXPECT_FALSE(exists(dir / "ro/new"));
}

TEST_F(Files, TruncateNeedsWrite) {
    EXPECT_EQ(run({{"open", dir / "ro/file", "rdonly|trunc"}}), (std::vector<std::string>{"EACCES"}));
    EXPECT_EQ(read_file(dir / "ro/file"), "read-only content");
}

TEST_F(Files, UnknownOpenFlagsAreRefused) {
    const auto f = dir / "ro/file";
    EXPECT_EQ(
        run({{"open", f, "rdonly|path"},
             {"open", dir / "rw", "rdwr|tmpfile"},
             {"open", f, "rdonly|direct"},
             {"open", f, "rdonly|async"},
             {"open", f, "rdonly|noatime"},
             {"open", f, "accmode"},
             {"open", f, "0x40000000"},
             {"open", f, "rdonly|directory"}}),
        (std::vector<std::string>{"ok", "EACCES", "ok", "EACCES", "EACCES", "EACCES", "EACCES", "ENOTDIR"}))
        << "O_PATH needs any grant, O_TMPFILE create on the directory, O_DIRECT what the access mode needs, "
           "access mode 3 (ioctl only) read and write";
}

TEST_F(Files, WriteCreateAndTruncateWhereGranted) {
    const auto f = dir / "rw/new";
    EXPECT_EQ(run({{"write", f, "hello"},
                   {"read", f},
                   {"open", f, "wronly|creat|excl"},
                   {"open", f, "wronly|trunc"}}),
              (std::vector<std::string>{"ok", "EACCES", "EEXIST", "ok"}));
    EXPECT_EQ(read_file(f), "");  // truncated by the last open
}

TEST_F(Files, AccessFollowsTheOpenRulesAndNeverGrantsExecute) {
    EXPECT_EQ(
        run({{"access", dir / "ro/file", "r"},
             {"access", dir / "ro/file", "w"},
             {"access", dir / "ro/file", "x"},
             {"access", dir / "ro/file", "f"},
             {"access", dir / "rw/file", "rw"},
             {"access", dir / "rw/missing", "f"},
             {"access", dir / "ro/secret/key", "f"},
             {"access", dir / "outside", "r"}}),
        (std::vector<std::string>{"ok", "EACCES", "EACCES", "ok", "EACCES", "ENOENT", "EACCES", "EACCES"}));
}

TEST_F(Files, StatTellsMissingFromDeniedOnlyWhereGranted) {
    EXPECT_EQ(run({{"stat", dir / "ro/file"},
                   {"stat", dir / "ro/missing"},
                   {"stat", dir / "ro/secret/key"},
                   {"stat", dir / "ro/secret/missing"},
                   {"stat", dir / "outside"},
                   {"stat", dir / "no-such-file"},
                   {"stat", dir / "ro"}}),
              (std::vector<std::string>{"ok file size=17", "ENOENT", "EACCES", "EACCES", "EACCES", "EACCES",
                                        "ok dir"}));
}

TEST_F(Files, LookAlikePathsNeverMatch) {
    const std::string& d = dir.path();
    EXPECT_EQ(run({{"read", d + "/good/file"},
                   {"read", d + "/good_extra/file"},
                   {"read", d + "//good/file"},
                   {"read", d + "/good//file"},
                   {"read", d + "/good/../outside"},
                   {"read", d + "/good/./file"},
                   {"read", d + "/good/file/"},
                   {"read", "good/file"},
                   {"read", ""}}),
              (std::vector<std::string>{"ok good", "EACCES", "EACCES", "EACCES", "EACCES", "EACCES", "EACCES",
                                        "EACCES", "ENOENT"}));
}

TEST_F(Files, RenameNeedsCreateOnBothPathsAndMovesNothingWhenDenied) {
    EXPECT_EQ(run({{"rename", dir / "ro/file", dir / "rw/stolen"},
                   {"rename", dir / "rw/file", dir / "ro/planted"},
                   {"rename", dir / "rw/file", dir / "rw/moved"}}),
              (std::vector<std::string>{"EACCES", "EACCES", "ok"}));
    EXPECT_TRUE(exists(dir / "ro/file"));
    EXPECT_FALSE(exists(dir / "rw/stolen"));
    EXPECT_FALSE(exists(dir / "ro/planted"));
    EXPECT_TRUE(exists(dir / "rw/moved"));
    EXPECT_FALSE(exists(dir / "rw/file"));
}

TEST_F(Files, MkdirRmdirUnlinkMatrix) {
    ::mkdir((dir / "ro/sub").c_str(), 0755);
    EXPECT_EQ(run({{"mkdir", dir / "rw/d"},
                   {"mkdir", dir / "rw/d"},
                   {"mkdir", dir / "ro/d"},
                   {"rmdir", dir / "ro/sub"},
                   {"unlink", dir / "ro/file"},
                   {"unlink", dir / "rw/d"},
                   {"rmdir", dir / "rw/d"},
                   {"rmdir", dir / "rw/d"},
                   {"unlink", dir / "rw/file"},
                   {"unlink", dir / "rw/file"},
                   {"rmdir", dir / "outside"}}),
              (std::vector<std::string>{"ok", "EEXIST", "EACCES", "EACCES", "EACCES", "EISDIR", "ok",
                                        "ENOENT", "ok", "ENOENT", "EACCES"}));
    EXPECT_TRUE(exists(dir / "ro/sub"));
    EXPECT_TRUE(exists(dir / "ro/file"));
    EXPECT_FALSE(exists(dir / "ro/d"));
}

TEST_F(Files, ReadlinkReturnsTheLinkBytes) {
    const std::string target = "some/where/../odd target \xc3\xa9";
    ASSERT_EQ(::symlink(target.c_str(), (dir / "ro/link").c_str()), 0);
    EXPECT_EQ(
        run({{"readlink", dir / "ro/link"}, {"readlink", dir / "ro/file"}, {"readlink", dir / "outside"}}),
        (std::vector<std::string>{"ok " + target, "EINVAL", "EACCES"}));
}

TEST_F(Files, CloexecOnlyWhenAsked) {
    EXPECT_EQ(run({{"cloexec", dir / "ro/file", "with"}, {"cloexec", dir / "ro/file", "without"}}),
              (std::vector<std::string>{"ok cloexec=1", "ok cloexec=0"}));
}

TEST_F(Files, ConcurrentOpensFromFiveThreadsAreAllCorrect) {
    EXPECT_EQ(run({{"stress", dir / "ro/file", "5", "10000"}}), (std::vector<std::string>{"ok 50000"}));
}

TEST_F(Files, SymlinkToAnotherGrantedFileWorksToADeniedOneDoesNot) {
    ASSERT_EQ(::symlink((dir / "good/file").c_str(), (dir / "ro/to-good").c_str()), 0);
    ASSERT_EQ(::symlink("file", (dir / "ro/to-sibling").c_str()), 0);
    ASSERT_EQ(::symlink((dir / "ro/secret/key").c_str(), (dir / "ro/to-secret").c_str()), 0);
    ASSERT_EQ(::symlink("secret/key", (dir / "ro/to-secret-rel").c_str()), 0);
    ASSERT_EQ(::symlink((dir / "outside").c_str(), (dir / "ro/to-outside").c_str()), 0);
    ASSERT_EQ(::symlink(dir.path().c_str(), (dir / "ro/to-top").c_str()), 0);
    EXPECT_EQ(run({{"read", dir / "ro/to-good"},
                   {"read", dir / "ro/to-sibling"},
                   {"read", dir / "ro/to-secret"},
                   {"read", dir / "ro/to-secret-rel"},
                   {"read", dir / "ro/to-outside"},
                   {"read", dir / "ro/to-top/outside"},
                   {"stat", dir / "ro/to-secret"},
                   {"open", dir / "ro/to-good", "rdonly|nofollow"}}),
              (std::vector<std::string>{"ok good", "ok read-only content", "EACCES", "EACCES", "EACCES",
                                        "EACCES", "EACCES", "ELOOP"}));
}

TEST_F(Files, CreateThroughASymlinkIsJudgedAtItsTarget) {
    ASSERT_EQ(::symlink((dir / "ro/created").c_str(), (dir / "rw/dangling-to-ro").c_str()), 0);
    ASSERT_EQ(::symlink((dir / "rw/created").c_str(), (dir / "rw/dangling-to-rw").c_str()), 0);
    EXPECT_EQ(run({{"write", dir / "rw/dangling-to-ro", "x"}, {"write", dir / "rw/dangling-to-rw", "y"}}),
              (std::vector<std::string>{"EACCES", "ok"}));
    EXPECT_FALSE(exists(dir / "ro/created"));
    EXPECT_EQ(read_file(dir / "rw/created"), "y");
}

TEST_F(Files, DescendantsGetTheirOwnChannel) {
    EXPECT_EQ(
        run({{"read", dir / "ro/file"}, {"fork", "read", dir / "good/file"}, {"read", dir / "good/file"}}),
        (std::vector<std::string>{"ok read-only content", "ok good", "ok good"}));
}

TEST_F(Files, CreatedFilesBelongToTheWorker) {
    if (!is_root()) GTEST_SKIP() << "only a root broker hands ownership to the worker";
    EXPECT_EQ(run({{"write", dir / "rw/mine", "x"}, {"mkdir", dir / "rw/mydir"}}),
              (std::vector<std::string>{"ok", "ok"}));
    struct ::stat f {
    }, d{};
    ASSERT_EQ(::stat((dir / "rw/mine").c_str(), &f), 0);
    ASSERT_EQ(::stat((dir / "rw/mydir").c_str(), &d), 0);
    EXPECT_EQ(f.st_uid, 65534u);
    EXPECT_EQ(d.st_uid, 65534u);
    struct ::stat existing {};
    ASSERT_EQ(::stat((dir / "rw/file").c_str(), &existing), 0);
    EXPECT_EQ(existing.st_uid, 0u);
}

}  // namespace
}  // namespace fdbroker::test
