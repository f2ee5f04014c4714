// What each user's processes hold of the broker at once, against the quota of the profile that serves
// them (policy/quota.hpp). One account per uid, shared by every broker (profile) of this process, so a
// user cannot multiply its share by being served under several profiles.
//
// Over a quota, what the kernel would do happens: an attach or a serve-mode connection is refused
// with EMFILE, a connect with EAGAIN; and for requests and descriptors, back-pressure: the channels of
// that user are not read until it is back under its quota (Waiter), so nothing else waits for it. Each
// episode of a user over a quota is logged once.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "broker/core/event_loop.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/quota.hpp"

namespace fdbroker::broker {

enum class Resource : std::uint8_t { channels, connects, requests, descriptors };

// Something that stopped reading requests because of a quota.
class Waiter {
  public:
    // Called when it may be able to go on: true if it reads again.
    virtual bool resume() noexcept = 0;

  protected:
    ~Waiter() = default;
};

class Tenants final : public EventHandler {
  public:
    // `descriptor_budget`: the broker's RLIMIT_NOFILE, from which the default limits are derived.
    Tenants(EventLoop& loop, std::uint64_t descriptor_budget);
    ~Tenants();
    Tenants(const Tenants&) = delete;
    Tenants& operator=(const Tenants&) = delete;

    [[nodiscard]] policy::QuotaLimits limits(const policy::Quota& quota) const noexcept {
        return policy::resolve(quota, defaults_);
    }

    // Takes one of `resource` for `uid`; false when that would exceed `limits` (then logged once).
    bool take(uid_t uid, Resource resource, const policy::QuotaLimits& limits, const char* profile) noexcept;
    void give_back(uid_t uid, Resource resource, std::uint32_t count = 1) noexcept;
    // Whether `uid` may start another request now: under its `requests` quota and its rate (a request
    // admitted takes a token and counts as in flight until given back).
    bool admit(uid_t uid, const policy::QuotaLimits& limits, const char* profile) noexcept;

    // How many descriptors one channel of `uid` may have sent and not yet had received: an equal share
    // of its `descriptors` quota among its open channels (at least 1, at most `most`), so that all its
    // channels together stay within the quota.
    [[nodiscard]] std::uint32_t descriptor_share(uid_t uid, const policy::QuotaLimits& limits,
                                                 std::uint32_t most) noexcept;
    // A channel of `uid` stopped being read because its share is full: logged once per episode.
    void note_unreceived(uid_t uid, const policy::QuotaLimits& limits, const char* profile) noexcept;

    // A waiter is asked to resume every few milliseconds until it does, or until it is forgotten.
    void wait(Waiter& waiter) noexcept;
    void forget(Waiter& waiter) noexcept;
    void on_event(std::uint32_t events) noexcept override;  // the retry timer

  private:
    struct Account {
        std::array<std::uint32_t, 4> used{};
        std::array<bool, 4> over{};  // logged for the current episode
        bool rate_over = false;
        double tokens = 0;
        std::chrono::steady_clock::time_point refilled{};
    };
    // The account of `uid`, made on first use (accounts are never removed, so the pointer stays valid):
    // the last one found is remembered, since a broker mostly serves one user request after request.
    Account& account(uid_t uid);
    bool within_rate(Account& account, uid_t uid, const policy::QuotaLimits& limits,
                     const char* profile) noexcept;
    void arm(bool on) noexcept;

    EventLoop& loop_;
    policy::QuotaLimits defaults_;
    std::unordered_map<uid_t, Account> accounts_;
    uid_t last_uid_ = 0;
    Account* last_ = nullptr;
    std::vector<Waiter*> waiting_;
    unique_fd timer_;
    bool armed_ = false;
};

}  // namespace fdbroker::broker
