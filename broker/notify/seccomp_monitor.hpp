// Watches a worker's seccomp listener: every call its filter refuses arrives here, is named in the
// log, and is answered by the profile's `on_violation` (kill the process, or EPERM). Opens for
// writing are answered EACCES quietly, and execs after the first EACCES (exec-once).
#pragma once

#include <sys/types.h>

#include <string>

#include "broker/core/event_loop.hpp"
#include "broker/core/tenants.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {
class Transparent;
}

struct seccomp_notif;
struct seccomp_notif_resp;

namespace fdbroker::broker {

// Transparent mode: `transparent` answers the path and socket calls, and the worker's user (`uid`) is
// held to its quota of requests in flight and its rate in `tenants`.
struct Transparency {
    Transparent* transparent = nullptr;
    Tenants* tenants = nullptr;
    uid_t uid = 0;
};

class SeccompMonitor final : public EventHandler, public Waiter {
  public:
    SeccompMonitor(EventLoop& loop, unique_fd notify, const policy::Profile& profile, pid_t worker,
                   Transparency transparency = {});
    ~SeccompMonitor();
    SeccompMonitor(const SeccompMonitor&) = delete;
    SeccompMonitor& operator=(const SeccompMonitor&) = delete;

    bool start() noexcept;
    // Stops watching the listener (its worker has exited). The object must still outlive the current
    // loop turn, which may hold an event for it; events that arrive for it are ignored.
    void stop() noexcept;
    void on_event(std::uint32_t events) noexcept override;
    // A transparent listener's calls take the worker's file-system identity and leave it for the next.
    [[nodiscard]] bool keeps_worker_identity() const noexcept override { return transparent_ != nullptr; }
    bool resume() noexcept override;  // Waiter: its user was over its quota

    // Set when the worker itself was killed for a violation: fdbroker then exits 159 (128 + SIGSYS),
    // the status a seccomp kill gives.
    [[nodiscard]] bool killed_worker() const noexcept { return killed_worker_; }

  private:
    void receive() noexcept;
    void answer(seccomp_notif& req) noexcept;
    void answer_foreign(const seccomp_notif& req) noexcept;
    void kill_process_of(pid_t tid, std::uint64_t id) noexcept;

    EventLoop& loop_;
    unique_fd notify_;
    const policy::Profile& profile_;
    pid_t worker_;
    Transparent* transparent_;
    Tenants* tenants_;
    uid_t uid_;
    policy::QuotaLimits limits_{};
    bool paused_ = false;
    bool killed_worker_ = false;
    seccomp_notif* req_ = nullptr;
    seccomp_notif_resp* resp_ = nullptr;
};

}  // namespace fdbroker::broker
