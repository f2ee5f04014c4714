// FDBROKER_SIMULATE_ABSENT (kernel_features.hpp), apart from the probes: the worker's filter, built
// into libfdbroker too, asks it where it chooses how to load.
#include <cstdlib>

#include "sandbox/kernel_features.hpp"

namespace fdbroker::sandbox {

namespace {

constexpr std::array<std::string_view, kFeatureCount> kNames{
    "landlock", "seccomp_notify", "addfd_send", "wait_killable_recv", "sync_wake_up", "pidfd_getfd",
    "openat2",  "so_peerpidfd",   "cgroup2",    "user_namespaces"};

}  // namespace

std::string_view feature_name(Feature f) noexcept {
    return kNames[static_cast<std::size_t>(f)];
}

bool simulated_absent(Feature f) noexcept {
    const char* list = std::getenv("FDBROKER_SIMULATE_ABSENT");
    if (list == nullptr) return false;
    const std::string_view name = feature_name(f);
    std::string_view rest(list);
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        if (rest.substr(0, comma) == name) return true;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace fdbroker::sandbox
