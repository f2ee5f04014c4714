// Starts a worker: forks, confines it in a fixed order (docs/security-model.md), and execs PROGRAM
// with its broker channel as fd 3 (FDBROKER_FD=3). Reports exec failures the way env(1) does.
#pragma once

#include <sys/types.h>

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "policy/confinement.hpp"
#include "sandbox/identity.hpp"

namespace fdbroker::sandbox {

// The fd number the channel has in every worker.
inline constexpr int kChannelFd = 3;

struct SpawnSpec {
    std::vector<std::string> argv;  // argv[0] is looked up in PATH like execvp
    int channel = -1;               // becomes kChannelFd in the worker
    Identity identity;
    const policy::Confinement& confinement;
    int output = -1;  // when set, becomes the worker's stdout and stderr
    // Transparent mode (fdbroker run --transparent) when not empty: the calls the broker performs.
    std::span<const char* const> brokered{};
    int cgroup = -1;  // when set, the cgroup the worker starts in (Containment::cgroup_for)
    // Whether the worker is killed if the broker dies: only when the calling thread lives as long as the
    // broker does (run mode), since the kernel ties the signal to the thread that spawned it.
    bool die_with_broker = false;
    // Run by the caller once the worker exists, while the worker confines itself and before its
    // program may start: work that need not wait for the exec, done in time the caller would
    // otherwise spend waiting. Returns what failed (the worker is then ended), or nothing.
    std::function<std::string()> meanwhile{};
};

struct Spawned {
    pid_t pid = -1;
    unique_fd pidfd;       // held for the worker's lifetime: the pid cannot be mistaken for another process
    unique_fd notify;      // the worker's seccomp listener: calls its filter refuses arrive here
    int landlock_abi = 0;  // 0 when the kernel has no Landlock
    int exit_code = 0;     // when pid < 0: 125 set-up failed, 126 not executable, 127 not found
    std::string error;     // when pid < 0: what failed
};

// The calling process must be single-threaded. Signals blocked in the caller are unblocked in the
// worker and every signal disposition is reset.
[[nodiscard]] Spawned spawn(const SpawnSpec& spec);

// Looks a program up in PATH like execvp (a name containing '/' is taken as is). Empty if not found;
// errno tells why (ENOENT, EACCES).
[[nodiscard]] std::string find_program(const std::string& name);

}  // namespace fdbroker::sandbox
