// `fdbroker explain --audit`: audit lines read back, denials grouped, and the rules suggested.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "broker/explain/audit_summary.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::broker::explain {
namespace {

using test::policy_text::load;

TEST(AuditLine, ReadsTheFieldsTheBrokerWrites) {
    const auto f = parse_audit_line(
        R"({"time":"2026-01-01T00:00:00.000000Z","pid":7,"uid":0,"profile":"default","op":"open",)"
        R"("path":"/a\"b\u00ff","flags":2,"decision":"deny","rule":null,"errno":13,"error":"EACCES","need":"write"})");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->at("path"), "/a\"b\xff");
    EXPECT_EQ(f->at("flags"), "2");
    EXPECT_EQ(f->at("rule"), "null");
    EXPECT_EQ(f->at("need"), "write");
    EXPECT_FALSE(parse_audit_line("fdbroker: not json"));
    EXPECT_FALSE(parse_audit_line(R"({"op":"open")"));
}

std::string denial(const std::string& op, const std::string& path, const std::string& need, int flags = 0) {
    return R"({"pid":1,"uid":0,"profile":"default","op":")" + op + R"(","path":")" + path + R"(","flags":)" +
           std::to_string(flags) + R"(,"decision":"deny","rule":null,"errno":13,"need":")" + need + "\"}\n";
}

TEST(AuditSummary, GroupsByDirectoryAndSuggestsARule) {
    const auto policy = load(R"(version = 1
[profile.default]
read = ["/etc/hostname"]
deny = ["/srv/secret/**"]
)");
    std::stringstream in;
    in << denial("open", "/srv/data/a", "read") << denial("open", "/srv/data/b", "read")
       << denial("open", "/srv/data/c", "read") << denial("open", "/srv/data/a", "read")
       << denial("open", "/var/log/x", "write", 1) << denial("open", "/srv/secret/k", "read")
       << R"({"pid":1,"uid":0,"profile":"default","op":"syscall","path":"","syscall":"ptrace","decision":"deny","rule":null,"errno":1})"
       << "\n"
       << R"({"pid":1,"uid":0,"profile":"default","op":"open","path":"/etc/hostname","decision":"allow","rule":"p.toml:3","errno":0})"
       << "\nnot an audit line\n";
    const AuditSummary s = summarise_audit(in, *policy);
    EXPECT_EQ(s.denials, 7U);
    EXPECT_EQ(s.unreadable, 1U);
    ASSERT_EQ(s.groups.size(), 3U);
    EXPECT_EQ(s.groups[0].directory, "/srv/data");
    EXPECT_EQ(s.groups[0].requests, 4U);
    EXPECT_EQ(s.groups[0].paths.size(), 3U);
    EXPECT_EQ(s.groups[0].suggestion, "read = [\"/srv/data/*\"]");
    EXPECT_NE(s.groups[0].where.find("'read' list of [profile.default] (p.toml:3)"), std::string::npos)
        << s.groups[0].where;
    EXPECT_EQ(s.groups[1].suggestion, "write = [\"/var/log/x\"]");
    EXPECT_NE(s.groups[1].where.find("add a 'write' key"), std::string::npos) << s.groups[1].where;
    EXPECT_EQ(s.groups[2].suggestion, "");
    EXPECT_NE(s.groups[2].denied_by.find("p.toml:4:9 deny \"/srv/secret/**\""), std::string::npos)
        << s.groups[2].denied_by;
    EXPECT_EQ(s.syscalls.at("default\tptrace"), 1U);
    const std::string text = render_summary_text(s);
    EXPECT_NE(text.find("syscalls.allow = [\"ptrace\"]"), std::string::npos) << text;
}

TEST(AuditSummary, PathsOfOneDirectoryTheRulesTreatDifferentlyAreNotGrouped) {
    const auto policy = load(R"(version = 1
[profile.default]
deny = ["/etc/shadow"]
)");
    std::stringstream in;
    in << denial("open", "/etc/shadow", "read") << denial("open", "/etc/motd", "read")
       << denial("open", "/etc/issue", "read");
    const AuditSummary s = summarise_audit(in, *policy);
    ASSERT_EQ(s.groups.size(), 2U);
    EXPECT_EQ(s.groups[0].paths, std::vector<std::string>{"/etc/shadow"});
    EXPECT_FALSE(s.groups[0].denied_by.empty());
    EXPECT_EQ(s.groups[1].paths, (std::vector<std::string>{"/etc/motd", "/etc/issue"}));
    EXPECT_EQ(s.groups[1].suggestion, "read = [\"/etc/motd\"]; read = [\"/etc/issue\"]");
}

TEST(AuditSummary, ADenialThePolicyNowGrantsSaysSo) {
    const auto policy = load(R"(version = 1
[profile.default]
read = ["/srv/**"]
)");
    std::stringstream in(denial("open", "/srv/a", "read"));
    const AuditSummary s = summarise_audit(in, *policy);
    ASSERT_EQ(s.groups.size(), 1U);
    EXPECT_TRUE(s.groups[0].now_allowed);
    EXPECT_NE(render_summary_json(s).find("\"now_allowed\":true"), std::string::npos);
}

}  // namespace
}  // namespace fdbroker::broker::explain
