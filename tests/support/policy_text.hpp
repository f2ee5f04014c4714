// Policies written inline in unit tests: loaded as the file "p.toml", so that the diagnostics a test
// expects name that file and its line and column.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"

namespace fdbroker::test::policy_text {

// A policy that must load: each diagnostic, and a missing policy, is a test failure.
std::shared_ptr<const policy::Policy> load(std::string_view text);

// The diagnostics of a policy that must not load, as `fdbroker check` prints them
// ("p.toml:LINE:COL: error: ..."); a policy that loads is a test failure.
std::vector<std::string> errors(std::string_view text);

}  // namespace fdbroker::test::policy_text
