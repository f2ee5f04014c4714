// Transparent mode against a hostile program: the broker writes results into the caller's memory, so
// it must write only where the caller itself could.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

TEST(TransparentAttack, ResultsAreNeverWrittenIntoReadOnlyMemory) {
    // A program that made a page read-only (its GOT after relocation, sealed data) must not be able to
    // have the broker write there: stat and readlink into it fail with EFAULT, as natively, even when
    // the buffer starts on a writable page.
    if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    TempDir dir;
    write_file(dir / "file", "x");
    ASSERT_EQ(::symlink("file", (dir / "link").c_str()), 0);
    const Outcome native = run_command({staged(TRANSPARENT_WORKER), "readonly", dir / "file", dir / "link"});
    // (readlink writes only the target's four bytes, all on the writable page.)
    ASSERT_EQ(native.out, "stat=14 stat-straddling=14 readlink=14 readlink-straddling=ok\n") << native.err;
    const std::string policy =
        "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nread = [\"" + dir.path() + "/**\"]\n";
    const Outcome o = run_broker(
        dir, policy, {staged(TRANSPARENT_WORKER), "readonly", dir / "file", dir / "link"}, {"--transparent"});
    EXPECT_EQ(o.out, native.out) << o.err;
}

// Truncating a file the worker may only read, by every route there is, whether the broker or the
// kernel (reads = "kernel", whose Landlock domain grants truncating beside reading) judges its reads:
// the file is one the worker's user could truncate natively.
class TransparentTruncationAttack : public ::testing::TestWithParam<const char*> {};

TEST_P(TransparentTruncationAttack, NoRouteTruncatesAFileOfTheReadSet) {
    if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    TempDir dir;
    ::mkdir((dir / "data").c_str(), 0755);
    write_file(dir / "data/file", "keep\n", 0666);
    ASSERT_EQ(::chmod((dir / "data/file").c_str(), 0666), 0);
    const std::string policy = "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nreads = \"" +
                               std::string(GetParam()) + "\"\nread = [\"" + dir.path() + "/data/**\"]\n";
    const Outcome o = run_broker(dir, policy, {staged(TRANSPARENT_WORKER), "truncations", dir / "data/file"},
                                 {"--transparent"});
    ASSERT_EQ(o.status, 0) << o.err;
    const std::vector<std::string> lines = o.lines();
    ASSERT_EQ(lines.size(), 8U) << o.out;
    for (const std::string& line : lines)
        EXPECT_EQ(line.find(" ok"), std::string::npos) << line;
    EXPECT_EQ(read_file(dir / "data/file"), "keep\n");
}

INSTANTIATE_TEST_SUITE_P(Reads, TransparentTruncationAttack, ::testing::Values("broker", "kernel"));

// Metadata calls performed for a hostile program: the broker performs them with the worker's identity,
// so nothing happens that its user could not do natively, and the policy narrows that further.
class TransparentMetadataAttack : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
        for (const char* d : {"ro", "rw", "rw/secret"})
            ::mkdir((dir / d).c_str(), 0755);
        write_file(dir / "ro/file", "read only");
        write_file(dir / "rw/secret/key", "SECRET", 0600);
        write_file(dir / "rw/roots", "root's", 0666);  // writable by all, owned by root
        give_to_nobody(dir / "rw");
        ASSERT_EQ(::chown((dir / "rw/roots").c_str(), 0, 0), 0);
        ASSERT_EQ(::chmod((dir / "rw/roots").c_str(), 0666), 0);
    }
    Outcome run(const std::string& script) {
        const std::string d = dir.path();
        const std::string policy =
            "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nexec = true\n"
            "read = [\"" +
            d + "/**\"]\nwrite = [\"" + d + "/rw/**\"]\ncreate = [\"" + d + "/rw/**\"]\ndeny = [\"" + d +
            "/rw/secret/**\"]\n";
        return run_broker(dir, policy, {"/bin/sh", "-c", script, "sh", d}, {"--transparent"});
    }
    TempDir dir;
};

TEST_F(TransparentMetadataAttack, AHardLinkGrantsNothingTheFileDidNotHave) {
    // Linking a read-only file into the writable tree would make it writable there; linking a denied
    // file out from under its deny would make it readable.
    const Outcome o =
        run("cd \"$1\"; ln ro/file rw/l1 2>&1; ln rw/secret/key rw/l2 2>&1; cat rw/l2 2>&1; "
            "python3 -c 'import os; os.link(\"ro/file\", \"rw/l3\")' 2>&1 | tail -1; true");
    EXPECT_FALSE(exists(dir / "rw/l1"));
    EXPECT_FALSE(exists(dir / "rw/l2"));
    EXPECT_FALSE(exists(dir / "rw/l3"));
    EXPECT_FALSE(contains(o.out, "SECRET")) << o.out;
    EXPECT_TRUE(contains(o.out, "Permission denied")) << o.out;
}

TEST_F(TransparentMetadataAttack, OwnersAndModesChangeOnlyAsTheKernelAllowsTheWorkersUser) {
    // Giving a file away, taking root's, or changing the mode of a file the worker does not own are
    // refused by the kernel (EPERM), though the policy grants write on all of them.
    const Outcome o =
        run("cd \"$1\"; touch rw/mine; chown root rw/mine 2>&1; chgrp root rw/mine 2>&1; "
            "chmod 4777 rw/roots 2>&1; chown nobody rw/roots 2>&1; touch -d 2001-01-01 rw/roots 2>&1; "
            "chmod 0600 rw/secret/key 2>&1; true");
    struct ::stat st {};
    ASSERT_EQ(::stat((dir / "rw/mine").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u);
    EXPECT_EQ(st.st_gid, 65534u);
    ASSERT_EQ(::stat((dir / "rw/roots").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_mode & 07777, 0666u);
    EXPECT_GT(st.st_mtime, 978307200) << "explicit times need ownership";
    EXPECT_EQ(std::count(o.out.begin(), o.out.end(), '\n'), 6) << o.out;
    EXPECT_TRUE(contains(o.out, "Operation not permitted")) << o.out;
    EXPECT_TRUE(contains(o.out, "Permission denied")) << "the deny stands whoever owns the file: " << o.out;
}

TEST_F(TransparentMetadataAttack, ProcSelfIsTheWorkerAndOtherProcessesAsTheWorkersUserSeesThem) {
    // Even with /proc granted, /proc/self is the program, not the root broker, and another user's
    // entries are read as the worker's user would read them.
    const std::string d = dir.path();
    const std::string policy =
        "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nread = [\"/proc/**\"]\n";
    const Outcome self =
        run_broker(dir, policy, {"/bin/grep", "^Uid:", "/proc/self/status"}, {"--transparent"});
    EXPECT_EQ(self.out, "Uid:\t65534\t65534\t65534\t65534\n") << self.err;
    const Outcome init = run_broker(dir, policy, {"/bin/cat", "/proc/1/environ"}, {"--transparent"});
    EXPECT_NE(init.status, 0);
    EXPECT_TRUE(contains(init.err, "Permission denied")) << init.err;
}

TEST_F(TransparentMetadataAttack, ASymlinkLoopIsEloopOnlyWhereEveryLinkIsGranted) {
    // A loop of links inside the granted tree is the kernel's ELOOP, as natively; one that passes
    // through a link where the policy grants nothing stays EACCES, which says nothing of what is there.
    TempDir outside;
    ASSERT_EQ(::chmod(outside.path().c_str(), 0755), 0);
    ASSERT_EQ(::symlink((dir / "rw/far").c_str(), (outside / "back").c_str()), 0);
    const Outcome o = run("cd \"$1\"; ln -s near rw/near; ln -s " + outside / "back" +
                          " rw/far; stat rw/near/x 2>&1; stat rw/far/x 2>&1; mkdir rw/near/y 2>&1; true");
    EXPECT_EQ(std::count(o.out.begin(), o.out.end(), '\n'), 3) << o.out;
    const std::size_t first = o.out.find('\n');
    const std::string near = o.out.substr(0, first);
    const std::string far = o.out.substr(first + 1);
    EXPECT_TRUE(contains(near, "Too many levels of symbolic links")) << o.out;
    EXPECT_TRUE(contains(far, "Permission denied")) << o.out;
    EXPECT_FALSE(contains(far.substr(0, far.find('\n')), "Too many levels")) << o.out;
}

TEST_F(TransparentMetadataAttack, WhatIsMissingBeyondASymlinkIsSaidOnlyWhereTheWorkerMayLook) {
    // Beyond a link to a granted directory a missing name is the kernel's ENOENT (a search path through a
    // symlinked directory); beyond a link to where nothing is granted, whether a directory exists there
    // or not, EACCES alike.
    TempDir outside;
    ASSERT_EQ(::chmod(outside.path().c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((outside / "exists").c_str(), 0755), 0);
    const Outcome o =
        run("cd \"$1\"; ln -s ../ro rw/in; ln -s " + outside.path() +
            " rw/out; stat rw/in/none/x 2>&1; stat rw/out/exists/x 2>&1; stat rw/out/none/x 2>&1; "
            "stat rw/out/exists/x/y 2>&1; true");
    EXPECT_EQ(std::count(o.out.begin(), o.out.end(), '\n'), 4) << o.out;
    const std::size_t first = o.out.find('\n');
    EXPECT_TRUE(contains(o.out.substr(0, first), "No such file or directory")) << o.out;
    const std::string rest = o.out.substr(first + 1);
    EXPECT_FALSE(contains(rest, "No such file")) << o.out;
    std::size_t denied = 0;
    for (std::size_t at = rest.find("Permission denied"); at != std::string::npos;
         at = rest.find("Permission denied", at + 1))
        ++denied;
    EXPECT_EQ(denied, 3u) << o.out;
}

TEST_F(TransparentMetadataAttack, MakingWhatIsThereIsEexistOnlyWhereTheWorkerMayLook) {
    // The work directory and its parent may be looked up, so making them again is the kernel's EEXIST
    // (mkdir -p, CMake); /root may not, so it is EACCES like a path that does not exist.
    const Outcome o =
        run("mkdir \"$1\" 2>&1; mkdir /tmp 2>&1; mkdir /root 2>&1; mkdir /no-such-dir 2>&1; true");
    const auto lines = [&](std::string_view what) {
        std::size_t n = 0;
        for (std::size_t at = o.out.find(what); at != std::string::npos; at = o.out.find(what, at + 1))
            ++n;
        return n;
    };
    EXPECT_EQ(lines("File exists"), 2u) << o.out;
    EXPECT_EQ(lines("Permission denied"), 2u) << o.out;
}

TEST_F(TransparentMetadataAttack, AMetadataChangeThroughASymlinkIntoProcIsRefusedAsToTheWorkersUser) {
    // Metadata changes run with the thread's file-system identity, which keeps CAP_SYS_PTRACE: a walk
    // through a root process's /proc/PID/cwd must still be refused, so that a file there that anyone
    // may write (and so touch, natively) keeps its times and mode.
    const std::string d = dir.path();
    write_file(dir / "ro/open", "anyone's", 0666);
    ASSERT_EQ(::chmod((dir / "ro/open").c_str(), 0666), 0);
    const struct ::timespec old_times[2] = {{1000000000, 0}, {1000000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir / "ro/open").c_str(), old_times, 0), 0);
    const pid_t root_process = ::fork();
    ASSERT_GE(root_process, 0);
    if (root_process == 0) {
        if (::chdir((d + "/ro").c_str()) == 0) ::pause();
        ::_exit(1);
    }
    const std::string policy =
        "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nexec = true\nread = [\"" + d +
        "/**\", \"/proc/**\"]\nwrite = [\"" + d + "/**\"]\ncreate = [\"" + d + "/rw/**\"]\n";
    const std::string script =
        "cd \"$1\"; ln -s /proc/$2/cwd rw/l; touch -c rw/l/open 2>&1; chmod 0600 rw/l/open 2>&1; true";
    const Outcome o = run_broker(
        dir, policy, {"/bin/sh", "-c", script, "sh", d, std::to_string(root_process)}, {"--transparent"});
    ::kill(root_process, SIGKILL);
    ::waitpid(root_process, nullptr, 0);
    struct ::stat st {};
    ASSERT_EQ(::stat((dir / "ro/open").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtime, 1000000000) << o.out;
    EXPECT_EQ(st.st_mode & 07777, 0666u) << o.out;
    EXPECT_EQ(std::count(o.out.begin(), o.out.end(), '\n'), 2) << o.out;
}

TEST_F(TransparentMetadataAttack, ASymlinkIntoProcReachesOnlyWhatTheWorkersUserCould) {
    // Transparent mode's file operations keep the broker's CAP_SYS_PTRACE for reading callers' memory;
    // a walk that reaches /proc through a symlink must not use it. A root process whose working
    // directory is granted: its /proc/PID/cwd link is the kernel's to refuse the worker's user (EACCES),
    // even though where it leads is readable.
    const std::string d = dir.path();
    const pid_t root_process = ::fork();
    ASSERT_GE(root_process, 0);
    if (root_process == 0) {
        if (::chdir((d + "/ro").c_str()) == 0) ::pause();
        ::_exit(1);
    }
    const std::string pid = std::to_string(root_process);
    const std::string policy =
        "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nexec = true\nread = [\"" + d +
        "/**\", \"/proc/**\"]\nwrite = [\"" + d + "/rw/**\"]\ncreate = [\"" + d + "/rw/**\"]\n";
    const Outcome o = run_broker(
        dir, policy,
        {"/bin/sh", "-c",
         "cd \"$1\"; ln -s /proc/$2/cwd rw/l; cat rw/l/file 2>&1; ls rw/l/ 2>&1; readlink -e rw/l 2>&1; true",
         "sh", d, pid},
        {"--transparent"});
    ::kill(root_process, SIGKILL);
    ::waitpid(root_process, nullptr, 0);
    EXPECT_FALSE(contains(o.out, "read only")) << o.out;
    EXPECT_FALSE(contains(o.out, "file\n")) << o.out;
    EXPECT_TRUE(contains(o.out, "Permission denied")) << o.out;
}

}  // namespace
}  // namespace fdbroker::test
