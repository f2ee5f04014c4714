// Unit tests for the broker's pieces that do not need a worker: path resolution and judgement,
// open-flag rules, the audit encoding and the process tree.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <string>

#include "broker/core/audit.hpp"
#include "broker/core/process_tree.hpp"
#include "broker/ops/file_ops.hpp"
#include "broker/ops/proc_self.hpp"
#include "broker/ops/resolve.hpp"
#include "support/harness.hpp"

namespace fdbroker::broker {
namespace {

TEST(OpenFlags, KnownFlagsAndNeeds) {
    EXPECT_TRUE(FileOps::open_flags_known(O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECTORY | O_NONBLOCK));
    EXPECT_TRUE(FileOps::open_flags_known(O_RDWR | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_SYNC | 0100000));
    EXPECT_TRUE(FileOps::open_flags_known(O_PATH | O_NOFOLLOW | O_CLOEXEC));
    EXPECT_TRUE(FileOps::open_flags_known(O_TMPFILE | O_RDWR));
    EXPECT_TRUE(FileOps::open_flags_known(O_DIRECT | O_RDONLY));
    EXPECT_TRUE(FileOps::open_flags_known(O_PATH | O_CREAT)) << "open(2) ignores O_CREAT with O_PATH";
    EXPECT_TRUE(FileOps::open_flags_known(O_ACCMODE)) << "Linux's ioctl-only access mode";
    for (int bad : {O_ASYNC, O_NOATIME, 1 << 30})
        EXPECT_FALSE(FileOps::open_flags_known(static_cast<std::uint32_t>(bad))) << bad;
    using namespace policy;
    EXPECT_EQ(FileOps::open_needs(O_ACCMODE), need_read | need_write);
    EXPECT_EQ(FileOps::open_needs(O_RDONLY), need_read);
    EXPECT_EQ(FileOps::open_needs(O_WRONLY), need_write);
    EXPECT_EQ(FileOps::open_needs(O_RDWR), need_read | need_write);
    EXPECT_EQ(FileOps::open_needs(O_RDONLY | O_TRUNC), need_read | need_write);
    EXPECT_EQ(FileOps::open_needs(O_WRONLY | O_APPEND), need_write);
    EXPECT_EQ(FileOps::open_needs(O_PATH), need_any);
    EXPECT_EQ(FileOps::open_needs(O_TMPFILE | O_RDWR), need_read | need_write | need_create);
    EXPECT_EQ(FileOps::open_needs(O_RDONLY | O_CREAT), need_read | need_create);
}

TEST(Audit, JsonEscapingKeepsAnyPathValid) {
    std::string out;
    append_json_escaped(out, std::string_view("a\"b\\c\nd\x01\xc3\xa9", 10));
    EXPECT_EQ(out, "a\\\"b\\\\c\\u000ad\\u0001\\u00c3\\u00a9");
}

TEST(Audit, RecordsGoOutOnFlush) {
    test::TempDir dir;
    std::string error;
    Audit audit = Audit::open(dir / "audit", error);
    ASSERT_TRUE(audit.enabled()) << error;
    audit.set_policy_file("p.toml");
    AuditRecord r;
    r.pid = 42;
    r.uid = 7;
    r.profile = "default";
    r.op = "open";
    r.path = "/etc/shadow";
    r.error = EACCES;
    audit.record(r);
    EXPECT_EQ(test::read_file(dir / "audit"), "");  // batched until the end of the loop turn
    audit.flush();
    const std::string line = test::read_file(dir / "audit");
    EXPECT_NE(
        line.find("\"pid\":42,\"uid\":7,\"profile\":\"default\",\"op\":\"open\",\"path\":\"/etc/shadow\","
                  "\"decision\":\"deny\",\"rule\":null,\"errno\":13,\"error\":\"EACCES\"}\n"),
        std::string::npos)
        << line;
}

class Locate : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "pub").c_str(), 0755);
        ::mkdir((dir / "pub/in").c_str(), 0755);
        ::mkdir((dir / "hidden").c_str(), 0755);
        test::write_file(dir / "pub/in/f", "x");
        const std::string d = dir.path();
        auto loaded = policy::Policy::load_string(
            "version = 1\n[profile.p]\nread = [\"" + d + "/pub/**\"]\ndeny = [\"" + d + "/pub/in/no\"]\n",
            "p.toml");
        ASSERT_TRUE(loaded.policy);
        policy_ = loaded.policy;
        profile_ = policy_->profile("p");
    }
    Verdict locate(const std::string& path, Location& loc) {
        return broker::locate(*profile_, ProcSelf(), path, policy::need_read, loc);
    }
    test::TempDir dir;
    std::shared_ptr<const policy::Policy> policy_;
    const policy::Profile* profile_ = nullptr;
};

TEST_F(Locate, GrantedPathGivesItsRealDirectoryAndName) {
    Location loc;
    const Verdict v = locate(dir / "pub/in/f", loc);
    ASSERT_EQ(v.error, 0);
    EXPECT_TRUE(v.allowed);
    ASSERT_NE(v.rule, nullptr);
    EXPECT_EQ(v.rule->line, 3u);
    EXPECT_EQ(loc.real.view(), dir / "pub/in/f");
    EXPECT_EQ(loc.real.view().substr(0, loc.dir_len), dir / "pub/in");
    EXPECT_STREQ(loc.name, "f");
    struct ::stat st {};
    EXPECT_EQ(::fstatat(loc.dir.get(), loc.name, &st, 0), 0);
}

TEST_F(Locate, MissingParentIsTheRealErrorOnlyWithoutSymlinks) {
    Location loc;
    EXPECT_EQ(locate(dir / "pub/nodir/f", loc).error, ENOENT);
    // A symlink in a granted tree pointing at a missing place outside it must not tell existence apart.
    ASSERT_EQ(::symlink((dir / "hidden/missing").c_str(), (dir / "pub/probe").c_str()), 0);
    ASSERT_EQ(::symlink((dir / "hidden").c_str(), (dir / "pub/probe2").c_str()), 0);
    Location a, b;
    EXPECT_EQ(locate(dir / "pub/probe/f", a).error, EACCES);
    EXPECT_EQ(locate(dir / "pub/probe2/f", b).error, EACCES);
}

TEST_F(Locate, SymlinkedParentIsJudgedWhereItLeads) {
    ASSERT_EQ(::symlink("in", (dir / "pub/alias").c_str()), 0);
    Location loc;
    ASSERT_EQ(locate(dir / "pub/alias/f", loc).error, 0);
    EXPECT_EQ(loc.real.view(), dir / "pub/in/f");
    // The deny rule applies to the real path even when the request names it through the alias.
    Location denied;
    const Verdict v = locate(dir / "pub/alias/no", denied);
    EXPECT_EQ(v.error, EACCES);
    EXPECT_FALSE(v.allowed);
    ASSERT_NE(v.rule, nullptr);
    EXPECT_EQ(v.rule->kind, policy::RuleKind::deny);
}

TEST_F(Locate, NotNormalOrNotGrantedIsRefusedWithoutTouchingTheFilesystem) {
    for (const std::string& p : {dir / "pub/../hidden/x", dir.path() + "//pub/in/f", std::string("pub/in/f"),
                                 dir / "hidden/x", dir / "pub/in/no"}) {
        Location loc;
        EXPECT_EQ(locate(p, loc).error, EACCES) << p;
        EXPECT_FALSE(loc.dir) << p;
    }
}

TEST_F(Locate, PathLongerThanPathMaxIsLocatedWhereNoSymlinkLies) {
    const std::string deep = test::make_deep_tree(dir / "pub/in", 20, "deep\n");
    ASSERT_GT(deep.size(), static_cast<std::size_t>(PATH_MAX));
    Location loc;
    const Verdict v = locate(deep + "/f", loc);
    ASSERT_EQ(v.error, 0);
    EXPECT_TRUE(v.allowed);
    EXPECT_EQ(loc.real.view(), deep + "/f");
    EXPECT_STREQ(loc.name, "f");
    const unique_fd f(::openat(loc.dir.get(), loc.name, O_RDONLY | O_CLOEXEC));
    char content[16] = {};
    ASSERT_TRUE(f);
    EXPECT_EQ(::read(f.get(), content, sizeof content), 5);
    EXPECT_STREQ(content, "deep\n");
    Location missing;
    EXPECT_EQ(locate(deep + "/nodir/f", missing).error, ENOENT);
}

TEST_F(Locate, PathLongerThanPathMaxThroughASymlinkIsRefused) {
    // A symlink makes the real path of the directory reached what is judged, and the kernel cannot
    // name a directory that deep.
    ASSERT_EQ(::symlink("in", (dir / "pub/alias").c_str()), 0);
    std::string through = test::make_deep_tree(dir / "pub/in", 20, "deep\n");
    through.replace(through.find("/pub/in/"), 8, "/pub/alias/");
    Location loc;
    const Verdict v = locate(through + "/f", loc);
    EXPECT_EQ(v.error, EACCES);
    EXPECT_FALSE(v.allowed);
}

TEST(ProcessTreeTest, ContainsTheWorkerAndItsDescendantsOnly) {
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    const pid_t worker = ::fork();
    if (worker == 0) {
        // The worker forks a grandchild, reports its pid, and both wait to be killed.
        const pid_t grandchild = ::fork();
        if (grandchild == 0) ::pause();
        [[maybe_unused]] auto n = ::write(ready[1], &grandchild, sizeof grandchild);
        ::pause();
    }
    pid_t grandchild = -1;
    ASSERT_EQ(::read(ready[0], &grandchild, sizeof grandchild), static_cast<ssize_t>(sizeof grandchild));
    const ProcessTree tree(worker, ::getpid());
    EXPECT_TRUE(tree.contains(worker));
    EXPECT_TRUE(tree.contains(grandchild));
    EXPECT_FALSE(tree.contains(::getpid()));
    EXPECT_FALSE(tree.contains(::getppid()));
    EXPECT_FALSE(tree.contains(1));
    EXPECT_EQ(parent_pid(grandchild), worker);
    ::kill(grandchild, SIGKILL);
    ::kill(worker, SIGKILL);
    ::waitpid(worker, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
}

TEST(ProcSelf, NamesTheCallerNotTheBroker) {
    const pid_t me = ::getpid();
    const ProcSelf self(me);
    const std::string mine = "/proc/" + std::to_string(me);
    policy::PathBuffer out;
    ASSERT_TRUE(self.rewrite("/proc/self/status", out));
    EXPECT_EQ(out.view(), mine + "/status");
    ASSERT_TRUE(self.rewrite("/proc/thread-self", out));
    EXPECT_EQ(out.view(), mine + "/task/" + std::to_string(me));
    EXPECT_FALSE(self.rewrite("/proc/selfish", out));
    EXPECT_FALSE(self.rewrite("/proc/1/status", out));
    EXPECT_TRUE(self.owns(mine + "/maps"));
    EXPECT_TRUE(self.owns(mine));
    EXPECT_FALSE(self.owns(mine + "0/maps"));
    EXPECT_FALSE(self.owns("/proc/1/maps"));
    EXPECT_TRUE(self.is_fd_directory(mine + "/fd"));
    EXPECT_TRUE(self.is_fd_directory(mine + "/task/" + std::to_string(me) + "/fd"));
    EXPECT_FALSE(self.is_fd_directory(mine + "/fdinfo"));
    EXPECT_FALSE(self.is_fd_directory("/proc/1/fd"));
    // With no caller, /proc/self names nothing that may be reached.
    ASSERT_TRUE(ProcSelf().rewrite("/proc/self/environ", out));
    EXPECT_EQ(out.size(), 0u);
}

TEST(ProcSelf, AWalkThroughAHeldDirectoryGoesOnFromItsPath) {
    test::TempDir dir;
    const unique_fd held(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const unique_fd fd_dir(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(held && fd_dir);
    const pid_t me = ::getpid();
    const ProcSelf self(me);
    const std::string fd = "/fd/" + std::to_string(held.get());
    policy::PathBuffer out;
    ASSERT_TRUE(self.rewrite("/proc/self" + fd + "/a/b", out));
    EXPECT_EQ(out.view(), dir.path() + "/a/b");
    ASSERT_TRUE(self.rewrite("/proc/" + std::to_string(me) + fd + "/a", out));
    EXPECT_EQ(out.view(), dir.path() + "/a");
    // Through a held /proc/self/fd, then the held directory: both steps taken.
    const std::string twice =
        "/proc/self/fd/" + std::to_string(fd_dir.get()) + "/" + std::to_string(held.get()) + "/a";
    ASSERT_TRUE(self.rewrite(twice, out));
    EXPECT_EQ(out.view(), dir.path() + "/a");
    // The link itself is left to the walk (walk.hpp); another process's links are not the caller's.
    ASSERT_TRUE(self.rewrite("/proc/self" + fd, out));
    EXPECT_EQ(out.view(), "/proc/" + std::to_string(me) + fd);
    EXPECT_FALSE(self.rewrite("/proc/1" + fd + "/a", out));
    // A descriptor with no directory path leads nowhere.
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const unique_fd r(fds[0]), w(fds[1]);
    ASSERT_TRUE(self.rewrite("/proc/self/fd/" + std::to_string(r.get()) + "/x", out));
    EXPECT_EQ(out.size(), 0u);
}

TEST(ProcSelf, MagicLinksAreTheOnesOpenat2Names) {
    EXPECT_TRUE(through_magic_link("/proc/self/fd/3/x", false));
    EXPECT_TRUE(through_magic_link("/proc/self/fd/3", true));
    EXPECT_FALSE(through_magic_link("/proc/self/fd/3", false));
    EXPECT_FALSE(through_magic_link("/proc/self/fd", true));
    EXPECT_TRUE(through_magic_link("/proc/12/task/13/cwd/x", false));
    EXPECT_TRUE(through_magic_link("/proc/thread-self/root", true));
    EXPECT_TRUE(through_magic_link("/proc/1/ns/net", true));
    EXPECT_TRUE(through_magic_link("/proc/1/exe", true));
    EXPECT_FALSE(through_magic_link("/proc/self/status", true));
    EXPECT_FALSE(through_magic_link("/proc/self", true));
    EXPECT_FALSE(through_magic_link("/proc/sys/fd/3", true));
    EXPECT_FALSE(through_magic_link("/tmp/proc/self/fd/3/x", true));
}

}  // namespace
}  // namespace fdbroker::broker
