#include "broker/event_loop.hpp"

#include <sys/epoll.h>

#include <cerrno>

namespace fdbroker::broker {

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

bool EventLoop::add(int fd, std::uint32_t events, EventHandler* handler) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::modify(int fd, std::uint32_t events, EventHandler* handler) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = handler;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) noexcept {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

bool EventLoop::turn(int timeout_ms) noexcept {
    epoll_event events[64];
    const int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
    if (n < 0) return errno == EINTR;
    for (int i = 0; i < n; ++i)
        static_cast<EventHandler*>(events[i].data.ptr)->on_event(events[i].events);
    return true;
}

}  // namespace fdbroker::broker
