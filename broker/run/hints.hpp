// What `fdbroker run` says when the program failed, for the mistakes people make most: an unmodified
// program run without --transparent, a transparent program without `include = ["runtime"]`, a
// denial that went unnoticed. One line each, at exit, and only when the program failed (a program
// that succeeded despite denials, probing optional files, needs no advice) and fdbroker's standard
// error is a terminal: advice is for a person, and a script comparing the program's own error
// output must get exactly that.
#pragma once

#include <string>

#include "broker/core/denials.hpp"
#include "broker/run/run_mode.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

// Logs the hints that apply to a run that ended with `status`.
void explain_failure(const RunOptions& options, const policy::Profile& profile, const Denials& denials,
                     int status) noexcept;

// "its profiles are 'a', 'b' and 'c'": what `policy` has, for a --profile that names none of them.
[[nodiscard]] std::string profile_names(const policy::Policy& policy);

}  // namespace fdbroker::broker
