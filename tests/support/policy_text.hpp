// Policies and path patterns written inline in unit tests. Policies load as the file "p.toml", so
// that the diagnostics a test expects name that file and its line and column.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/matcher.hpp"
#include "policy/policy.hpp"

namespace fdbroker::test::policy_text {

// A policy that must load: each diagnostic, and a missing policy, is a test failure.
std::shared_ptr<const policy::Policy> load(std::string_view text);

// The diagnostics of a policy that must not load, as `fdbroker check` prints them
// ("p.toml:LINE:COL: error: ..."); a policy that loads is a test failure.
std::vector<std::string> errors(std::string_view text);

// A pattern that must parse; one that does not is a test failure, and "/" stands in for it so that
// the failing test runs on.
policy::Pattern parse_ok(std::string_view text);

}  // namespace fdbroker::test::policy_text
