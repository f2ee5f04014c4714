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
        // timeout, ECANCELED when cancelled. `socket` is the socket, as it was handed in.
        virtual void connect_done(int error, unique_fd socket) noexcept = 0;

      protected:
        ~Waiter() = default;
    };

    PendingConnect(EventLoop& loop, unique_fd socket, Waiter& waiter) noexcept;
    ~PendingConnect();
    PendingConnect(const PendingConnect&) = delete;
    PendingConnect& operator=(const PendingConnect&) = delete;

    // Starts watching; false (errno set) if the socket or its timer cannot be watched.
    bool start(std::chrono::milliseconds timeout) noexcept;
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

    void finish(int error) noexcept;
    void unwatch() noexcept;

    EventLoop& loop_;
    unique_fd socket_;
    Waiter& waiter_;
    unique_fd timer_fd_;
    Timer timer_;
    bool watched_ = false;
    bool finished_ = false;
};

}  // namespace fdbroker::broker
