#include "broker/core/tenants.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>

#include "broker/core/log.hpp"

namespace fdbroker::broker {

namespace {

using Clock = std::chrono::steady_clock;
// How often waiters are asked again. Only users over a quota ever wait, so only they see this delay.
constexpr long kRetryNs = 5'000'000;

const char* resource_name(Resource r) noexcept {
    switch (r) {
        case Resource::channels:
            return "channels";
        case Resource::connects:
            return "connects";
        case Resource::requests:
            return "requests";
        case Resource::descriptors:
            return "descriptors";
    }
    return "?";
}

std::uint32_t limit_of(const policy::QuotaLimits& limits, Resource r) noexcept {
    switch (r) {
        case Resource::channels:
            return limits.channels;
        case Resource::connects:
            return limits.connects;
        case Resource::requests:
            return limits.requests;
        case Resource::descriptors:
            return limits.descriptors;
    }
    return 0;
}

LogLimit over_quota("a user over its quota");

}  // namespace

Tenants::Tenants(EventLoop& loop, std::uint64_t descriptor_budget)
    : loop_(loop),
      defaults_(policy::quota_defaults(descriptor_budget)),
      timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
    if (timer_) loop_.add(timer_.get(), EPOLLIN, this);
}

Tenants::~Tenants() {
    if (timer_) loop_.remove(timer_.get());
}

bool Tenants::take(uid_t uid, Resource resource, const policy::QuotaLimits& limits,
                   const char* profile) noexcept {
    try {
        Account& a = account(uid);
        const auto i = static_cast<std::size_t>(resource);
        if (a.used[i] < limit_of(limits, resource)) {
            ++a.used[i];
            return true;
        }
        if (!a.over[i]) {
            a.over[i] = true;
            log_limited(over_quota, "uid %u (profile '%s') reached its quota of %u %s: %s",
                        static_cast<unsigned>(uid), profile, limit_of(limits, resource),
                        resource_name(resource),
                        resource == Resource::channels   ? "further ones are refused with EMFILE"
                        : resource == Resource::connects ? "further ones fail with EAGAIN"
                                                         : "its requests wait");
        }
        return false;
    } catch (const std::bad_alloc&) {
        return false;
    }
}

void Tenants::give_back(uid_t uid, Resource resource, std::uint32_t count) noexcept {
    Account* found = last_ != nullptr && last_uid_ == uid ? last_ : nullptr;
    if (found == nullptr) {
        const auto it = accounts_.find(uid);
        if (it == accounts_.end()) return;
        found = &it->second;
    }
    Account& a = *found;
    const auto i = static_cast<std::size_t>(resource);
    a.used[i] -= std::min(a.used[i], count);
    // A new episode over the quota is logged again once the user holds none of it (for descriptors in
    // flight, which are not counted here: once it holds no channel).
    if (a.used[i] == 0) a.over[i] = false;
    if (resource == Resource::channels && a.used[i] == 0)
        a.over[static_cast<std::size_t>(Resource::descriptors)] = false;
}

bool Tenants::admit(uid_t uid, const policy::QuotaLimits& limits, const char* profile) noexcept {
    try {
        Account& a = account(uid);
        constexpr auto requests = static_cast<std::size_t>(Resource::requests);
        if (a.used[requests] >= limits.requests) {
            if (!a.over[requests]) {
                a.over[requests] = true;
                log_limited(over_quota,
                            "uid %u (profile '%s') has %u requests in flight (quota %u): the next ones wait",
                            static_cast<unsigned>(uid), profile, a.used[requests], limits.requests);
            }
            return false;
        }
        if (!within_rate(a, uid, limits, profile)) return false;
        ++a.used[requests];
        return true;
    } catch (const std::bad_alloc&) {
        return false;
    }
}

std::uint32_t Tenants::descriptor_share(uid_t uid, const policy::QuotaLimits& limits,
                                        std::uint32_t most) noexcept {
    try {
        const std::uint32_t channels =
            std::max<std::uint32_t>(1, account(uid).used[static_cast<std::size_t>(Resource::channels)]);
        return std::clamp<std::uint32_t>(limits.descriptors / channels, 1, most);
    } catch (const std::bad_alloc&) {
        return 1;
    }
}

void Tenants::note_unreceived(uid_t uid, const policy::QuotaLimits& limits, const char* profile) noexcept {
    try {
        Account& a = account(uid);
        constexpr auto descriptors = static_cast<std::size_t>(Resource::descriptors);
        if (a.over[descriptors]) return;
        a.over[descriptors] = true;
        log_limited(
            over_quota,
            "uid %u (profile '%s') left descriptors unreceived (quota %u among its channels): the channels "
            "holding them are not read until its processes take them",
            static_cast<unsigned>(uid), profile, limits.descriptors);
    } catch (const std::bad_alloc&) {
    }
}

bool Tenants::within_rate(Account& a, uid_t uid, const policy::QuotaLimits& limits,
                          const char* profile) noexcept {
    if (limits.rate == 0) return true;
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - a.refilled).count();
    a.refilled = now;
    a.tokens = std::min<double>(limits.rate, a.tokens + elapsed * limits.rate);
    if (a.tokens >= 1) {
        a.tokens -= 1;
        a.rate_over = false;
        return true;
    }
    if (!a.rate_over) {
        a.rate_over = true;
        log_limited(over_quota,
                    "uid %u (profile '%s') reached its rate of %u requests a second: its requests wait",
                    static_cast<unsigned>(uid), profile, limits.rate);
    }
    return false;
}

Tenants::Account& Tenants::account(uid_t uid) {
    if (last_ == nullptr || last_uid_ != uid) {
        last_ = &accounts_[uid];
        last_uid_ = uid;
    }
    return *last_;
}

void Tenants::wait(Waiter& waiter) noexcept {
    try {
        if (std::find(waiting_.begin(), waiting_.end(), &waiter) == waiting_.end())
            waiting_.push_back(&waiter);
        arm(true);
    } catch (const std::bad_alloc&) {
        // Not remembered: it stays paused until its channel ends. Only a user over its quota can get here.
    }
}

void Tenants::forget(Waiter& waiter) noexcept {
    std::erase(waiting_, &waiter);
    if (waiting_.empty()) arm(false);
}

void Tenants::on_event(std::uint32_t) noexcept {
    std::uint64_t expirations = 0;
    [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof expirations);
    // resume() may make a waiter wait again or forget another: work on a copy.
    const std::vector<Waiter*> now = waiting_;
    for (Waiter* w : now)
        if (std::find(waiting_.begin(), waiting_.end(), w) != waiting_.end() && w->resume())
            std::erase(waiting_, w);
    if (waiting_.empty()) arm(false);
}

void Tenants::arm(bool on) noexcept {
    if (!timer_ || armed_ == on) return;
    itimerspec spec{};
    if (on) spec.it_value.tv_nsec = spec.it_interval.tv_nsec = kRetryNs;
    armed_ = ::timerfd_settime(timer_.get(), 0, &spec, nullptr) == 0 && on;
}

}  // namespace fdbroker::broker
