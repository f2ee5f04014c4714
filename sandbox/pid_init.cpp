#include "sandbox/pid_init.hpp"

#include <linux/close_range.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

namespace fdbroker::sandbox {

namespace {

// What the init waits for: a child's end, and every signal it forwards. Blocked rather than caught,
// and taken with sigwaitinfo: a blocked signal is queued even for an init, and no handler runs.
sigset_t init_signals() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (const int sig : kForwardedSignals)
        sigaddset(&set, sig);
    return set;
}

// Reaps every child that has ended; the program's status once it is among them.
std::optional<int> reap(pid_t program) noexcept {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid != program) continue;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return std::nullopt;
}

}  // namespace

void serve_as_init(pid_t program) noexcept {
    // The init holds nothing: not the worker's channel, not its standard streams (a reader waiting
    // for the program's output to end must not wait for the init too).
    ::syscall(SYS_close_range, 0U, ~0U, 0U);
    const sigset_t waited = init_signals();
    for (;;) {
        siginfo_t info{};
        const int sig = ::sigwaitinfo(&waited, &info);
        if (sig < 0) continue;
        if (sig == SIGCHLD) {
            // Exiting ends the namespace: the kernel kills whatever the program left behind.
            if (const std::optional<int> status = reap(program)) ::_exit(*status);
            continue;
        }
        // A terminal sends its signals (SI_KERNEL) to its whole foreground process group: a program
        // still in the init's group has had this one already.
        if (info.si_code == SI_KERNEL && ::getpgid(program) == ::getpgrp()) continue;
        ::kill(program, sig);
    }
}

pid_t fork_under_init() noexcept {
    const sigset_t waited = init_signals();
    sigset_t before;
    // Blocked before the fork: a signal that arrives before the init waits is queued, not lost.
    if (::sigprocmask(SIG_BLOCK, &waited, &before) != 0) return -1;
    const pid_t program = ::fork();
    if (program < 0) {
        const int saved = errno;
        ::sigprocmask(SIG_SETMASK, &before, nullptr);
        errno = saved;
        return -1;
    }
    if (program == 0) ::sigprocmask(SIG_SETMASK, &before, nullptr);
    return program;
}

}  // namespace fdbroker::sandbox
