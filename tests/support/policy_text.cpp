#include "support/policy_text.hpp"

#include <gtest/gtest.h>

#include <optional>

namespace fdbroker::test::policy_text {

std::shared_ptr<const policy::Policy> load(std::string_view text) {
    const policy::LoadResult result = policy::Policy::load_string(text, "p.toml");
    for (const policy::Diagnostic& d : result.errors)
        ADD_FAILURE() << d.str();
    EXPECT_NE(result.policy, nullptr);
    return result.policy;
}

std::vector<std::string> errors(std::string_view text) {
    const policy::LoadResult result = policy::Policy::load_string(text, "p.toml");
    EXPECT_EQ(result.policy, nullptr);
    std::vector<std::string> lines;
    for (const policy::Diagnostic& d : result.errors)
        lines.push_back(d.str());
    return lines;
}

policy::Pattern parse_ok(std::string_view text) {
    policy::Pattern::Error error;
    std::optional<policy::Pattern> pattern = policy::Pattern::parse(text, error);
    EXPECT_TRUE(pattern.has_value()) << text << ": " << error.message;
    if (!pattern) return *policy::Pattern::parse("/", error);
    return *pattern;
}

}  // namespace fdbroker::test::policy_text
