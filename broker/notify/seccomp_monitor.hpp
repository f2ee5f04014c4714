// Watches a worker's seccomp listener: every call its filter does not allow arrives here and is
// answered as the default preset says (sandbox/syscall_preset.hpp), each answer recorded in the audit
// stream. Quiet refusals (opening for writing, sockets, changing files by path) get EACCES, and execs
// after the first EACCES (exec-once); harmless calls get their errno and one log line per call; fatal
// calls, and calls the profile's `syscalls.deny` names, are named in the log and answered by the
// profile's `on_violation` (kill the process, or EPERM).
#pragma once

#include <sys/types.h>

#include <bitset>
#include <string>
#include <string_view>

#include "broker/core/event_loop.hpp"
#include "broker/core/recorder.hpp"
#include "broker/core/tenants.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {
class Audit;
class Transparent;
}  // namespace fdbroker::broker

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

// Complain mode (`fdbroker learn`): a later exec, and a harmless call outside the preset, go through
// (SECCOMP_USER_NOTIF_FLAG_CONTINUE, a decision taken on the call's number alone, never on the
// caller's memory), and each is handed to `recorder` as the refusal it would have been. Fatal calls
// stay fatal.
struct Complain {
    Recorder* recorder = nullptr;
};

class SeccompMonitor final : public EventHandler, public Waiter {
  public:
    SeccompMonitor(EventLoop& loop, unique_fd notify, const policy::Profile& profile, pid_t worker,
                   Audit& audit, Transparency transparency = {}, Complain complain = {});
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
    // System call numbers below this are logged once each (x86-64 has about 460).
    static constexpr std::size_t kCallSlots = 1024;
    enum class Killed : std::uint8_t { none, worker, other };

    void receive() noexcept;
    void answer(seccomp_notif& req) noexcept;
    int judge(const seccomp_notif& req, std::string_view call) noexcept;
    int refuse_terminal_ioctl(const seccomp_notif& req) noexcept;
    int violation(const seccomp_notif& req, std::string_view call, bool denied) noexcept;
    void answer_foreign(const seccomp_notif& req) noexcept;
    Killed kill_process_of(pid_t tid, std::uint64_t id) noexcept;
    static bool first_time(int nr, std::bitset<kCallSlots>& logged) noexcept;
    void record(const seccomp_notif& req, std::string_view call, int error, bool killed) noexcept;
    // Complain mode: records the refusal the call would have been and lets it through.
    bool let_through(const seccomp_notif& req, std::string_view call, int error) noexcept;

    EventLoop& loop_;
    unique_fd notify_;
    const policy::Profile& profile_;
    pid_t worker_;
    Audit& audit_;
    Transparent* transparent_;
    Tenants* tenants_;
    uid_t uid_;
    Recorder* recorder_;
    policy::QuotaLimits limits_{};
    bool paused_ = false;
    bool killed_worker_ = false;
    std::bitset<kCallSlots> logged_refusals_;    // calls refused with an errno, logged once each
    std::bitset<kCallSlots> logged_violations_;  // under on_violation = "errno"
    std::bitset<8> logged_terminal_ioctls_;      // by their place in sandbox::refused_terminal_ioctls
    seccomp_notif* req_ = nullptr;
    seccomp_notif_resp* resp_ = nullptr;
};

}  // namespace fdbroker::broker
