// A TCP connect still in progress. The broker never waits for the network: the connecting socket is
// watched by the event loop (writable = finished) next to a timerfd armed with the profile's
// connect_timeout, and whoever waits for it (a library-mode request, a transparent-mode notification)
// is told once, from the loop, by whichever fires first. Both modes use this one mechanism; each keeps
// what its answer needs in its Waiter.
#pragma once

#include <chrono>
#include <cstdint>

#include "broker/core/event_loop.hpp"
#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

class PendingConnect final : public EventHandler {
  public:
    class Waiter {
      public:
        // The connect ended: 0 when connected, the connect's errno when it failed, ETIMEDOUT after the
        // timeout, ECANCELED when cancelled, EINTR when interrupted (below). `socket` is the socket, as it
        // was handed in.
        virtual void connect_done(int error, unique_fd socket) noexcept = 0;
        // Asked periodically while the connect is in progress, when start() was given a period: true
        // ends the wait now with EINTR (the socket goes on connecting, as after an interrupted
        // connect(2)).
        [[nodiscard]] virtual bool interrupted() noexcept { return false; }

      protected:
        ~Waiter() = default;
    };

    PendingConnect(EventLoop& loop, unique_fd socket, Waiter& waiter) noexcept;
    ~PendingConnect();
    PendingConnect(const PendingConnect&) = delete;
    PendingConnect& operator=(const PendingConnect&) = delete;

    // Starts watching; false (errno set) if the socket or its timers cannot be watched. With a
    // `check_every` period, the waiter is asked that often whether it was interrupted.
    bool start(std::chrono::milliseconds timeout,
               std::chrono::milliseconds check_every = std::chrono::milliseconds::zero()) noexcept;
    // The socket is writable or failed.
    void on_event(std::uint32_t events) noexcept override;
    // Ends it now with ECANCELED (whoever waited has gone).
    void cancel() noexcept;
    [[nodiscard]] bool finished() const noexcept { return finished_; }

  private:
    struct Timer final : EventHandler {
        PendingConnect* owner = nullptr;
        void on_event(std::uint32_t) noexcept override { owner->finish(ETIMEDOUT); }
    };
    struct Check final : EventHandler {
        PendingConnect* owner = nullptr;
        void on_event(std::uint32_t) noexcept override { owner->check(); }
    };

    bool watch_checks(std::chrono::milliseconds every) noexcept;
    void check() noexcept;
    void finish(int error) noexcept;
    void unwatch() noexcept;

    EventLoop& loop_;
    unique_fd socket_;
    Waiter& waiter_;
    unique_fd timer_fd_;
    Timer timer_;
    unique_fd check_fd_;  // periodic, when the waiter may be interrupted
    Check check_;
    bool watched_ = false;
    bool finished_ = false;
};

}  // namespace fdbroker::broker
