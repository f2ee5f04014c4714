// One instance of a profile's supervised pool (serve mode): spawned confined like a `run` worker and
// pre-connected to the broker, its output forwarded to the broker's log line by line, and restarted
// when it exits as the profile's `restart` says, with a backoff that doubles while it keeps failing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "broker/core/event_loop.hpp"
#include "broker/notify/seccomp_monitor.hpp"
#include "broker/ops/file_ops.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"
#include "sandbox/containment.hpp"

namespace fdbroker::broker {

class Broker;

// What a pool worker needs from the server that runs it.
class PoolHost {
  public:
    [[nodiscard]] virtual EventLoop& loop() noexcept = 0;
    // The policy in force now: a restart uses the latest one.
    [[nodiscard]] virtual std::shared_ptr<const policy::Policy> policy() const noexcept = 0;
    // The broker that serves `profile` for workers whose files belong to `owner`; null on failure.
    [[nodiscard]] virtual Broker* broker_for(const policy::Profile& profile,
                                             std::optional<FileOwner> owner) noexcept = 0;
    // Where workers are spawned, and their descendants ended with them.
    [[nodiscard]] virtual sandbox::Containment& containment() noexcept = 0;
    // Where the refusals of pool workers' system calls are recorded.
    [[nodiscard]] virtual Audit& audit() noexcept = 0;

  protected:
    ~PoolHost() = default;
};

class PoolWorker {
  public:
    PoolWorker(PoolHost& host, std::string profile, std::uint32_t instance);
    ~PoolWorker();
    PoolWorker(const PoolWorker&) = delete;
    PoolWorker& operator=(const PoolWorker&) = delete;

    // Spawns the worker now (used for the first start and by the restart timer).
    void start() noexcept;
    // The worker's process was reaped with this wait status.
    void exited(int status) noexcept;
    // No more restarts; the running process is sent SIGTERM (SIGKILL with force).
    void stop(bool force) noexcept;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
    [[nodiscard]] const std::string& profile() const noexcept { return profile_; }
    [[nodiscard]] std::uint32_t instance() const noexcept { return instance_; }
    [[nodiscard]] bool stopping() const noexcept { return stopping_; }

  private:
    // Forwards what the worker writes to stdout and stderr, one log line per line it writes.
    struct Output final : EventHandler {
        PoolWorker* owner = nullptr;
        unique_fd fd;
        std::string prefix;
        std::string pending;
        void on_event(std::uint32_t events) noexcept override;
        void emit(std::string_view line) const noexcept;
        void close() noexcept;
    };
    struct RestartTimer final : EventHandler {
        PoolWorker* owner = nullptr;
        unique_fd fd;
        void on_event(std::uint32_t) noexcept override;
    };

    // An exited worker's supervisor and the policy its profile reference points into: the supervisor
    // goes first.
    struct Retired {
        Retired(std::unique_ptr<SeccompMonitor> s, std::shared_ptr<const policy::Policy> p)
            : supervisor(std::move(s)), policy(std::move(p)) {}
        ~Retired() { supervisor.reset(); }
        Retired(const Retired&) = delete;
        Retired& operator=(const Retired&) = delete;
        std::unique_ptr<SeccompMonitor> supervisor;
        std::shared_ptr<const policy::Policy> policy;
    };

    void schedule_restart(bool failed) noexcept;
    void arm_timer(std::chrono::milliseconds delay) noexcept;

    PoolHost& host_;
    std::string profile_;
    std::uint32_t instance_;
    pid_t pid_ = -1;
    unique_fd pidfd_;
    std::shared_ptr<const policy::Policy> spawned_with_;  // keeps the supervisor's profile alive
    std::unique_ptr<SeccompMonitor> supervisor_;
    Output output_;
    RestartTimer timer_;
    std::chrono::milliseconds backoff_;
    std::chrono::steady_clock::time_point started_at_;
    std::string cgroup_;            // the running worker's cgroup (Containment::cgroup_for), if any
    std::uint32_t generation_ = 0;  // starts so far: each run gets a cgroup of its own
    bool stopping_ = false;
};

}  // namespace fdbroker::broker
