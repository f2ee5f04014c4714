// What `fdbroker explain` makes of a request: its parsing, the typed operation, and what the
// explanation says about rules, reasons and layers.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <variant>
#include <vector>

#include "broker/explain/explanation.hpp"
#include "broker/explain/request.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::broker::explain {
namespace {

using test::policy_text::load;

const char* const kPolicy = R"(version = 1
[profile.default]
read   = ["/srv/**", "/srv/images/**"]
write  = ["/srv/out/**"]
create = ["/srv/out/**"]
deny   = ["/srv/images/.private/**"]
connect = ["tcp:10.0.0.0/8:5432"]
runtime = ["/opt/app"]
)";

Explanation explain(const policy::Profile& profile, const std::vector<std::string>& words) {
    std::string error;
    const auto request = parse_request(words, error);
    EXPECT_TRUE(request) << error;
    return request ? explain_request(profile, *request) : Explanation{};
}

bool mentions(const std::vector<std::string>& lines, const std::string& what) {
    for (const std::string& l : lines)
        if (l.find(what) != std::string::npos) return true;
    return false;
}

TEST(ParseRequest, MakesTheBrokersTypedOperation) {
    std::string error;
    auto r = parse_request({"open", "/srv/a/../b", "rwc"}, error);
    ASSERT_TRUE(r) << error;
    const auto* open = std::get_if<op::Open>(&r->operation);
    ASSERT_NE(open, nullptr);
    EXPECT_EQ(open->path.view(), "/srv/b") << "normalised lexically";
    EXPECT_EQ(open->flags, static_cast<std::uint64_t>(O_RDWR | O_CREAT));
    r = parse_request({"rename", "/a", "/b"}, error);
    ASSERT_TRUE(r) << error;
    EXPECT_TRUE(std::holds_alternative<op::Rename>(r->operation));
    r = parse_request({"connect", "tcp:1.2.3.4:5"}, error);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->socket);
}

TEST(ParseRequest, RefusesMistakesWithAReason) {
    std::string error;
    EXPECT_FALSE(parse_request({"open", "relative"}, error));
    EXPECT_NE(error.find("must be absolute"), std::string::npos) << error;
    EXPECT_FALSE(parse_request({"open", "/x", "q"}, error));
    EXPECT_NE(error.find("mode 'q'"), std::string::npos) << error;
    EXPECT_FALSE(parse_request({"frobnicate", "/x"}, error));
    EXPECT_NE(error.find("unknown operation"), std::string::npos) << error;
    EXPECT_FALSE(parse_request({"rename", "/x"}, error));
    EXPECT_FALSE(parse_request({}, error));
}

TEST(Explain, DenyWinsOverEveryMatchingGrant) {
    const auto policy = load(kPolicy);
    const Explanation e = explain(*policy->profile("default"), {"open", "/srv/images/.private/k", "r"});
    EXPECT_FALSE(e.allowed);
    EXPECT_EQ(e.error, EACCES);
    ASSERT_EQ(e.paths.size(), 1U);
    EXPECT_EQ(e.paths[0].why.why, policy::Why::deny_wins);
    EXPECT_EQ(e.paths[0].why.matching.size(), 3U) << "both reads and the deny";
    const std::string text = render_text(e, "p.toml", *policy->profile("default"));
    EXPECT_NE(text.find("p.toml:6:11 deny \"/srv/images/.private/**\"   <- decides"), std::string::npos)
        << text;
    EXPECT_NE(text.find("a deny beats every grant"), std::string::npos) << text;
}

TEST(Explain, NamesTheKindNoRuleGrantsAndTheLayers) {
    const auto policy = load(kPolicy);
    const Explanation e = explain(*policy->profile("default"), {"open", "/srv/images/cat.png", "rw"});
    EXPECT_FALSE(e.allowed);
    EXPECT_EQ(e.paths[0].why.missing, policy::need_write);
    EXPECT_TRUE(mentions(e.layers, "seccomp filter")) << "the worker cannot open for writing by itself";
    const Explanation read = explain(*policy->profile("default"), {"open", "/opt/app/lib.so", "r"});
    EXPECT_FALSE(read.allowed);
    EXPECT_TRUE(mentions(read.layers, "beneath the runtime path /opt/app"));
    const Explanation chmod = explain(*policy->profile("default"), {"chmod", "/srv/out/x"});
    EXPECT_TRUE(chmod.allowed);
    EXPECT_TRUE(mentions(chmod.layers, "worker user's own permissions"));
}

TEST(Explain, SaysWhenTheKernelAnswersStat) {
    const auto plain = load(kPolicy);
    const Explanation brokered = explain(*plain->profile("default"), {"stat", "/srv/a"});
    EXPECT_FALSE(mentions(brokered.layers, "stat = \"kernel\""));
    const auto kernel = load(
        "version = 1\n[profile.default]\nreads = \"kernel\"\nstat = \"kernel\"\nruntime_builtin = false\n"
        "read = [\"/srv/**\"]\n");
    ASSERT_TRUE(kernel);
    const Explanation e = explain(*kernel->profile("default"), {"stat", "/etc/shadow"});
    EXPECT_FALSE(e.allowed) << "the policy's answer, for a brokered request";
    EXPECT_TRUE(mentions(e.layers, "stat = \"kernel\"")) << "the worker's own stat never asks the broker";
}

TEST(Explain, RenameChecksBothNamesAndAmplification) {
    const auto policy = load(kPolicy);
    const Explanation out = explain(*policy->profile("default"), {"rename", "/srv/out/a", "/srv/out/b"});
    EXPECT_TRUE(out.allowed);
    ASSERT_TRUE(out.move);
    EXPECT_TRUE(out.move->allowed);
    const Explanation away = explain(*policy->profile("default"), {"rename", "/srv/out/a", "/srv/b"});
    EXPECT_FALSE(away.allowed);
    EXPECT_EQ(away.paths[1].why.missing, policy::need_create);
}

TEST(Explain, ExecIsTheFiltersAndLandlocksNotTheRules) {
    const auto policy = load(kPolicy);
    const Explanation no = explain(*policy->profile("default"), {"exec", "/opt/app/tool"});
    EXPECT_FALSE(no.allowed);
    EXPECT_TRUE(mentions(no.layers, "exec = false"));
    const auto with_exec = load(std::string(kPolicy) + "exec = true\n");
    EXPECT_TRUE(explain(*with_exec->profile("default"), {"exec", "/opt/app/tool"}).allowed);
    EXPECT_FALSE(explain(*with_exec->profile("default"), {"exec", "/srv/out/tool"}).allowed);
}

TEST(Explain, DeniedPathsAbsentGivesEnoentForWhatTheWorkerCannotSee) {
    const auto policy = load(std::string(kPolicy) + "denied_paths = \"absent\"\n");
    const policy::Profile& p = *policy->profile("default");
    EXPECT_EQ(explain(p, {"open", "/etc/shadow", "r"}).error, ENOENT);
    EXPECT_EQ(explain(p, {"open", "/srv/images/a", "w"}).error, EACCES) << "visible: it may be read";
}

TEST(Explain, SocketsListEveryMatchingRule) {
    const auto policy = load(kPolicy);
    const policy::Profile& p = *policy->profile("default");
    Explanation e = explain(p, {"connect", "tcp:10.0.0.5:5432"});
    EXPECT_TRUE(e.allowed);
    ASSERT_EQ(e.socket_matching.size(), 1U);
    e = explain(p, {"listen", "tcp:10.0.0.5:5432"});
    EXPECT_FALSE(e.allowed);
    EXPECT_EQ(e.error, EACCES);
    e = explain(p, {"connect", "tcp:db:5432"});
    EXPECT_EQ(e.error, EINVAL);
}

TEST(Explain, JsonCarriesTheDecisionAndEveryRule) {
    const auto policy = load(kPolicy);
    const policy::Profile& p = *policy->profile("default");
    const std::string json = render_json(explain(p, {"stat", "/srv/images/x"}), "p.toml", p);
    EXPECT_EQ(json.front(), '{');
    EXPECT_NE(json.find("\"decision\":\"allow\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"rule\":{\"at\":\"p.toml:3:22\",\"kind\":\"read\",\"pattern\":\"/srv/images/**\"}"),
              std::string::npos)
        << json;
}

}  // namespace
}  // namespace fdbroker::broker::explain
