#include "broker/run/run_mode.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "broker/channels/broker.hpp"
#include "broker/channels/launch.hpp"
#include "broker/channels/startup.hpp"
#include "broker/core/audit.hpp"
#include "broker/core/event_loop.hpp"
#include "broker/core/log.hpp"
#include "broker/core/tenants.hpp"
#include "broker/notify/decode_notification.hpp"
#include "broker/notify/seccomp_monitor.hpp"
#include "broker/notify/transparent.hpp"
#include "broker/run/hints.hpp"
#include "sandbox/containment.hpp"
#include "sandbox/limits.hpp"
#include "sandbox/pid_init.hpp"
#include "sandbox/self_confine.hpp"
#include "sandbox/spawn.hpp"

namespace fdbroker::broker {

namespace {

constexpr int kSetupFailed = 125;

// Signals the broker handles in its loop: SIGCHLD to reap, the rest forwarded to the worker so that
// Ctrl-C, a service manager's SIGTERM or a resized terminal reach the program the way they would
// without fdbroker (the same ones a pid namespace's init passes on, sandbox/pid_init.hpp).
constexpr auto kHandled = [] {
    std::array<int, sandbox::kForwardedSignals.size() + 1> all{SIGCHLD};
    std::ranges::copy(sandbox::kForwardedSignals, all.begin() + 1);
    return all;
}();

class Signals final : public EventHandler {
  public:
    Signals(pid_t worker, int worker_pidfd) : worker_(worker), worker_pidfd_(worker_pidfd) {}
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
                forward(info);
        }
    }

  private:
    // The kernel sends a terminal's signals (Ctrl-C, Ctrl-\, a resize, a hang-up) to its foreground
    // process group as a whole, with SI_KERNEL. When the worker is in fdbroker's group it has had the
    // signal already: sending it again would deliver it twice. From anyone else (kill(1), a service
    // manager) only fdbroker receives it, and it is passed on.
    void forward(const signalfd_siginfo& info) const noexcept {
        if (info.ssi_code == SI_KERNEL && ::getpgid(worker_) == ::getpgrp()) return;
        ::syscall(SYS_pidfd_send_signal, worker_pidfd_, info.ssi_signo, nullptr, 0);
    }

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

// From the worker's start on, the broker only serves it: it keeps what that needs and nothing else.
// Done while the worker sets itself up (sandbox::SpawnSpec::meanwhile), not after its exec: this
// work then overlaps the worker's instead of delaying the program's start. Returns what failed.
std::string confine(const RunOptions& options, const policy::Profile& profile, const Launched& launched) {
    const sandbox::Confined confined =
        sandbox::confine_broker({.signals_workers = launched.owner.has_value(),
                                 .binds_low_ports = profile.listens_below_1024(),
                                 .reads_worker_memory = options.transparent});
    if (confined.error != 0) return confined.step + ": " + std::strerror(confined.error);
    if (!confined.missing.empty())
        log("fdbroker was started without capabilities this profile may need: %s (what needs them fails "
            "with EPERM)",
            confined.missing.c_str());
    return {};
}

// The broker serving one launched worker until it exits, and ending whatever the worker started.
class WorkerRun {
  public:
    WorkerRun(const RunOptions& options, std::shared_ptr<const policy::Policy> policy,
              const policy::Profile& profile, Audit& audit, std::uint64_t descriptor_budget,
              Launched& launched, sandbox::Containment& containment)
        : launched_(launched),
          containment_(containment),
          signals_(launched.worker.pid, launched.worker.pidfd.get()),
          tenants_(loop_, descriptor_budget),
          broker_(loop_, tenants_, std::move(policy), profile, launched.owner, audit) {
        if (options.transparent) transparent_.emplace(loop_, profile, launched.owner, audit, launched.uid);
        if (options.recorder != nullptr) {
            broker_.complain(*options.permissive, *options.recorder);
            if (transparent_) transparent_->complain(*options.permissive, *options.recorder);
        }
        supervisor_.emplace(loop_, std::move(launched.worker.notify), profile, launched.worker.pid, audit,
                            Transparency{transparent_ ? &*transparent_ : nullptr, &tenants_, launched.uid},
                            Complain{options.recorder});
    }

    // Serves until the worker exits: its exit status, or kSetupFailed.
    int serve(const sigset_t& handled) {
        if (!start(handled)) {
            end_tree();
            return kSetupFailed;
        }
        EventLoop::Hooks hooks;
        hooks.end_of_turn = [this] {
            broker_.end_turn();
            return signals_.exit_status().has_value();
        };
        // The worker is gone but a request is still stuck in a file system: finish without waiting for it.
        hooks.abandon = [this] {
            end_tree();
            flush_log_limits(/*force=*/true);
            ::_exit(exit_code());
        };
        loop_.start_watchdog();
        const bool ran = loop_.run(std::move(hooks));
        if (!ran) log("event loop: %s", std::strerror(errno));
        // The worker has exited: nothing it started may outlive it (a process left behind could take
        // the terminal and read what the user types next).
        end_tree();
        flush_log_limits(/*force=*/true);
        return ran ? exit_code() : kSetupFailed;
    }

  private:
    bool start(const sigset_t& handled) {
        const char* failed = !loop_.valid()                                  ? "creating the event loop"
                             : !signals_.open(handled)                       ? "opening a signalfd"
                             : !loop_.add(signals_.fd(), EPOLLIN, &signals_) ? "watching signals"
                             : !supervisor_->start()             ? "watching the worker's seccomp listener"
                             : !serve_worker(broker_, launched_) ? "serving the worker's channel"
                                                                 : nullptr;
        if (failed) log("%s: %s", failed, std::strerror(errno));
        return failed == nullptr;
    }

    // Ends the worker and everything it started.
    void end_tree() noexcept {
        ::syscall(SYS_pidfd_send_signal, launched_.worker.pidfd.get(), SIGKILL, nullptr, 0);
        containment_.end_all();
    }

    // A worker killed for a forbidden system call exits as a seccomp kill would: 128 + SIGSYS.
    int exit_code() const noexcept {
        if (supervisor_->killed_worker()) return 128 + SIGSYS;
        return signals_.exit_status().value_or(kSetupFailed);
    }

    Launched& launched_;
    sandbox::Containment& containment_;
    EventLoop loop_;
    Signals signals_;
    Tenants tenants_;
    Broker broker_;
    std::optional<Transparent> transparent_;
    std::optional<SeccompMonitor> supervisor_;
};

}  // namespace

int run(const RunOptions& options) {
    std::shared_ptr<const policy::Policy> policy =
        options.loaded ? options.loaded : load_policy(options.policy_file);
    if (!policy) return kSetupFailed;
    const policy::Profile* profile = policy->profile(options.profile);
    if (!profile) {
        log("%s: no profile '%s' (%s)", options.policy_file.c_str(), options.profile.c_str(),
            profile_names(*policy).c_str());
        return kSetupFailed;
    }
    // "-" is standard error: standard output is the program's, and JSON must not interleave with it.
    Audit audit;
    if (!open_audit(options.audit, audit, STDERR_FILENO)) return kSetupFailed;
    Denials denials(options.verbose);
    audit.watch(&denials);
    const std::uint64_t descriptor_budget = sandbox::raise_descriptor_limit();
    sigset_t handled;
    if (!take_signals(kHandled, handled) || !landlock_for("a worker")) return kSetupFailed;

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
         .die_with_broker = true,
         .meanwhile = [&](const Launched& starting) { return confine(options, *profile, starting); }});
    if (!launched.note.empty()) log("%s", launched.note.c_str());
    if (launched.worker.pid < 0) {
        log("%s: %s", options.argv.front().c_str(), launched.worker.error.c_str());
        return launched.worker.exit_code;
    }
    announce_kernel_reads(launched, *profile, audit);
    WorkerRun worker(options, std::move(policy), *profile, audit, descriptor_budget, launched, *containment);
    const int status = worker.serve(handled);
    denials.flush(/*force=*/true);
    explain_failure(options, *profile, denials, status);
    return status;
}

}  // namespace fdbroker::broker
