#include <gtest/gtest.h>

#include <string>

#include "broker/learn/policy_text.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker::learn {
namespace {

Additions some_rules() {
    Additions add;
    add.include_runtime = "12 calls on 9 paths, e.g. open /etc/ld.so.cache (read)";
    add.read = {{"/srv/in/**", "5 calls on 4 paths, e.g. open /srv/in/a (read)"}};
    add.write = {{"/srv/out/**", "1 call: open /srv/out/x (write+create)"}};
    add.create = {{"/srv/out/**", "1 call: open /srv/out/x (write+create)"}};
    add.connect = {{"tcp:127.0.0.1:5432", "2 calls, e.g. connect"}};
    add.syscalls = {{"sched_setattr", "1 call: sched_setattr"}};
    add.exec = "1 call: execve after the program started";
    return add;
}

std::string edited(const std::string& text, const Additions& add, const std::string& profile = "default") {
    std::string error;
    std::string out = add_to_profile(text, "p.toml", profile, add, error);
    EXPECT_TRUE(error.empty()) << error;
    const policy::LoadResult loaded = policy::Policy::load_string(out, "p.toml");
    EXPECT_TRUE(loaded.policy) << (loaded.errors.empty() ? "" : loaded.errors.front().str()) << "\n" << out;
    return out;
}

TEST(PolicyText, ANewPolicyGetsEveryRuleWithItsComment) {
    const std::string out = edited(starting_policy("default"), some_rules());
    EXPECT_NE(
        out.find(
            "include = [\n    \"runtime\",  # 12 calls on 9 paths, e.g. open /etc/ld.so.cache (read)\n]"),
        std::string::npos)
        << out;
    EXPECT_NE(out.find("    \"/srv/in/**\",  # 5 calls on 4 paths, e.g. open /srv/in/a (read)\n"),
              std::string::npos);
    EXPECT_NE(out.find("syscalls.allow = [\n    \"sched_setattr\",  # 1 call: sched_setattr\n]"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("exec = true  # 1 call: execve after the program started\n"), std::string::npos);
    const auto policy = policy::Policy::load_string(out, "p.toml").policy;
    const policy::Profile& p = *policy->profile("default");
    EXPECT_TRUE(p.includes_runtime());
    EXPECT_TRUE(p.decide("/srv/in/a", policy::need_read).allowed);
    EXPECT_TRUE(p.decide("/srv/out/b", policy::need_write | policy::need_create).allowed);
    EXPECT_FALSE(p.decide("/srv/in/a", policy::need_write).allowed);
    EXPECT_TRUE(p.confinement().exec);
    EXPECT_EQ(p.confinement().syscalls.allow, std::vector<std::string>{"sched_setattr"});
}

// --append: a second run's rules go into the arrays the first one wrote (and an administrator's own),
// every other line as it was.
TEST(PolicyText, RulesJoinExistingArraysAndKeepEveryOtherLine) {
    const std::string before =
        "version = 1\n"
        "# the web front end\n"
        "[profile.web]\n"
        "user = \"nobody\"\n"
        "read = [\"/srv/www/**\"]  # the site\n"
        "write = [\n"
        "    \"/srv/cache/**\",  # 3 calls\n"
        "]\n"
        "exec = false\n"
        "syscalls = { preset = \"default\", allow = [\"mlock\"] }\n"
        "\n"
        "[profile.web.clients]\n"
        "users = [\"nobody\"]\n"
        "\n"
        "[profile.other]\n"
        "read = [\"/etc/hostname\"]\n";
    Additions add = some_rules();
    add.include_runtime.clear();
    const std::string out = edited(before, add, "web");
    EXPECT_NE(out.find("read = [\"/srv/www/**\",\n    \"/srv/in/**\",  # 5 calls on 4 paths"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("]  # the site\n"), std::string::npos) << out;
    EXPECT_NE(out.find("    \"/srv/cache/**\",  # 3 calls\n    \"/srv/out/**\",  # 1 call"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("allow = [\"mlock\", \"sched_setattr\", ]"), std::string::npos) << out;
    EXPECT_NE(out.find("exec = true\n"), std::string::npos) << out;
    // New keys go with the profile's own, before its sub-table.
    EXPECT_LT(out.find("connect = ["), out.find("[profile.web.clients]")) << out;
    EXPECT_NE(out.find("# the web front end\n"), std::string::npos);
    const auto policy = policy::Policy::load_string(out, "p.toml").policy;
    const policy::Profile& web = *policy->profile("web");
    EXPECT_TRUE(web.decide("/srv/www/index.html", policy::need_read).allowed);
    EXPECT_TRUE(web.decide("/srv/in/x", policy::need_read).allowed);
    EXPECT_TRUE(web.decide("/srv/cache/x", policy::need_write).allowed);
    EXPECT_TRUE(web.confinement().exec);
    EXPECT_EQ(web.confinement().syscalls.allow, (std::vector<std::string>{"mlock", "sched_setattr"}));
    EXPECT_FALSE(policy->profile("other")->decide("/srv/in/x", policy::need_read).allowed);
}

TEST(PolicyText, AMissingProfileIsMadeAtTheEnd) {
    const std::string out = edited("version = 1\n[profile.a]\nread = [\"/a\"]\n", some_rules(), "learned");
    const auto policy = policy::Policy::load_string(out, "p.toml").policy;
    EXPECT_TRUE(policy->profile("learned")->decide("/srv/in/x", policy::need_read).allowed);
    EXPECT_FALSE(policy->profile("a")->decide("/srv/in/x", policy::need_read).allowed);
}

TEST(PolicyText, NothingToAddChangesNothing) {
    const std::string text = "version = 1\n[profile.default]\nread = [\"/a\"]\n";
    std::string error;
    EXPECT_EQ(add_to_profile(text, "p.toml", "default", {}, error), text);
    EXPECT_EQ(line_diff(text, text, "a", "b"), "");
}

TEST(PolicyText, PathsAreQuotedAsTomlStrings) {
    EXPECT_EQ(toml_string("/srv/a \"b\"\\c\n"), "\"/srv/a \\\"b\\\"\\\\c\\u000a\"");
    Additions add;
    add.read = {{"/srv/odd \"name\"", "1 call: open\n/srv/odd (read)"}};
    const std::string out = edited(starting_policy("default"), add);
    const auto policy = policy::Policy::load_string(out, "p.toml").policy;
    EXPECT_TRUE(policy->profile("default")->decide("/srv/odd \"name\"", policy::need_read).allowed);
}

TEST(PolicyText, TheDiffShowsAddedLines) {
    const std::string diff = line_diff("a\nb\nc\n", "a\nb\nx\nc\n", "old", "new");
    EXPECT_EQ(diff, "--- old\n+++ new\n a\n b\n+x\n c\n");
    EXPECT_EQ(line_diff("a\nb\n", "a\nc\n", "old", "new"), "--- old\n+++ new\n a\n-b\n+c\n");
}

}  // namespace
}  // namespace fdbroker::broker::learn
