// The init of a worker's pid namespace (`namespaces = ["pid"]`). The first process of a pid namespace
// is its init, and the kernel spares an init every signal it has no handler for, whoever sends it:
// a program that counts on the default action of SIGINT or SIGTERM would survive Ctrl-C as pid 1.
// So the worker's process forks once more while it is set up (spawn.cpp) and stays behind as pid 1,
// confined like the program: it passes the signals fdbroker forwards on to the program, reaps
// whatever is re-parented to it, and exits with the program's status (128+N when it died of signal
// N). When it exits the kernel kills everything else in the namespace.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <array>

namespace fdbroker::sandbox {

// The signals that reach a worker as they would reach the program natively: fdbroker forwards them
// to its worker, and the init of a pid namespace forwards them to the program.
inline constexpr std::array kForwardedSignals = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                                                 SIGUSR1, SIGUSR2, SIGWINCH};

// Forks the program's process. Returns 0 in the program's process, with the signal mask it had on
// entry; in the init, the program's pid, with the signals serve_as_init() waits for blocked (so that
// none sent before it waits is lost); -1 (errno set) if the fork failed.
[[nodiscard]] pid_t fork_under_init() noexcept;

// The init's life once it is confined: closes every descriptor, then forwards signals and reaps until
// the program ends, and exits with its status.
[[noreturn]] void serve_as_init(pid_t program) noexcept;

}  // namespace fdbroker::sandbox
