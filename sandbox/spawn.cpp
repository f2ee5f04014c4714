#include "sandbox/spawn.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace fdbroker::sandbox {

namespace {

// What the child tells the parent, through a close-on-exec pipe, when it fails before exec. Nothing
// arrives when exec succeeds.
struct ChildFailure {
    int stage;  // one of the Stage values
    int error;
};
enum Stage : int { stage_fds = 1, stage_identity, stage_privs, stage_exec };

const char* stage_text(int stage) {
    switch (stage) {
        case stage_fds:
            return "setting up the worker's file descriptors";
        case stage_identity:
            return "switching the worker's identity";
        case stage_privs:
            return "setting no_new_privs";
        default:
            return "starting the program";
    }
}

std::vector<std::string> worker_environment() {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        if (std::strncmp(*e, "FDBROKER_FD=", 12) == 0 || std::strncmp(*e, "FDBROKER_SOCKET=", 16) == 0)
            continue;
        env.emplace_back(*e);
    }
    env.push_back("FDBROKER_FD=" + std::to_string(kChannelFd));
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

[[noreturn]] void fail(int report_fd, int stage, int error) {
    const ChildFailure f{stage, error};
    [[maybe_unused]] ssize_t n = ::write(report_fd, &f, sizeof f);
    ::_exit(stage == stage_exec ? (error == ENOENT ? 127 : 126) : 125);
}

void reset_signals() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        ::sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP: fine
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Runs in the child: never returns.
[[noreturn]] void become_worker(const SpawnSpec& spec, int report, char** argv, char** envp) {
    reset_signals();
    // Move both descriptors we keep above the range we are about to fill, then place the channel at
    // kChannelFd without close-on-exec and mark every other descriptor close-on-exec.
    int channel = ::fcntl(spec.channel, F_DUPFD_CLOEXEC, 64);
    report = ::fcntl(report, F_DUPFD_CLOEXEC, 64);
    if (channel < 0 || report < 0) ::_exit(125);
    if (::dup2(channel, kChannelFd) < 0) fail(report, stage_fds, errno);
    if (::syscall(SYS_close_range, kChannelFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        fail(report, stage_fds, errno);
    if (const int err = spec.identity.apply(); err != 0) fail(report, stage_identity, err);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(report, stage_privs, errno);
    ::execvpe(argv[0], argv, envp);
    fail(report, stage_exec, errno);
}

}  // namespace

Spawned spawn(const SpawnSpec& spec) {
    Spawned out;
    if (spec.argv.empty()) {
        out.exit_code = 125;
        out.error = "no program to run";
        return out;
    }
    // Everything the child needs is built before fork so that the child allocates nothing.
    std::vector<std::string> args = spec.argv;
    std::vector<std::string> env = worker_environment();
    std::vector<char*> argv = pointers(args);
    std::vector<char*> envp = pointers(env);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        out.exit_code = 125;
        out.error = std::string("pipe: ") + std::strerror(errno);
        return out;
    }
    unique_fd report_read(pipe_fds[0]), report_write(pipe_fds[1]);

    const pid_t pid = ::fork();
    if (pid < 0) {
        out.exit_code = 125;
        out.error = std::string("fork: ") + std::strerror(errno);
        return out;
    }
    if (pid == 0) become_worker(spec, report_write.get(), argv.data(), envp.data());

    report_write.reset();
    ChildFailure failure{};
    ssize_t n;
    do
        n = ::read(report_read.get(), &failure, sizeof failure);
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof failure)) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 125;
        out.error = std::string(stage_text(failure.stage)) + ": " + std::strerror(failure.error);
        return out;
    }
    out.pid = pid;
    // The child is ours and not yet reaped, so this pid names it and nothing else.
    out.pidfd = unique_fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    return out;
}

}  // namespace fdbroker::sandbox
