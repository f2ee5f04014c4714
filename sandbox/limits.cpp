#include "sandbox/limits.hpp"

#include <sys/resource.h>

#include <cerrno>

namespace fdbroker::sandbox {

namespace {

// The soft RLIMIT_NOFILE before raise_descriptor_limit(), for workers; 0 when never raised.
rlim_t original_nofile = 0;

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
    if (!limits.nofile && original_nofile != 0) {
        rlimit nofile{};
        if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return errno;
        nofile.rlim_cur = original_nofile;
        if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) return errno;
    }
    return set(RLIMIT_CORE, limits.core);
}

std::uint64_t raise_descriptor_limit() noexcept {
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return 1024;
    if (original_nofile == 0) original_nofile = nofile.rlim_cur;
    if (nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) ::getrlimit(RLIMIT_NOFILE, &nofile);
    }
    return nofile.rlim_cur == RLIM_INFINITY ? UINT64_MAX : nofile.rlim_cur;
}

}  // namespace fdbroker::sandbox
