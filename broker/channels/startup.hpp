// The set-up `run` and `serve` share before they serve anyone: the policy, the audit stream, the
// Landlock a worker needs, and the signals the broker takes in its loop. Each logs why it failed.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <memory>
#include <span>
#include <string>

#include "broker/core/audit.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

// Loads the policy file, logging every diagnostic; null if it is not valid.
[[nodiscard]] std::shared_ptr<const policy::Policy> load_policy(const std::string& file);

// Opens the audit stream named on the command line into `audit` (nothing when `target` is empty); "-"
// names descriptor `dash`.
[[nodiscard]] bool open_audit(const std::string& target, Audit& audit, int dash = STDOUT_FILENO);

// Whether this kernel has Landlock; without it `workers` would run less confined than the policy says,
// so they are refused, and the log says so.
[[nodiscard]] bool landlock_for(const char* workers);

// Blocks `signals` (for a signalfd in the loop), makes the broker the subreaper of what its workers
// leave behind, and ignores SIGPIPE, so that a closed audit pipe (`--audit - | head`) costs audit
// lines rather than the broker (writes fail with EPIPE). `handled` receives the blocked set.
[[nodiscard]] bool take_signals(std::span<const int> signals, sigset_t& handled);

}  // namespace fdbroker::broker
