#include "broker/run/run_mode.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "broker/core/audit.hpp"
#include "broker/channels/broker.hpp"
#include "broker/notify/decode_notification.hpp"
#include "broker/core/event_loop.hpp"
#include "broker/channels/launch.hpp"
#include "broker/core/log.hpp"
#include "broker/notify/supervisor.hpp"
#include "broker/core/tenants.hpp"
#include "broker/notify/transparent.hpp"
#include "sandbox/containment.hpp"
#include "sandbox/landlock.hpp"
#include "sandbox/limits.hpp"
#include "sandbox/self_confine.hpp"
#include "sandbox/spawn.hpp"

namespace fdbroker::broker {

namespace {

constexpr int kSetupFailed = 125;

// Signals the broker handles in its loop: SIGCHLD to reap, the rest forwarded to the worker so that
// Ctrl-C or a service manager's SIGTERM reach the program the way they would without fdbroker.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

class Signals final : public EventHandler {
  public:
    Signals(pid_t worker, int worker_pidfd) : worker_(worker), worker_pidfd_(worker_pidfd) {}
    static bool block(sigset_t& set) {
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        for (int sig : kForwarded)
            sigaddset(&set, sig);
        return ::sigprocmask(SIG_BLOCK, &set, nullptr) == 0;
    }
    bool open(const sigset_t& set) {
        fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
        return static_cast<bool>(fd_);
    }
    int fd() const { return fd_.get(); }
    std::optional<int> exit_status() const { return status_; }

    void on_event(std::uint32_t) noexcept override {
        signalfd_siginfo info{};
        while (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
            if (info.ssi_signo == SIGCHLD)
                reap();
            else
                ::syscall(SYS_pidfd_send_signal, worker_pidfd_, info.ssi_signo, nullptr, 0);
        }
    }

  private:
    // Reaps the worker and any orphaned descendant re-parented to the broker (it is a subreaper).
    void reap() noexcept {
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != worker_) continue;
            status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
    }

    pid_t worker_;
    int worker_pidfd_;
    unique_fd fd_;
    std::optional<int> status_;
};

}  // namespace

int run(const RunOptions& options) {
    policy::LoadResult loaded = policy::Policy::load_file(options.policy_file);
    for (const auto& d : loaded.errors)
        log("%s", d.str().c_str());
    if (!loaded.policy) return kSetupFailed;
    const policy::Profile* profile = loaded.policy->profile(options.profile);
    if (!profile) {
        log("%s: no profile '%s'", options.policy_file.c_str(), options.profile.c_str());
        return kSetupFailed;
    }

    Audit audit;
    if (!options.audit.empty()) {
        std::string error;
        audit = Audit::open(options.audit, error);
        if (!audit.enabled()) {
            log("%s", error.c_str());
            return kSetupFailed;
        }
    }

    const std::uint64_t descriptor_budget = sandbox::raise_descriptor_limit();

    // A closed audit pipe (`--audit - | head`) must cost audit lines, not the broker: writes then fail
    // with EPIPE instead. The worker gets default dispositions back in sandbox::spawn.
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t handled;
    if (!Signals::block(handled) || ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        log("setting up signals: %s", std::strerror(errno));
        return kSetupFailed;
    }

    // Without Landlock a worker could read whatever its uid may read, beyond the runtime paths: refuse
    // rather than run less confined than the profile promises.
    if (sandbox::landlock_abi() == 0) {
        log("this kernel has no Landlock (or it is disabled): refusing to run a worker less confined than "
            "its "
            "profile says");
        return kSetupFailed;
    }
    // Everything the worker starts is ended with it (sandbox/containment.hpp).
    std::string note;
    const std::unique_ptr<sandbox::Containment> containment = sandbox::Containment::create(note);
    if (!note.empty()) log("%s", note.c_str());
    Launched launched = launch_worker(
        {.argv = options.argv,
         .profile = *profile,
         .containment = *containment,
         .cgroup = "worker",
         .brokered = options.transparent ? brokered_call_names() : std::span<const char* const>(),
         .die_with_broker = true});
    if (!launched.note.empty()) log("%s", launched.note.c_str());
    sandbox::Spawned& worker = launched.worker;
    if (worker.pid < 0) {
        log("%s: %s", options.argv.front().c_str(), worker.error.c_str());
        return worker.exit_code;
    }
    // Whatever ends the run from here ends the worker and everything it started with it.
    auto end_tree = [&] {
        ::syscall(SYS_pidfd_send_signal, worker.pidfd.get(), SIGKILL, nullptr, 0);
        containment->end_all();
    };

    EventLoop loop;
    Signals signals(worker.pid, worker.pidfd.get());
    Tenants tenants(loop, descriptor_budget);
    Broker broker(loop, tenants, loaded.policy, *profile, launched.owner, audit);
    std::optional<Transparent> transparent;
    if (options.transparent) transparent.emplace(loop, *profile, launched.owner, audit, launched.uid);
    Supervisor supervisor(loop, std::move(worker.notify), *profile, worker.pid,
                          {transparent ? &*transparent : nullptr, &tenants, launched.uid});
    const char* failed = !loop.valid()                                ? "creating the event loop"
                         : !signals.open(handled)                     ? "opening a signalfd"
                         : !loop.add(signals.fd(), EPOLLIN, &signals) ? "watching signals"
                         : !supervisor.start()             ? "watching the worker's seccomp listener"
                         : !serve_worker(broker, launched) ? "serving the worker's channel"
                                                           : nullptr;
    if (failed) {
        log("%s: %s", failed, std::strerror(errno));
        end_tree();
        return kSetupFailed;
    }

    // The worker runs; from here the broker only serves it. It keeps what that needs and nothing else.
    const sandbox::Confined confined =
        sandbox::confine_broker({.signals_workers = launched.owner.has_value(),
                                 .binds_low_ports = profile->listens_below_1024(),
                                 .reads_worker_memory = options.transparent});
    if (confined.error != 0) {
        log("%s: %s", confined.step.c_str(), std::strerror(confined.error));
        end_tree();
        return kSetupFailed;
    }
    if (!confined.missing.empty())
        log("fdbroker was started without capabilities this profile may need: %s (what needs them fails with "
            "EPERM)",
            confined.missing.c_str());

    // A worker killed for a forbidden system call exits as a seccomp kill would: 128 + SIGSYS.
    auto exit_code = [&] { return supervisor.killed_worker() ? 128 + SIGSYS : *signals.exit_status(); };
    EventLoop::Hooks hooks;
    hooks.end_of_turn = [&] {
        broker.end_turn();
        return signals.exit_status().has_value();
    };
    // The worker is gone but a request is still stuck in a file system: finish without waiting for it.
    hooks.abandon = [&] {
        end_tree();
        flush_log_limits(/*force=*/true);
        ::_exit(exit_code());
    };
    if (!loop.start_watchdog())
        log("cannot start the watchdog thread: a stuck file system would stall the broker");
    if (!loop.run(std::move(hooks))) {
        log("event loop: %s", std::strerror(errno));
        end_tree();
        return kSetupFailed;
    }
    // The worker has exited: nothing it started may outlive it (a process left behind could take the
    // terminal and read what the user types next).
    end_tree();
    flush_log_limits(/*force=*/true);
    return exit_code();
}

}  // namespace fdbroker::broker
