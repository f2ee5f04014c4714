#include "broker/pending_connect.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <utility>

#include "broker/broker.hpp"
#include "broker/socket_ops.hpp"

namespace fdbroker::broker {

PendingConnect::PendingConnect(Broker& broker, Request request, unique_fd socket) noexcept
    : broker_(&broker), request_(std::move(request)), socket_(std::move(socket)) {
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
    if (::timerfd_settime(timer_fd_.get(), 0, &when, nullptr) != 0) return false;
    EventLoop& loop = broker_->loop();
    if (!loop.add(socket_.get(), EPOLLOUT, this)) return false;
    if (!loop.add(timer_fd_.get(), EPOLLIN, &timer_)) {
        const int saved = errno;
        loop.remove(socket_.get());
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
    if (!finished_) finish(ECANCELED);
}

void PendingConnect::finish(int error) noexcept {
    if (finished_) return;
    finished_ = true;
    unwatch();
    if (error == 0) error = SocketOps::make_blocking(socket_.get());
    if (error != 0) socket_.reset();
    broker_->connect_finished(*this, error, socket_);
    socket_.reset();
    timer_fd_.reset();
}

void PendingConnect::unwatch() noexcept {
    if (!watched_) return;
    watched_ = false;
    broker_->loop().remove(socket_.get());
    broker_->loop().remove(timer_fd_.get());
}

}  // namespace fdbroker::broker
