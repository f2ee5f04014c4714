// Starting a worker, one way for `fdbroker run` and for serve mode's pools: a bootstrap channel whose
// broker end asks for credentials before the worker exists (so that its very first attach carries
// them), the profile's identity, a cgroup of its own, and sandbox::spawn. The caller then serves it:
// its seccomp listener with a SeccompMonitor, its channel with serve_worker().
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/ops/file_ops.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"
#include "sandbox/containment.hpp"
#include "sandbox/spawn.hpp"

namespace fdbroker::broker {

class Audit;
class Broker;

struct Launched;

struct Launch {
    const std::vector<std::string>& argv;
    const policy::Profile& profile;
    sandbox::Containment& containment;
    std::string_view cgroup;                  // the name of the worker's cgroup
    int output = -1;                          // when set, the worker's stdout and stderr
    std::span<const char* const> brokered{};  // transparent mode: the calls the broker performs
    bool die_with_broker = false;             // sandbox::SpawnSpec says when
    // sandbox::SpawnSpec::meanwhile, given who the worker runs as (`uid` and `owner`; `worker` is not
    // filled in yet).
    std::function<std::string(const Launched&)> meanwhile{};
};

struct Launched {
    sandbox::Spawned worker;         // worker.pid < 0: not started, worker.error says why
    unique_fd channel;               // the broker's end of the worker's bootstrap channel
    uid_t uid = 0;                   // the worker's user
    std::optional<FileOwner> owner;  // who owns what the broker creates for it (when the broker is root)
    bool in_cgroup = false;          // started in the cgroup it was given
    std::string note;                // for the log: why the profile's identity could not be applied
};

// Starts the worker `launch` describes. Throws std::bad_alloc only.
[[nodiscard]] Launched launch_worker(const Launch& launch);

// Under reads = "kernel" (a no-op otherwise): tells the audit stream, in one record (op
// "kernel_reads"), that the worker's read-only opens are judged by the kernel and not recorded (and
// in a second, "kernel_stat", that its stat calls are too, under stat = "kernel"), and logs each grant that
// gives nothing because of what is at its path as the worker starts.
void announce_kernel_reads(const Launched& launched, const policy::Profile& profile, Audit& audit);

// Serves a launched worker's bootstrap channel in `broker`: attaches are admitted from the worker and
// its descendants. False (errno set) on failure.
[[nodiscard]] bool serve_worker(Broker& broker, Launched& launched);

}  // namespace fdbroker::broker
