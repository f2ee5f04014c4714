#include <fcntl.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/learn/learned_rules.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker::learn {
namespace {

using policy::need_any;
using policy::need_create;
using policy::need_read;
using policy::need_write;

std::shared_ptr<const policy::Policy> load(const std::string& profile_body) {
    const policy::LoadResult r =
        policy::Policy::load_string("version = 1\n[profile.default]\n" + profile_body, "t");
    EXPECT_TRUE(r.policy) << (r.errors.empty() ? "" : r.errors.front().str());
    return r.policy;
}

const policy::Profile& empty_profile() {
    static const auto policy = load("");
    return *policy->profile("default");
}

std::vector<std::string> values(const std::vector<Entry>& entries) {
    std::vector<std::string> out;
    out.reserve(entries.size());
    for (const Entry& e : entries)
        out.push_back(e.value);
    return out;
}

void touch(Observations& seen, const std::string& path, std::uint8_t needs, int times = 1) {
    for (int i = 0; i < times; ++i)
        seen.path(path, needs, "open " + path);
}

TEST(LearnedRules, AFewFilesStayExactManyMakeTheirDirectory) {
    Observations seen;
    for (const char* name : {"a", "b", "c"})
        touch(seen, std::string("/srv/few/") + name, need_read);
    for (const char* name : {"a", "b", "c", "d"})
        touch(seen, std::string("/srv/many/") + name, need_read);
    const Additions add = plan_additions(seen, empty_profile(), {.group = 4});
    EXPECT_EQ(values(add.read),
              (std::vector<std::string>{"/srv/many/**", "/srv/few/a", "/srv/few/b", "/srv/few/c"}));
    EXPECT_TRUE(add.write.empty());
    EXPECT_TRUE(add.create.empty());
    // A lower threshold groups the three.
    const Additions grouped = plan_additions(seen, empty_profile(), {.group = 3});
    EXPECT_EQ(values(grouped.read), (std::vector<std::string>{"/srv/few/**", "/srv/many/**"}));
}

TEST(LearnedRules, CreatingAFileMakesItsDirectoryWriteAndCreateOnlyWhereWritten) {
    Observations seen;
    touch(seen, "/srv/in/data.json", need_read);
    touch(seen, "/srv/out/report.csv", need_write | need_create);
    touch(seen, "/srv/out/sub/deep.csv", need_write | need_create);
    const Additions add = plan_additions(seen, empty_profile(), {});
    EXPECT_EQ(values(add.read), std::vector<std::string>{"/srv/in/data.json"});
    // The outermost directory created in covers what lies beneath it.
    EXPECT_EQ(values(add.write), std::vector<std::string>{"/srv/out/**"});
    EXPECT_EQ(values(add.create), std::vector<std::string>{"/srv/out/**"});
}

TEST(LearnedRules, NeverBroaderThanATouchedDirectory) {
    Observations seen;
    for (const char* name : {"a", "b", "c", "d", "e"}) {
        touch(seen, std::string("/") + name, need_read);       // in "/": never "/**"
        touch(seen, std::string("/home/") + name, need_read);  // never /home/**
        touch(seen, std::string("/proc/") + name, need_read);  // nothing of /proc as a whole
    }
    touch(seen, "/home/new", need_create);
    const Additions add = plan_additions(seen, empty_profile(), {.group = 2});
    for (const Entry& e : add.read)
        EXPECT_EQ(e.value.find('*'), std::string::npos) << e.value;
    EXPECT_EQ(values(add.create), std::vector<std::string>{"/home/new"});
    EXPECT_FALSE(may_group("/"));
    EXPECT_FALSE(may_group("/home"));
    EXPECT_FALSE(may_group("/etc"));
    EXPECT_FALSE(may_group("/proc/1/fd"));
    EXPECT_FALSE(may_group("/dev/pts"));
    EXPECT_TRUE(may_group("/tmp"));
    EXPECT_TRUE(may_group("/dev/shm"));
    EXPECT_TRUE(may_group("/home/alice"));
}

TEST(LearnedRules, RuntimePathsBecomeTheIncludeAndGrantedOnesNothing) {
    Observations seen;
    touch(seen, "/etc/ld.so.cache", need_read, 3);
    touch(seen, "/usr/lib/x86_64-linux-gnu/libc.so.6", need_read);
    touch(seen, "/dev/null", need_read | need_write);
    touch(seen, "/srv/granted", need_read);
    touch(seen, "/etc/shadow", need_read);
    const auto base = load("read = [\"/srv/granted\"]\n");
    const Additions add = plan_additions(seen, *base->profile("default"), {});
    EXPECT_EQ(add.include_runtime, "5 calls on 3 paths, e.g. open /dev/null");
    EXPECT_EQ(values(add.read), std::vector<std::string>{"/etc/shadow"});
    EXPECT_TRUE(add.write.empty());
    // A profile with the include needs it no more.
    const auto with_runtime = load("include = [\"runtime\"]\n");
    EXPECT_TRUE(plan_additions(seen, *with_runtime->profile("default"), {}).include_runtime.empty());
}

TEST(LearnedRules, LookupsOnTheWayNeedNoRule) {
    Observations seen;
    seen.path("/srv", need_any, "stat /srv");
    seen.path("/srv/app/config", need_read, "open /srv/app/config");
    seen.path("/srv/missing", need_any, "stat /srv/missing");
    const Additions add = plan_additions(seen, empty_profile(), {});
    // /srv is on the way to /srv/app/config; a missing file looked up needs a rule (EACCES is not
    // ENOENT), read being the narrowest.
    EXPECT_EQ(values(add.read), (std::vector<std::string>{"/srv/app/config", "/srv/missing"}));
}

TEST(LearnedRules, ProvenanceCountsCallsAndNamesOne) {
    Observations seen;
    seen.path("/srv/app/a", need_read, "open /srv/app/a (read)");
    seen.path("/srv/app/b", need_read, "open /srv/app/b (read)");
    seen.path("/srv/app/b", need_read, "open /srv/app/b (read)");
    const Additions add = plan_additions(seen, empty_profile(), {.group = 2});
    ASSERT_EQ(add.read.size(), 1U);
    EXPECT_EQ(add.read[0], (Entry{"/srv/app/**", "3 calls on 2 paths, e.g. open /srv/app/a (read)"}));
    const Additions exact = plan_additions(seen, empty_profile(), {.group = 3});
    ASSERT_EQ(exact.read.size(), 2U);
    EXPECT_EQ(exact.read[0], (Entry{"/srv/app/a", "1 call: open /srv/app/a (read)"}));
    EXPECT_EQ(exact.read[1], (Entry{"/srv/app/b", "2 calls, e.g. open /srv/app/b (read)"}));
}

TEST(LearnedRules, SocketsSyscallsAndExecOnlyWhenNeeded) {
    Observations seen;
    seen.connects["tcp:127.0.0.1:5432"].calls = 2;
    seen.connects["tcp:10.0.0.5:443"].calls = 1;
    seen.listens["unix:/srv/app.sock"].calls = 1;
    seen.syscalls["sched_setattr"].calls = 1;
    const auto base = load("connect = [\"tcp:10.0.0.0/8:443\"]\n");
    const Additions add = plan_additions(seen, *base->profile("default"), {});
    EXPECT_EQ(values(add.connect), std::vector<std::string>{"tcp:127.0.0.1:5432"});
    EXPECT_EQ(values(add.listen), std::vector<std::string>{"unix:/srv/app.sock"});
    EXPECT_EQ(values(add.create), std::vector<std::string>{"/srv/app.sock"});  // the socket's file
    EXPECT_EQ(values(add.syscalls), std::vector<std::string>{"sched_setattr"});
    EXPECT_TRUE(add.exec.empty());
    seen.exec.calls = 1;
    EXPECT_FALSE(plan_additions(seen, *base->profile("default"), {}).exec.empty());
    const auto allowed = load("exec = true\nsyscalls = { allow = [\"sched_setattr\"] }\n");
    const Additions none = plan_additions(seen, *allowed->profile("default"), {});
    EXPECT_TRUE(none.exec.empty());
    EXPECT_TRUE(none.syscalls.empty());
}

}  // namespace
}  // namespace fdbroker::broker::learn
