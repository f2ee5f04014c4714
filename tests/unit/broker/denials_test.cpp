// The lines -v prints for the audit stream's denials, and what fdbroker run's hints learn from them.
#include "broker/core/denials.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>

#include "broker/core/audit.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {
namespace {

AuditRecord denied(std::string_view op, std::string_view path, std::uint32_t flags = 0) {
    AuditRecord r;
    r.profile = "default";
    r.op = op;
    r.path = path;
    r.flags = flags;
    r.error = EACCES;
    return r;
}

TEST(Denials, ALineSaysWhatWasAskedAndWhy) {
    EXPECT_EQ(Denials::describe(denied("open", "/etc/x.conf", O_WRONLY | O_TRUNC), "p.toml"),
              "denied write /etc/x.conf (profile default): no rule grants write");
    EXPECT_EQ(Denials::describe(denied("open", "/etc/shadow", O_RDONLY), "p.toml"),
              "denied read /etc/shadow (profile default): no rule grants read");
    EXPECT_EQ(Denials::describe(denied("open", "/srv/new", O_WRONLY | O_CREAT), "p.toml"),
              "denied create /srv/new (profile default): no rule grants create");
    EXPECT_EQ(Denials::describe(denied("open", "/srv", O_PATH | O_DIRECTORY), "p.toml"),
              "denied look up /srv (profile default): no rule grants anything");
    EXPECT_EQ(Denials::describe(denied("mkdir", "/srv/d"), "p.toml"),
              "denied mkdir /srv/d (profile default): no rule grants create");
    EXPECT_EQ(Denials::describe(denied("stat", "/root"), "p.toml"),
              "denied stat /root (profile default): no rule grants anything");
    AuditRecord rename = denied("rename", "/a");
    rename.path2 = "/b";
    EXPECT_EQ(Denials::describe(rename, "p.toml"),
              "denied rename /a to /b (profile default): no rule grants create");
    EXPECT_EQ(Denials::describe(denied("connect", "tcp:10.0.0.1:80"), "p.toml"),
              "denied connect tcp:10.0.0.1:80 (profile default): no connect rule matches");
    EXPECT_EQ(Denials::describe(denied("execve", "/usr/bin/ls"), "p.toml"),
              "denied execve (profile default): the profile has exec = false");

    const auto loaded = policy::Policy::load_string(
        "version = 1\n[profile.default]\nread = [\"/etc/**\"]\ndeny = [\"/etc/shadow\"]\n", "p.toml");
    ASSERT_NE(loaded.policy, nullptr);
    AuditRecord by_rule = denied("open", "/etc/shadow");
    by_rule.rule = loaded.policy->profile("default")->decide("/etc/shadow", policy::need_read).rule;
    ASSERT_NE(by_rule.rule, nullptr);
    EXPECT_EQ(
        Denials::describe(by_rule, "p.toml"),
        "denied read /etc/shadow (profile default): rule at p.toml:4:9 (deny \"/etc/shadow\") denies it");
}

TEST(Denials, OneKeyPerDistinctDenialAndOneForEveryExecRefusal) {
    EXPECT_EQ(Denials::key(denied("open", "/a")), Denials::key(denied("open", "/a")));
    EXPECT_NE(Denials::key(denied("open", "/a")), Denials::key(denied("open", "/b")));
    EXPECT_NE(Denials::key(denied("open", "/a", O_RDONLY)), Denials::key(denied("open", "/a", O_WRONLY)));
    // execvp over $PATH: one refusal, however many directories it tries.
    EXPECT_EQ(Denials::key(denied("execve", "/usr/local/bin/ls")),
              Denials::key(denied("execve", "/usr/bin/ls")));
}

TEST(Denials, CountsWhatTheHintsNeed) {
    Denials d(/*verbose=*/false);
    AuditRecord allowed = denied("open", "/etc/hostname");
    allowed.allowed = true;
    allowed.error = 0;
    d.note(allowed, "p.toml");
    EXPECT_EQ(d.decisions(), 1u);
    EXPECT_EQ(d.denied(), 0u);
    EXPECT_TRUE(d.first().empty());
    d.note(denied("open", "/etc/ld.so.cache"), "p.toml");
    d.note(denied("open", "/lib/x86_64-linux-gnu/libc.so.6"), "p.toml");
    EXPECT_EQ(d.decisions(), 3u);
    EXPECT_EQ(d.denied(), 2u);
    EXPECT_EQ(d.first(), "denied read /etc/ld.so.cache (profile default): no rule grants read");
    EXPECT_EQ(d.loader_path(), "/etc/ld.so.cache");
}

TEST(Denials, LoaderPaths) {
    EXPECT_TRUE(is_loader_path("/etc/ld.so.cache"));
    EXPECT_TRUE(is_loader_path("/etc/ld.so.preload"));
    EXPECT_TRUE(is_loader_path("/usr/lib/x86_64-linux-gnu/libc.so.6"));
    EXPECT_TRUE(is_loader_path("/opt/lib/libfoo.so"));
    EXPECT_FALSE(is_loader_path("/etc/shadow"));
    EXPECT_FALSE(is_loader_path("/srv/some.solution"));
}

TEST(Denials, TheAuditStreamFeedsThemWithOrWithoutAFile) {
    Denials d(/*verbose=*/false);
    Audit audit;  // no stream
    audit.watch(&d);
    audit.record(denied("open", "/etc/shadow"));
    audit.flush();
    EXPECT_EQ(d.denied(), 1u);
}

}  // namespace
}  // namespace fdbroker::broker
