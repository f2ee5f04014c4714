#include "sandbox/spawn.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "proto/channel.hpp"
#include "sandbox/landlock.hpp"
#include "sandbox/limits.hpp"
#include "sandbox/pid_init.hpp"
#include "sandbox/seccomp_filter.hpp"

namespace fdbroker::sandbox {

namespace {

// What the child tells the parent over the report socket. A failure ends the child; `ready` carries
// the seccomp listener just before exec. Nothing else arrives once exec succeeds (close-on-exec).
struct Report {
    int stage;  // a Stage
    int error;  // errno, for failures
    int landlock_abi;
};
enum Stage : int {
    stage_ready = 0,
    stage_fds,
    stage_limits,
    stage_namespaces,
    stage_identity,
    stage_privs,
    stage_landlock,
    stage_seccomp,
    stage_exec,
    stage_terminal,
    stage_parent,
    stage_init
};

const char* stage_text(int stage) {
    switch (stage) {
        case stage_fds:
            return "setting up the worker's file descriptors";
        case stage_limits:
            return "setting the worker's resource limits";
        case stage_namespaces:
            return "creating the worker's namespaces";
        case stage_identity:
            return "switching the worker's identity";
        case stage_privs:
            return "setting no_new_privs";
        case stage_landlock:
            return "applying the Landlock ruleset";
        case stage_seccomp:
            return "loading the seccomp filter";
        case stage_terminal:
            return "detaching the worker from the terminal (setsid)";
        case stage_parent:
            return "tying the worker's life to the broker's";
        case stage_init:
            return "starting the pid namespace's init";
        default:
            return "starting the program";
    }
}

std::vector<std::string> worker_environment(const policy::Confinement& confinement) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        if (std::strncmp(*e, "FDBROKER_FD=", 12) == 0 || std::strncmp(*e, "FDBROKER_SOCKET=", 16) == 0 ||
            std::strncmp(*e, "FDBROKER_KERNEL_READS=", 22) == 0)
            continue;
        env.emplace_back(*e);
    }
    env.push_back("FDBROKER_FD=" + std::to_string(kChannelFd));
    // libfdbroker then tries a read-only open itself first, which Landlock judges (reads = "kernel").
    if (confinement.reads == policy::ReadTier::kernel) env.emplace_back("FDBROKER_KERNEL_READS=1");
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

void send_report(int sock, const Report& r, int fd = -1) {
    proto::SendOptions options;
    options.fd = fd;
    [[maybe_unused]] int err = proto::send(sock, std::as_bytes(std::span(&r, 1)), options);
}

[[noreturn]] void fail(int sock, int stage, int error) {
    send_report(sock, {stage, error, 0});
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

int unshare_flags(std::uint8_t namespaces) {
    int flags = 0;
    if (namespaces & policy::ns_net) flags |= CLONE_NEWNET;
    if (namespaces & policy::ns_ipc) flags |= CLONE_NEWIPC;
    if (namespaces & policy::ns_uts) flags |= CLONE_NEWUTS;
    return flags;
}

struct ChildPlan {
    const SpawnSpec& spec;
    pid_t broker;
    const std::string& program;
    const std::vector<std::string>& runtime;
    char** argv;
    char** envp;
};

// In a new pid namespace: forks the program's process, which returns; this one stays behind as the
// namespace's init (pid_init.hpp), confined as a worker without a broker is (fdbroker_lockdown's
// filter: refused calls fail or kill, none waits for an answer; it has no channel to the broker).
// Its Landlock domain does not scope signals, so that it can pass them on to the program, whose own
// domain is beside it rather than beneath it; only the init's code ever runs in it.
void split_off_init(const ChildPlan& plan, int report) {
    const pid_t program = fork_under_init();
    if (program < 0) fail(report, stage_init, errno);
    if (program == 0) return;
    const policy::Confinement& c = plan.spec.confinement;
    const LandlockResult landlock = apply_landlock(plan.runtime, {}, {.scope_signals = false});
    if (landlock.error != 0) fail(report, stage_init, landlock.error);
    const FilterResult filter =
        load_worker_filter(c.syscalls, {.action = FilterAction::kill, .terminal = c.terminal});
    if (filter.error != 0) fail(report, stage_init, filter.error);
    serve_as_init(program);
}

// Runs in the child: confines it step by step, in the documented order, then execs. Never returns.
[[noreturn]] void become_worker(const ChildPlan& plan, int report) {
    const SpawnSpec& spec = plan.spec;
    const policy::Confinement& c = spec.confinement;
    reset_signals();
    // 1. Descriptors: move the two we keep out of the way, place the channel at kChannelFd without
    //    close-on-exec, and mark every other descriptor close-on-exec.
    const int channel = ::fcntl(spec.channel, F_DUPFD_CLOEXEC, kChannelFd + 1);
    report = ::fcntl(report, F_DUPFD_CLOEXEC, kChannelFd + 1);
    if (channel < 0 || report < 0) ::_exit(125);
    if (spec.output >= 0 &&
        (::dup2(spec.output, STDOUT_FILENO) < 0 || ::dup2(spec.output, STDERR_FILENO) < 0))
        fail(report, stage_fds, errno);
    if (::dup2(channel, kChannelFd) < 0) fail(report, stage_fds, errno);
    if (::syscall(SYS_close_range, kChannelFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        fail(report, stage_fds, errno);
    // A session of its own: no controlling terminal, so nothing it does reaches the user's.
    if (c.terminal == policy::Terminal::detached && ::setsid() < 0) fail(report, stage_terminal, errno);
    // 2. Resource limits, while the broker's privileges still allow lowering hard limits freely.
    if (const int err = apply_limits(c.limits); err != 0) fail(report, stage_limits, err);
    // 3. Namespaces (pid was made at clone time: a process cannot enter a new pid namespace itself).
    if (const int flags = unshare_flags(c.namespaces); flags != 0 && ::unshare(flags) != 0)
        fail(report, stage_namespaces, errno);
    // 4. Identity: needs the privileges it drops, so it comes after everything that needs root.
    if (const int err = spec.identity.apply(); err != 0) fail(report, stage_identity, err);
    // The worker dies with the broker (after the identity switch, which clears the setting). Only for a
    // broker whose spawning thread lives as long as it does: the signal follows the thread.
    if (spec.die_with_broker) {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(report, stage_parent, errno);
        // Gone already, and the signal missed? (In a new pid namespace the parent is outside it: 0.)
        const pid_t parent = ::getppid();
        if (parent != plan.broker && parent != 0) fail(report, stage_parent, ESRCH);
    }
    // 5. no_new_privs: nothing exec'd can gain privileges back; also lets an unprivileged process
    //    install Landlock and seccomp.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(report, stage_privs, errno);
    // In a pid namespace of its own this process is pid 1: the program runs in its child, and it stays
    // behind as the namespace's init. Here, before Landlock, whose rules tie /proc/self to the process
    // that makes them: each of the two makes its own.
    if (c.namespaces & policy::ns_pid) split_off_init(plan, report);
    // 6. Landlock: reading only the runtime paths, the program and, under reads = "kernel", the
    //    profile's read set.
    const LandlockResult landlock = apply_landlock(
        plan.runtime, plan.program,
        {.kernel_reads = c.kernel_reads, .truncate_where_readable = filter_keeps_truncation(c.syscalls)});
    // A program the worker's user cannot open (under /root, say) is "not executable" (126), as exec
    // would have said, rather than a Landlock failure.
    if (landlock.error != 0)
        fail(report, landlock.program_unreachable ? stage_exec : stage_landlock, landlock.error);
    // 7. seccomp, last: it forbids much of what the steps above use. The listener goes to the broker.
    const bool kernel_reads = c.reads == policy::ReadTier::kernel && landlock.abi > 0;
    FilterResult filter =
        load_worker_filter(c.syscalls, {.exec = c.exec,
                                        .action = FilterAction::notify,
                                        .brokered = spec.brokered,
                                        .kernel_reads = kernel_reads,
                                        .kernel_stat = kernel_reads && c.stat == policy::StatTier::kernel,
                                        .datagram_reach = c.datagram_reach,
                                        .terminal = c.terminal});
    if (filter.error != 0) fail(report, stage_seccomp, filter.error);
    send_report(report, {stage_ready, 0, landlock.abi}, filter.notify.get());
    filter.notify.reset();
    // 8. exec: the broker lets exactly this first execve through (exec-once). Where the filter allows
    //    exec outright, a byte from the broker does instead: either way the program starts only once
    //    the broker has done what it does meanwhile (SpawnSpec::meanwhile).
    if (c.exec) {
        char go = 0;
        if (::read(report, &go, 1) != 1) ::_exit(125);
    }
    ::execve(plan.program.c_str(), plan.argv, plan.envp);
    fail(report, stage_exec, errno);
}

// Clones the worker, into `cgroup` when one is given (so that it and all it starts are in it from
// their first instruction).
pid_t clone_worker(bool new_pid_namespace, int cgroup, int& pidfd) {
    clone_args args{};
    args.flags = CLONE_PIDFD | (new_pid_namespace ? CLONE_NEWPID : 0);
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    if (cgroup >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = static_cast<std::uint64_t>(cgroup);
    }
    return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

// The parent of process `pid`, from /proc (in the broker's pid namespace); -1 if unknown.
pid_t parent_of(pid_t pid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
    const unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    std::array<char, 4096> text{};
    const ssize_t n = fd ? ::read(fd.get(), text.data(), text.size() - 1) : -1;
    if (n <= 0) return -1;
    const char* field = std::strstr(text.data(), "\nPPid:");
    return field ? static_cast<pid_t>(std::atoi(field + 6)) : -1;
}

// Whether the notification comes from the process that is to exec PROGRAM: the child itself, or,
// under a pid namespace's init, the init's child (pid_init.hpp). Until then only fdbroker's own code
// runs in either.
bool from_program(int notify, const seccomp_notif& req, pid_t child, bool under_init) noexcept {
    const auto caller = static_cast<pid_t>(req.pid);
    if (caller == child) return true;
    // Still pending after the read: the pid named the caller when its parent was read.
    return under_init && parent_of(caller) == child && seccomp_notify_id_valid(notify, req.id) == 0;
}

// The buffers one seccomp notification is received and answered in. Allocating them is libseccomp's
// first notification call, where it asks the kernel what it supports (a dozen system calls).
class NotificationBuffers {
  public:
    NotificationBuffers() noexcept {
        if (seccomp_notify_alloc(&req_, &resp_) != 0) {
            req_ = nullptr;
            resp_ = nullptr;
        }
    }
    ~NotificationBuffers() {
        if (req_ != nullptr) seccomp_notify_free(req_, resp_);
    }
    NotificationBuffers(const NotificationBuffers&) = delete;
    NotificationBuffers& operator=(const NotificationBuffers&) = delete;

    [[nodiscard]] seccomp_notif* request() const noexcept { return req_; }
    [[nodiscard]] seccomp_notif_resp* response() const noexcept { return resp_; }

  private:
    seccomp_notif* req_ = nullptr;
    seccomp_notif_resp* resp_ = nullptr;
};

// Until the worker has exec'd, the parent answers its seccomp notifications itself: the one execve
// of PROGRAM is let through; anything else in that window is refused.
void answer_startup_notification(int notify, const NotificationBuffers& buffers, pid_t child, bool under_init,
                                 bool& exec_seen) {
    seccomp_notif* req = buffers.request();
    seccomp_notif_resp* resp = buffers.response();
    if (req == nullptr) return;
    std::memset(req, 0, sizeof *req);  // the kernel refuses a receive buffer that is not zeroed
    if (seccomp_notify_receive(notify, req) != 0) return;
    std::memset(resp, 0, sizeof *resp);
    resp->id = req->id;
    const bool first_exec = !exec_seen && req->data.nr == seccomp_syscall_resolve_name("execve") &&
                            from_program(notify, *req, child, under_init);
    if (first_exec) {
        // Allowing it does not depend on the worker's memory: only on who calls and that it is the
        // first exec, so SECCOMP_USER_NOTIF_FLAG_CONTINUE is safe here (security-model.md).
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        exec_seen = true;
    } else {
        resp->error = -EPERM;
    }
    [[maybe_unused]] int rc = seccomp_notify_respond(notify, resp);
}

// Reads the worker's reports until its socket closes (the exec succeeded: true) or a failure arrives
// (false, with `out.error` and `out.exit_code` set when the worker said what failed), answering its
// seccomp notifications meanwhile (its first execve goes through one). Only the first execve is ours
// to answer: after it, whatever the worker does is the broker's business (its SeccompMonitor), even
// before this loop has seen the report socket close. When the filter allows exec outright there is
// nothing to answer at all (`buffers` is null).
bool await_exec(const SpawnSpec& spec, pid_t pid, int report, const NotificationBuffers* buffers,
                Spawned& out) {
    bool exec_seen = buffers == nullptr;
    for (;;) {
        pollfd fds[2] = {{report, POLLIN, 0}, {out.notify.get(), POLLIN, 0}};
        if (::poll(fds, out.notify && !exec_seen ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (out.notify && !exec_seen && (fds[1].revents & POLLIN))
            answer_startup_notification(out.notify.get(), *buffers, pid,
                                        spec.confinement.namespaces & policy::ns_pid, exec_seen);
        if (!(fds[0].revents & (POLLIN | POLLHUP))) continue;
        std::array<std::byte, sizeof(Report) + 1> buf;
        proto::Received r = proto::receive(report, buf, 0, 1);
        if (r.status == proto::RecvStatus::eof && out.notify) {
            out.pid = pid;  // exec'd after reporting ready: the worker is running
            return true;
        }
        // The socket closed before the worker was confined, or something else came than a report.
        if (r.status != proto::RecvStatus::ok || r.size != sizeof(Report)) return false;
        Report rep;
        std::memcpy(&rep, buf.data(), sizeof rep);
        if (rep.stage == stage_ready) {
            out.notify = std::move(r.fd);
            out.landlock_abi = rep.landlock_abi;
            // Without an execve to answer, the go-ahead is a byte (become_worker, step 8).
            if (buffers == nullptr && ::send(report, "g", 1, MSG_NOSIGNAL) != 1) return false;
            continue;
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 125;
        out.error = std::string(stage_text(rep.stage)) + ": " + std::strerror(rep.error);
        return false;
    }
}

}  // namespace

std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) {
        if (::access(name.c_str(), F_OK) != 0) return {};
        return name;
    }
    const char* path = std::getenv("PATH");
    std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    int saw = ENOENT;
    while (true) {
        const std::size_t colon = dirs.find(':');
        const std::string_view dir = dirs.substr(0, colon);
        std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        if (errno == EACCES) saw = EACCES;
        if (colon == std::string_view::npos) break;
        dirs.remove_prefix(colon + 1);
    }
    errno = saw;
    return {};
}

Spawned spawn(const SpawnSpec& spec) {
    Spawned out;
    auto fail_early = [&](int code, std::string why) {
        out.exit_code = code;
        out.error = std::move(why);
        return std::move(out);
    };
    if (spec.argv.empty()) return fail_early(125, "no program to run");
    const std::string program = find_program(spec.argv[0]);
    if (program.empty())
        return fail_early(errno == EACCES ? 126 : 127,
                          std::string("starting the program: ") + std::strerror(errno));
    std::vector<std::string> runtime = spec.confinement.runtime;
    if (spec.confinement.runtime_builtin)
        runtime.insert(runtime.end(), policy::default_runtime().begin(), policy::default_runtime().end());

    // Everything the child needs is built before the clone so that the child allocates nothing.
    std::vector<std::string> args = spec.argv;
    std::vector<std::string> env = worker_environment(spec.confinement);
    std::vector<char*> argv = pointers(args);
    std::vector<char*> envp = pointers(env);
    const ChildPlan plan{spec, ::getpid(), program, runtime, argv.data(), envp.data()};

    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        return fail_early(125, std::string("socketpair: ") + std::strerror(errno));
    unique_fd report(pair[0]), child_end(pair[1]);

    int pidfd = -1;
    const pid_t pid = clone_worker(spec.confinement.namespaces & policy::ns_pid, spec.cgroup, pidfd);
    if (pid < 0) return fail_early(125, std::string("clone3: ") + std::strerror(errno));
    if (pid == 0) become_worker(plan, child_end.get());
    out.pidfd.reset(pidfd);
    child_end.reset();
    auto end_worker = [&] {
        ::syscall(SYS_pidfd_send_signal, out.pidfd.get(), SIGKILL, nullptr, 0);
        ::waitpid(pid, nullptr, 0);
    };
    // While the worker sets itself up: everything this side can do before the worker's exec waits
    // for it.
    std::optional<NotificationBuffers> buffers;
    if (!spec.confinement.exec) buffers.emplace();
    if (spec.meanwhile) {
        if (std::string why = spec.meanwhile(); !why.empty()) {
            end_worker();
            return fail_early(125, std::move(why));
        }
    }

    if (await_exec(spec, pid, report.get(), buffers ? &*buffers : nullptr, out)) return out;
    if (!out.error.empty()) return out;  // the worker said what failed, and is reaped
    end_worker();
    return fail_early(125, "the worker failed during set-up");
}

}  // namespace fdbroker::sandbox
