// Resource limits for a worker, from its profile.
#pragma once

#include "policy/confinement.hpp"

namespace fdbroker::sandbox {

// setrlimit for every limit the profile sets (soft and hard alike, so the worker cannot raise them
// back), and RLIMIT_CORE always. Returns 0 or an errno value.
[[nodiscard]] int apply_limits(const policy::Limits& limits) noexcept;

}  // namespace fdbroker::sandbox
