// What the running kernel offers fdbroker, each probed by trying it (in a child where trying changes
// the process): the one place each probe lives, used by the broker where it must choose a path and by
// `fdbroker doctor`.
//
// FDBROKER_SIMULATE_ABSENT (a comma-separated list of feature names) makes the probes report those
// features missing, so that tests can take each fallback on a kernel that has the feature. It can only
// take features away: the broker then refuses what it cannot do safely, or takes its fallback.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace fdbroker::sandbox {

enum class Feature : std::uint8_t {
    landlock,            // Landlock LSM (ABI version in Probe::version)
    seccomp_notify,      // seccomp user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER)
    addfd_send,          // SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND (Linux 5.14)
    wait_killable_recv,  // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19)
    sync_wake_up,        // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6)
    pidfd_getfd,         // pidfd_getfd(2) (Linux 5.6)
    openat2,             // openat2(2) with RESOLVE_* (Linux 5.6)
    so_peerpidfd,        // SO_PEERPIDFD (Linux 6.5)
    cgroup2,             // a cgroup v2 hierarchy, and whether this process may make cgroups in its own
    user_namespaces,     // unprivileged user namespaces (unshare(CLONE_NEWUSER))
};
inline constexpr std::size_t kFeatureCount = 10;

[[nodiscard]] std::string_view feature_name(Feature f) noexcept;

struct Probe {
    bool present = false;
    int version = 0;         // landlock: the ABI version
    int error = 0;           // the errno that showed it missing (0 when simulated absent or present)
    bool simulated = false;  // reported missing because FDBROKER_SIMULATE_ABSENT names it
    std::string detail;      // what was found, for doctor: "ABI 6", "mounted at /sys/fs/cgroup" ...
};

struct KernelFeatures {
    std::array<Probe, kFeatureCount> probes{};
    [[nodiscard]] const Probe& operator[](Feature f) const noexcept {
        return probes[static_cast<std::size_t>(f)];
    }
};

// Runs every probe. Forks short-lived children for the seccomp and namespace probes.
[[nodiscard]] KernelFeatures probe_kernel();

// Whether FDBROKER_SIMULATE_ABSENT names `f`. Async-signal-safe (no allocation): usable in a child
// between fork and exec.
[[nodiscard]] bool simulated_absent(Feature f) noexcept;

// Where the cgroup v2 hierarchy is mounted ("" if it is not), from /proc/self/mountinfo.
[[nodiscard]] std::string cgroup2_mount();

}  // namespace fdbroker::sandbox
