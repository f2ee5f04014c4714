#include "broker/ops/pending_connect.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <utility>

#include "broker/ops/socket_ops.hpp"

namespace fdbroker::broker {

PendingConnect::PendingConnect(EventLoop& loop, unique_fd socket, Waiter& waiter) noexcept
    : loop_(loop), socket_(std::move(socket)), waiter_(waiter) {
    timer_.owner = this;
}

PendingConnect::~PendingConnect() {
    unwatch();
}

bool PendingConnect::start(std::chrono::milliseconds timeout) noexcept {
    timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!timer_fd_) return false;
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    when.it_value.tv_nsec = static_cast<long>(timeout.count() % 1000) * 1'000'000L;
    // A zero it_value would disarm the timer: a timeout of 0 fires at once instead.
    if (when.it_value.tv_sec == 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
    if (::timerfd_settime(timer_fd_.get(), 0, &when, nullptr) != 0) return false;
    if (!loop_.add(socket_.get(), EPOLLOUT, this)) return false;
    if (!loop_.add(timer_fd_.get(), EPOLLIN, &timer_)) {
        const int saved = errno;
        loop_.remove(socket_.get());
        errno = saved;
        return false;
    }
    watched_ = true;
    return true;
}

void PendingConnect::on_event(std::uint32_t) noexcept {
    // Both the socket and the timer may be ready in one loop turn: whichever comes second finds it done.
    if (finished_) return;
    const int outcome = SocketOps::connect_outcome(socket_.get());
    if (outcome == EINPROGRESS) return;
    finish(outcome);
}

void PendingConnect::cancel() noexcept {
    finish(ECANCELED);
}

void PendingConnect::finish(int error) noexcept {
    if (finished_) return;
    finished_ = true;
    unwatch();
    timer_fd_.reset();
    waiter_.connect_done(error, std::move(socket_));
}

void PendingConnect::unwatch() noexcept {
    if (!watched_) return;
    watched_ = false;
    loop_.remove(socket_.get());
    loop_.remove(timer_fd_.get());
}

}  // namespace fdbroker::broker
