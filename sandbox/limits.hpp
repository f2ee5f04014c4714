// Resource limits for a worker, from its profile.
#pragma once

#include <cstdint>

#include "policy/confinement.hpp"

namespace fdbroker::sandbox {

// setrlimit for every limit the profile sets (soft and hard alike, so the worker cannot raise them
// back), and RLIMIT_CORE always. A worker whose profile sets no `nofile` gets back the soft
// RLIMIT_NOFILE the broker was started with (raise_descriptor_limit()), as a service manager does for
// its services: a program using select(2) cannot handle descriptors above 1023. Returns 0 or an errno
// value.
[[nodiscard]] int apply_limits(const policy::Limits& limits) noexcept;

// Raises the broker's soft RLIMIT_NOFILE to its hard limit: every channel, pidfd and pending connect
// costs the broker a descriptor, and the kernel refuses to pass descriptors (ETOOMANYREFS) once the
// broker's user has more in flight than this limit. Returns the limit now in force.
std::uint64_t raise_descriptor_limit() noexcept;

}  // namespace fdbroker::sandbox
