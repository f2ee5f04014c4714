#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

#include "broker/core/audit.hpp"
#include "broker/learn/observations.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker::learn {
namespace {

AuditRecord record(std::string_view op, std::string_view path, std::uint32_t flags = 0) {
    AuditRecord r;
    r.op = op;
    r.path = path;
    r.flags = flags;
    return r;
}

TEST(Observations, NeedsFollowTheOperation) {
    EXPECT_EQ(needs_of("open", O_RDONLY), policy::need_read);
    EXPECT_EQ(needs_of("open", O_WRONLY | O_CREAT | O_TRUNC), policy::need_write | policy::need_create);
    EXPECT_EQ(needs_of("open", O_RDWR), policy::need_read | policy::need_write);
    EXPECT_EQ(needs_of("stat", 0), policy::need_any);
    EXPECT_EQ(needs_of("access", R_OK), policy::need_read);
    EXPECT_EQ(needs_of("access", F_OK), policy::need_any);
    EXPECT_EQ(needs_of("chmod", 0), policy::need_write);
    EXPECT_EQ(needs_of("rename", 0), policy::need_create);
    EXPECT_EQ(needs_of("rename", 0, /*second=*/true), policy::need_create);
    EXPECT_EQ(needs_of("link", 0, /*second=*/true), policy::need_any);
    EXPECT_EQ(needs_of("getxattr", 0), policy::need_read);
    EXPECT_EQ(needs_of("connect", 0), 0);
}

TEST(Collector, CountsPerPathAndKeepsTheFirstExample) {
    Collector c;
    c.refused(record("open", "/srv/a", O_RDONLY), 0);
    c.refused(record("open", "/srv/a", O_WRONLY), 0);
    c.refused(record("stat", "/srv/a"), ENOENT);
    const PathUse& a = c.observations().paths.at("/srv/a");
    EXPECT_EQ(a.needs, policy::need_read | policy::need_write | policy::need_any);
    EXPECT_EQ(a.all.calls, 3U);
    EXPECT_EQ(a.read.calls, 1U);
    EXPECT_EQ(a.write.calls, 1U);
    EXPECT_EQ(a.lookup.calls, 1U);
    EXPECT_EQ(a.all.example, "open /srv/a (read)");
    EXPECT_EQ(a.write.example, "open /srv/a (write)");
}

TEST(Collector, RenameTeachesBothNamesSymlinkOnlyItsOwn) {
    Collector c;
    AuditRecord r = record("rename", "/srv/tmp.1");
    r.path2 = "/srv/final";
    c.refused(r, 0);
    AuditRecord s = record("symlink", "/srv/link");
    s.path2 = "/etc/shadow";  // the link's text: no path it touches
    c.refused(s, 0);
    const auto& paths = c.observations().paths;
    EXPECT_EQ(paths.at("/srv/tmp.1").needs, policy::need_create);
    EXPECT_EQ(paths.at("/srv/final").needs, policy::need_create);
    EXPECT_EQ(paths.at("/srv/link").needs, policy::need_create);
    EXPECT_FALSE(paths.contains("/etc/shadow"));
}

TEST(Collector, AnExistingNameNeedsOnlyALookup) {
    Collector c;
    c.refused(record("mkdir", "/tmp"), EEXIST);
    c.refused(record("mkdir", "/srv/new"), 0);
    EXPECT_EQ(c.observations().paths.at("/tmp").needs, policy::need_any);
    EXPECT_EQ(c.observations().paths.at("/srv/new").needs, policy::need_create);
}

// What the worker's user may not do itself teaches nothing: a rule would grant it more.
TEST(Collector, WhatTheUserCannotDoIsNotLearned) {
    Collector c;
    c.refused(record("open", "/etc/shadow", O_RDONLY), EACCES);
    c.refused(record("chown", "/srv/a"), EPERM);
    c.refused(record("open", "/srv/missing", O_RDONLY), ENOENT);
    EXPECT_FALSE(c.observations().paths.contains("/etc/shadow"));
    EXPECT_FALSE(c.observations().paths.contains("/srv/a"));
    EXPECT_TRUE(c.observations().paths.contains("/srv/missing"));
}

TEST(Collector, SocketsSystemCallsExecAndNoOwnProcEntries) {
    Collector c;
    c.refused(record("connect", "tcp:127.0.0.1:5432"), 0);
    c.refused(record("bind", "unix:/run/app.sock"), 0);
    AuditRecord call = record("syscall", "");
    call.syscall = "sched_setattr";
    c.refused(call, 0);
    call.syscall = "execve";
    c.refused(call, 0);
    c.refused(record("open", "/proc/self/fd/4", O_WRONLY), 0);
    c.reached("chmod", "/proc/thread-self/fd/3", policy::need_write);
    c.reached("chmod", "/srv/fifo", policy::need_write);
    const Observations& seen = c.observations();
    EXPECT_EQ(seen.connects.at("tcp:127.0.0.1:5432").calls, 1U);
    EXPECT_EQ(seen.listens.at("unix:/run/app.sock").calls, 1U);
    EXPECT_EQ(seen.syscalls.at("sched_setattr").calls, 1U);
    EXPECT_EQ(seen.exec.calls, 1U);
    EXPECT_EQ(seen.paths.size(), 1U);
    EXPECT_EQ(seen.paths.at("/srv/fifo").write.example, "chmod reaching /srv/fifo (write)");
}

}  // namespace
}  // namespace fdbroker::broker::learn
