#include "broker/ops/pending_connect.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "broker/ops/socket_ops.hpp"

namespace fdbroker::broker {

PendingConnect::PendingConnect(EventLoop& loop, unique_fd socket, Waiter& waiter) noexcept
    : loop_(loop), socket_(std::move(socket)), waiter_(waiter) {
    timer_.owner = this;
    check_.owner = this;
}

PendingConnect::~PendingConnect() {
    unwatch();
}

bool PendingConnect::start(std::chrono::milliseconds timeout,
                           std::chrono::milliseconds check_every) noexcept {
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
    if (check_every.count() > 0 && !watch_checks(check_every)) {
        const int saved = errno;
        unwatch();
        errno = saved;
        return false;
    }
    return true;
}

bool PendingConnect::watch_checks(std::chrono::milliseconds every) noexcept {
    check_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!check_fd_) return false;
    itimerspec when{};
    when.it_interval.tv_sec = static_cast<time_t>(every.count() / 1000);
    when.it_interval.tv_nsec = static_cast<long>(every.count() % 1000) * 1'000'000L;
    when.it_value = when.it_interval;
    return ::timerfd_settime(check_fd_.get(), 0, &when, nullptr) == 0 &&
           loop_.add(check_fd_.get(), EPOLLIN, &check_);
}

void PendingConnect::check() noexcept {
    if (finished_) return;  // ended earlier in this loop turn
    std::uint64_t expirations = 0;
    [[maybe_unused]] const ssize_t n = ::read(check_fd_.get(), &expirations, sizeof expirations);
    if (waiter_.interrupted()) finish(EINTR);
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
    check_fd_.reset();
    waiter_.connect_done(error, std::move(socket_));
}

void PendingConnect::unwatch() noexcept {
    if (!watched_) return;
    watched_ = false;
    loop_.remove(socket_.get());
    loop_.remove(timer_fd_.get());
    if (check_fd_) loop_.remove(check_fd_.get());
}

}  // namespace fdbroker::broker
