#include "sandbox/limits.hpp"

#include <sys/resource.h>

#include <cerrno>

namespace fdbroker::sandbox {

namespace {

int set(int resource, std::uint64_t value) noexcept {
    const rlim_t v = value == UINT64_MAX ? RLIM_INFINITY : static_cast<rlim_t>(value);
    const rlimit limit{v, v};
    return ::setrlimit(resource, &limit) == 0 ? 0 : errno;
}

}  // namespace

int apply_limits(const policy::Limits& limits) noexcept {
    const struct {
        int resource;
        const std::optional<std::uint64_t>& value;
    } table[] = {{RLIMIT_NOFILE, limits.nofile},
                 {RLIMIT_AS, limits.address_space},
                 {RLIMIT_CPU, limits.cpu_seconds},
                 {RLIMIT_NPROC, limits.processes},
                 {RLIMIT_FSIZE, limits.file_size}};
    for (const auto& entry : table)
        if (entry.value)
            if (const int err = set(entry.resource, *entry.value); err != 0) return err;
    return set(RLIMIT_CORE, limits.core);
}

}  // namespace fdbroker::sandbox
