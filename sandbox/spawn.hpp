// Forks and execs a worker with its broker channel as fd 3 (FDBROKER_FD=3), nothing else inherited
// but stdio, and the worker identity applied. Reports exec failures the way env(1) does.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "sandbox/identity.hpp"

namespace fdbroker::sandbox {

// The fd number the channel has in every worker.
inline constexpr int kChannelFd = 3;

struct SpawnSpec {
    std::vector<std::string> argv;  // argv[0] is looked up in PATH like execvp
    int channel = -1;               // becomes kChannelFd in the worker
    Identity identity;
};

struct Spawned {
    pid_t pid = -1;
    unique_fd pidfd;    // held for the worker's lifetime: the pid cannot be mistaken for another process
    int exit_code = 0;  // when pid < 0: 125 set-up failed, 126 not executable, 127 not found
    std::string error;  // when pid < 0: what failed
};

// The calling process must be single-threaded. Signals blocked in the caller are unblocked in the
// worker and every signal disposition is reset.
[[nodiscard]] Spawned spawn(const SpawnSpec& spec);

}  // namespace fdbroker::sandbox
