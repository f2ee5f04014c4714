// A thin epoll wrapper: handlers are registered with the fd they watch and called per event.
#pragma once

#include <cstdint>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

class EventHandler {
  public:
    virtual void on_event(std::uint32_t events) noexcept = 0;

  protected:
    ~EventHandler() = default;
};

class EventLoop {
  public:
    EventLoop();  // aborts the broker (via errno log) only if epoll itself is unavailable
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(epoll_); }

    bool add(int fd, std::uint32_t events, EventHandler* handler) noexcept;
    bool modify(int fd, std::uint32_t events, EventHandler* handler) noexcept;
    void remove(int fd) noexcept;
    // Waits up to timeout_ms (-1: forever) and dispatches what is ready. False on a fatal error.
    bool turn(int timeout_ms) noexcept;

  private:
    unique_fd epoll_;
};

}  // namespace fdbroker::broker
