// A TCP connect still in progress. The broker never waits for the network: the connecting socket is
// watched by the event loop (writable = finished) next to a timerfd armed with the profile's
// connect_timeout, and the worker's request is answered from whichever fires first. A pending connect
// belongs to the session that asked for it: it lives in that session's broker (and moves with the
// session when a reload hands it to another), which cancels it if the session ends first.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "broker/event_loop.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"
#include "proto/channel.hpp"

namespace fdbroker::broker {

class Broker;
class Session;

class PendingConnect final : public EventHandler {
  public:
    // What the eventual reply and audit line need; the address is copied, since the request it came in
    // is gone once the broker returns to its loop. The connect was judged by `profile`, whose rule
    // allowed it: `policy` keeps both alive whatever reloads replace meanwhile.
    struct Request {
        Session* session = nullptr;
        proto::Credentials sender{};
        std::uint32_t id = 0;
        std::shared_ptr<const policy::Policy> policy;
        const policy::Profile* profile = nullptr;
        const policy::AddressRule* rule = nullptr;
        std::string address;
    };

    PendingConnect(Broker& broker, Request request, unique_fd socket) noexcept;
    ~PendingConnect();
    PendingConnect(const PendingConnect&) = delete;
    PendingConnect& operator=(const PendingConnect&) = delete;

    // Starts watching; false (errno set) if the socket or its timer cannot be watched.
    bool start(std::chrono::milliseconds timeout) noexcept;
    // The socket is writable or failed.
    void on_event(std::uint32_t events) noexcept override;
    // Ends it unanswered (its session has gone), for the audit stream: ECANCELED.
    void cancel() noexcept;
    // From now on it reports to `broker`, which its session was handed to (Broker::hand_over).
    void move_to(Broker& broker) noexcept { broker_ = &broker; }

    [[nodiscard]] bool finished() const noexcept { return finished_; }
    [[nodiscard]] const Request& request() const noexcept { return request_; }

  private:
    struct Timer final : EventHandler {
        PendingConnect* owner = nullptr;
        void on_event(std::uint32_t) noexcept override { owner->finish(ETIMEDOUT); }
    };

    void finish(int error) noexcept;
    void unwatch() noexcept;

    Broker* broker_;
    Request request_;
    unique_fd socket_;
    unique_fd timer_fd_;
    Timer timer_;
    bool watched_ = false;
    bool finished_ = false;
};

}  // namespace fdbroker::broker
