#include "broker/serve/pool.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "broker/channels/broker.hpp"
#include "broker/channels/launch.hpp"
#include "broker/core/log.hpp"
#include "sandbox/spawn.hpp"

namespace fdbroker::broker {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{30'000};
// How soon a start put off while helper threads serve is tried again.
constexpr milliseconds kBusyRetry{50};
// A worker that ran this long before exiting was working, not crash-looping: its next restart is quick.
constexpr std::chrono::seconds kHealthyRun{10};
// A line longer than this is forwarded in pieces rather than buffered without bound.
constexpr std::size_t kMaxLine = 4096;

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
    return "ended";
}

}  // namespace

PoolWorker::PoolWorker(PoolHost& host, std::string profile, std::uint32_t instance)
    : host_(host), profile_(std::move(profile)), instance_(instance), backoff_(kFirstBackoff) {
    output_.owner = this;
    timer_.owner = this;
}

PoolWorker::~PoolWorker() {
    supervisor_.reset();
    output_.close();
    if (timer_.fd) host_.loop().remove(timer_.fd.get());
    if (pidfd_) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

void PoolWorker::start() noexcept {
    if (stopping_ || running()) return;
    // The worker is cloned and confines itself with libraries that allocate memory. While helper threads
    // serve (a request is stuck in a file system), one of them could hold an allocator lock at the
    // moment of the clone, which the child would then wait for forever: start when they are gone.
    if (host_.loop().threads() > 1) return arm_timer(kBusyRetry);
    try {
        const std::shared_ptr<const policy::Policy> policy = host_.policy();
        const policy::Profile* profile = policy->profile(profile_);
        if (profile == nullptr || !profile->pool().declared() || instance_ >= profile->pool().instances) {
            stopping_ = true;  // the pool shrank or went away in a reload
            return;
        }
        int pipe[2];
        if (::pipe2(pipe, O_CLOEXEC) != 0) {
            log("[%s/%u] cannot start: pipe: %s", profile_.c_str(), instance_, std::strerror(errno));
            return schedule_restart(true);
        }
        unique_fd out_read(pipe[0]), out_write(pipe[1]);
        ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);

        // A cgroup per run: the last one's processes may still be on their way out.
        const std::string cgroup =
            profile_ + "-" + std::to_string(instance_) + "-" + std::to_string(++generation_);
        Launched launched = launch_worker({.argv = profile->pool().command,
                                           .profile = *profile,
                                           .containment = host_.containment(),
                                           .cgroup = cgroup,
                                           .output = out_write.get()});
        if (!launched.note.empty()) log("[%s/%u] %s", profile_.c_str(), instance_, launched.note.c_str());
        sandbox::Spawned& worker = launched.worker;
        if (worker.pid < 0) {
            log("[%s/%u] cannot start %s: %s", profile_.c_str(), instance_,
                profile->pool().command.front().c_str(), worker.error.c_str());
            return schedule_restart(true);
        }
        announce_kernel_reads(launched, *profile, host_.audit());
        pid_ = worker.pid;
        pidfd_ = std::move(worker.pidfd);
        cgroup_ = launched.in_cgroup ? cgroup : std::string();
        spawned_with_ = policy;
        started_at_ = std::chrono::steady_clock::now();

        // What an earlier run's descendants may still write is dropped with its pipe.
        output_.close();
        output_.fd = std::move(out_read);
        output_.prefix = "[" + profile_ + "/" + std::to_string(instance_) + " " + std::to_string(pid_) + "] ";
        if (!host_.loop().add(output_.fd.get(), EPOLLIN, &output_)) output_.fd.reset();

        supervisor_ = std::make_unique<SeccompMonitor>(host_.loop(), std::move(worker.notify), *profile, pid_,
                                                       host_.audit());
        Broker* broker = host_.broker_for(*profile, launched.owner);
        const bool served = supervisor_->start() && broker != nullptr && serve_worker(*broker, launched);
        if (!served) {
            log("[%s/%u %d] cannot serve the worker's channel: stopping it", profile_.c_str(), instance_,
                static_cast<int>(pid_));
            ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
            return;  // reaped like any exit, and restarted from there
        }
        log("[%s/%u %d] started %s", profile_.c_str(), instance_, static_cast<int>(pid_),
            profile->pool().command.front().c_str());
    } catch (const std::bad_alloc&) {
        log("[%s/%u] cannot start: out of memory", profile_.c_str(), instance_);
        schedule_restart(true);
    }
}

void PoolWorker::exited(int status) noexcept {
    const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const bool healthy_run = std::chrono::steady_clock::now() - started_at_ >= kHealthyRun;
    log("[%s/%u %d] %s", profile_.c_str(), instance_, static_cast<int>(pid_),
        describe_status(status).c_str());
    pid_ = -1;
    pidfd_.reset();
    // Nothing the worker started outlives it.
    if (!cgroup_.empty()) host_.containment().end(cgroup_);
    cgroup_.clear();
    if (supervisor_) supervisor_->stop();
    // The loop turn that saw the exit may still dispatch to the supervisor: the loop destroys it, with
    // the policy its profile reference points into, once nothing can.
    host_.loop().retire(std::make_unique<Retired>(std::move(supervisor_), std::move(spawned_with_)));
    if (healthy_run) backoff_ = kFirstBackoff;
    schedule_restart(failed);
}

void PoolWorker::stop(bool force) noexcept {
    stopping_ = true;
    if (timer_.fd) {
        host_.loop().remove(timer_.fd.get());
        timer_.fd.reset();
    }
    if (pidfd_) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), force ? SIGKILL : SIGTERM, nullptr, 0);
}

void PoolWorker::schedule_restart(bool failed) noexcept {
    if (stopping_) return;
    const std::shared_ptr<const policy::Policy> policy = host_.policy();
    const policy::Profile* profile = policy->profile(profile_);
    if (profile == nullptr || !profile->pool().declared() || instance_ >= profile->pool().instances) {
        stopping_ = true;
        return;
    }
    const policy::Restart restart = profile->pool().restart;
    if (restart == policy::Restart::never || (restart == policy::Restart::on_failure && !failed)) {
        log("[%s/%u] not restarted (restart = \"%s\")", profile_.c_str(), instance_,
            std::string(policy::restart_name(restart)).c_str());
        return;
    }
    arm_timer(backoff_);
    log("[%s/%u] restarting in %lld ms", profile_.c_str(), instance_,
        static_cast<long long>(backoff_.count()));
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

// Calls start() after `delay`.
void PoolWorker::arm_timer(milliseconds delay) noexcept {
    if (!timer_.fd) {
        timer_.fd.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        if (!timer_.fd || !host_.loop().add(timer_.fd.get(), EPOLLIN, &timer_)) {
            log("[%s/%u] cannot schedule a start: %s", profile_.c_str(), instance_, std::strerror(errno));
            timer_.fd.reset();
            return;
        }
    }
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(delay.count() / 1000);
    when.it_value.tv_nsec = static_cast<long>((delay.count() % 1000) * 1'000'000);
    ::timerfd_settime(timer_.fd.get(), 0, &when, nullptr);
}

void PoolWorker::RestartTimer::on_event(std::uint32_t) noexcept {
    std::uint64_t expirations = 0;
    if (::read(fd.get(), &expirations, sizeof expirations) != static_cast<ssize_t>(sizeof expirations))
        return;
    owner->start();
}

void PoolWorker::Output::on_event(std::uint32_t) noexcept {
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) return close();
        std::string_view data(buffer, static_cast<std::size_t>(n));
        try {
            while (!data.empty()) {
                const std::size_t newline = data.find('\n');
                if (newline == std::string_view::npos) {
                    pending.append(data);
                    if (pending.size() >= kMaxLine) {
                        emit(pending);
                        pending.clear();
                    }
                    break;
                }
                pending.append(data.substr(0, newline));
                emit(pending);
                pending.clear();
                data.remove_prefix(newline + 1);
            }
        } catch (const std::bad_alloc&) {
            pending.clear();
        }
    }
}

void PoolWorker::Output::emit(std::string_view line) const noexcept {
    log_output("%s%.*s", prefix.c_str(), static_cast<int>(line.size()), line.data());
}

void PoolWorker::Output::close() noexcept {
    if (!fd) return;
    if (!pending.empty()) emit(pending);
    pending.clear();
    owner->host_.loop().remove(fd.get());
    fd.reset();
}

}  // namespace fdbroker::broker
