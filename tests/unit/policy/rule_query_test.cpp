// The query behind `fdbroker explain`: every rule that matches a path, and why Profile::decide
// answered as it did; and Profile::decide_socket, the broker's socket decision.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "policy/rule_query.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::policy {
namespace {

using test::policy_text::load;

const char* const kPolicy = R"(version = 1
[profile.default]
read   = ["/srv/**", "/srv/images/**", "/etc/hostname"]
write  = ["/srv/images/out/**"]
create = ["/srv/images/out/*"]
deny   = ["/srv/images/.private/**", "/srv/**/secret"]
connect = ["tcp:10.0.0.0/8:5432", "tcp:10.0.0.5:*", "unix:/run/db/**"]
listen  = ["tcp:127.0.0.1:8000-8100"]
)";

std::vector<std::string> texts(const std::vector<const Rule*>& rules) {
    std::vector<std::string> out;
    out.reserve(rules.size());
    for (const Rule* r : rules)
        out.push_back(std::string(kind_name(r->kind)) + " " + r->pattern.text());
    return out;
}

TEST(RulesMatching, ListsEveryMatchingRuleOfEveryKindInFileOrder) {
    const auto policy = load(kPolicy);
    const Profile& p = *policy->profile("default");
    EXPECT_EQ(texts(rules_matching(p, "/srv/images/out/a.png")),
              (std::vector<std::string>{"read /srv/**", "read /srv/images/**", "write /srv/images/out/**",
                                        "create /srv/images/out/*"}));
    EXPECT_EQ(texts(rules_matching(p, "/srv/images/.private/secret")),
              (std::vector<std::string>{"read /srv/**", "read /srv/images/**", "deny /srv/images/.private/**",
                                        "deny /srv/**/secret"}));
    EXPECT_TRUE(rules_matching(p, "/etc/passwd").empty());
    EXPECT_TRUE(rules_matching(p, "/srv/../etc/hostname").empty()) << "not normal: matches nothing";
}

TEST(ExplainPath, GivesDecideOwnAnswerAndTheReason) {
    const auto policy = load(kPolicy);
    const Profile& p = *policy->profile("default");

    PathExplanation e = explain_path(p, "/srv/images/cat.png", need_read);
    EXPECT_TRUE(e.decision.allowed);
    EXPECT_EQ(e.why, Why::granted);
    EXPECT_EQ(e.decision.rule->pattern.text(), "/srv/images/**") << "the longest anchor decides";

    e = explain_path(p, "/srv/images/cat.png", need_read | need_write);
    EXPECT_FALSE(e.decision.allowed);
    EXPECT_EQ(e.why, Why::no_grant);
    EXPECT_EQ(e.missing, need_write);
    EXPECT_EQ(e.matching.size(), 2U);

    e = explain_path(p, "/srv/a/secret", need_read);
    EXPECT_FALSE(e.decision.allowed);
    EXPECT_EQ(e.why, Why::deny_wins);
    EXPECT_EQ(e.decision.rule->pattern.text(), "/srv/**/secret");

    e = explain_path(p, "/etc", need_any);
    EXPECT_TRUE(e.decision.allowed);
    EXPECT_EQ(e.why, Why::on_the_way);
    EXPECT_TRUE(e.matching.empty());
    EXPECT_EQ(e.decision.rule->pattern.text(), "/etc/hostname");

    e = explain_path(p, "/etc/passwd", need_any);
    EXPECT_FALSE(e.decision.allowed);
    EXPECT_EQ(e.why, Why::no_grant);

    e = explain_path(p, "/srv//x", need_read);
    EXPECT_FALSE(e.decision.allowed);
    EXPECT_EQ(e.why, Why::not_normal);
}

TEST(NeedsText, NamesEachKind) {
    EXPECT_EQ(needs_text(need_read), "read");
    EXPECT_EQ(needs_text(need_read | need_write | need_create), "read+write+create");
    EXPECT_EQ(needs_text(need_any), "any");
    EXPECT_EQ(needs_text(0), "");
}

TEST(DecideSocket, JudgesConnectAndListenRules) {
    const auto policy = load(kPolicy);
    const Profile& p = *policy->profile("default");
    SocketAddress a;
    SocketDecision d = p.decide_socket(SocketUse::connect, "tcp:10.0.0.5:5432", a);
    ASSERT_TRUE(d.allowed);
    EXPECT_EQ(d.rule->text, "tcp:10.0.0.0/8:5432");
    EXPECT_EQ(address_rules_matching(p.connect_rules(), a).size(), 2U);

    d = p.decide_socket(SocketUse::listen, "tcp:10.0.0.5:5432", a);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.error, EACCES);
    EXPECT_TRUE(address_rules_matching(p.listen_rules(), a).empty());

    d = p.decide_socket(SocketUse::connect, "tcp:db:5432", a);
    EXPECT_EQ(d.error, EINVAL);

    d = p.decide_socket(SocketUse::listen, "tcp:0.0.0.0:8000", a);
    EXPECT_FALSE(d.allowed) << "0.0.0.0 is every interface for a listen, not 127.0.0.1";
    EXPECT_FALSE(d.reaches_loopback);
    d = p.decide_socket(SocketUse::connect, "tcp:0.0.0.0:5432", a);
    EXPECT_TRUE(d.reaches_loopback);
    EXPECT_FALSE(d.allowed) << "a connect to 0.0.0.0 reaches 127.0.0.1, which no rule grants";
}

TEST(DecideSocket, ADenyPatternRefusesAUnixSocketPath) {
    const auto policy = load(R"(version = 1
[profile.default]
connect = ["unix:/run/db/**"]
deny    = ["/run/db/admin.sock"]
)");
    const Profile& p = *policy->profile("default");
    SocketAddress a;
    SocketDecision d = p.decide_socket(SocketUse::connect, "unix:/run/db/app.sock", a);
    EXPECT_TRUE(d.allowed);
    d = p.decide_socket(SocketUse::connect, "unix:/run/db/admin.sock", a);
    EXPECT_FALSE(d.allowed);
    ASSERT_NE(d.deny, nullptr);
    EXPECT_EQ(d.deny->pattern.text(), "/run/db/admin.sock");
    EXPECT_EQ(d.error, EACCES);
}

}  // namespace
}  // namespace fdbroker::policy
