#include "broker/core/event_loop.hpp"

#include <sched.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>

#include "broker/core/log.hpp"
#include "broker/core/worker_identity.hpp"

namespace fdbroker::broker {

namespace {

constexpr std::chrono::milliseconds kTick{10};
// Ticks the same section must be seen at before the loop is handed over: 20 to 30 ms stuck.
constexpr int kStallTicks = 2;
// Watchdog ticks without a blocking section after which it sleeps until the next one begins.
constexpr int kIdleTicksBeforeParking = 100;

// The loop this thread is running (its mutex held, except inside waits and blocking sections), the
// thread's slot, and how deep in blocking sections it is.
thread_local EventLoop* running = nullptr;
thread_local std::size_t thread_slot = 0;
thread_local int section_depth = 0;

}  // namespace

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    // The umask the broker runs with, for helper threads: the thread they relieve may be stuck in a
    // creation that set its own.
    base_umask_ = ::umask(0);
    ::umask(base_umask_);
}

EventLoop::~EventLoop() {
    if (watchdog_.joinable()) {
        {
            const std::lock_guard guard(watchdog_mutex_);
            stopping_ = true;
        }
        watchdog_wake_.notify_all();
        watchdog_.join();
    }
}

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

bool EventLoop::run(Hooks hooks) {
    std::unique_lock lock(mutex_);
    // Once every helper has gone, the loop may be run again: for more turns with other hooks.
    if (threads_.load() == 1) finished_ = false;
    hooks_ = std::move(hooks);
    origin_ = owner_ = std::this_thread::get_id();
    thread_slot = 0;
    owner_slot_ = 0;
    running = this;
    const bool ok = drive(lock, /*helper=*/false);
    running = nullptr;
    thread_identity::as_broker();  // what follows the loop (ending the worker's tree) is the broker's
    // A helper still stuck in a blocking section would wake into a loop that no longer exists.
    if (threads_.load() > 1 && hooks_.abandon) hooks_.abandon();
    return ok;
}

// The loop itself, on the thread that called run() or on a helper. Returns when the loop is finished,
// or, on a helper, when it no longer runs the loop.
bool EventLoop::drive(std::unique_lock<std::mutex>& lock, bool helper) {
    const std::thread::id me = std::this_thread::get_id();
    for (;;) {
        if (finished_) return result_;
        if (owner_ != me) {
            if (helper) return true;
            // Back from a stall: a helper runs the loop and hands it back at the end of its turn.
            origin_waiting_ = true;
            handed_back_.wait(lock, [&] { return owner_ == std::thread::id() || finished_; });
            origin_waiting_ = false;
            if (finished_) return result_;
            owner_ = me;
            owner_slot_ = thread_slot;
        }
        const bool ok = turn(lock);
        if (owner_ != me) continue;  // stuck during the turn: someone else ran the loop meanwhile
        if (!ok || hooks_.end_of_turn()) {
            finished_ = true;
            result_ = ok;
            handed_back_.notify_all();
            // The thread that called run() is stuck: nobody would return from run() for now.
            if (helper && !origin_waiting_ && hooks_.abandon) {
                thread_identity::as_broker();
                hooks_.abandon();
            }
            return result_;
        }
        if (helper && origin_waiting_) {
            owner_ = std::thread::id();
            handed_back_.notify_all();
            return true;
        }
    }
}

bool EventLoop::turn(std::unique_lock<std::mutex>& lock) {
    std::array<epoll_event, 64> events;
    const int timeout = hooks_.timeout();
    lock.unlock();
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
    const int saved = errno;
    lock.lock();
    if (n < 0) {
        errno = saved;
        return saved == EINTR;
    }
    ++turn_;
    const std::thread::id me = std::this_thread::get_id();
    // A handler may get stuck and lose the loop: the events after it are then left to the new owner,
    // which epoll reports them to again (every registration is level-triggered).
    for (int i = 0; i < n && owner_ == me; ++i) {
        auto* handler = static_cast<EventHandler*>(events[static_cast<std::size_t>(i)].data.ptr);
        if (!handler->keeps_worker_identity()) thread_identity::as_broker();
        handler->on_event(events[static_cast<std::size_t>(i)].events);
    }
    if (owner_ != me) return true;
    if (!closing_.empty()) {
        std::vector<unique_fd> batch;
        batch.swap(closing_);
        blocking([&] { batch.clear(); });
        if (owner_ != me) return true;
        if (closing_.empty()) closing_.swap(batch);  // keeps the capacity: no allocation per turn
    }
    free_retired();
    return true;
}

void EventLoop::free_retired() noexcept {
    if (retired_.empty()) return;
    thread_identity::as_broker();  // a destructor may signal or close what only the broker may
    // A section that began in turn S may use what was retired in any turn T >= S.
    std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
    for (const std::uint64_t t : section_turn_)
        if (t != 0) oldest = std::min(oldest, t);
    std::erase_if(retired_, [oldest](const Retired& r) { return r.turn < oldest; });
}

EventLoop::Section::Section(EventLoop& loop) noexcept : loop_(loop) {
    if (running != &loop_ || section_depth++ > 0) return;
    const std::size_t s = thread_slot;
    loop_.section_turn_[s] = loop_.turn_;
    // A number for this section rather than a time: the watchdog only needs to see the same section
    // still there tick after tick, and reading the clock on every request costs more.
    // (Every section begins with the loop's mutex held, so a load and a store do: no atomic
    // read-modify-write on the way of every request.)
    const std::uint64_t number = loop_.sections_.load(std::memory_order_relaxed) + 1;
    loop_.sections_.store(number, std::memory_order_relaxed);
    loop_.blocked_section_[s].store(number, std::memory_order_relaxed);
    if (loop_.watchdog_armed_) loop_.launch_watchdog();
    if (loop_.watchdog_parked_.load(std::memory_order_relaxed)) {
        {
            const std::lock_guard guard(loop_.watchdog_mutex_);
            loop_.watchdog_parked_ = false;
        }
        loop_.watchdog_wake_.notify_one();
    }
    loop_.mutex_.unlock();
}

EventLoop::Section::~Section() {
    if (running != &loop_ || --section_depth > 0) return;
    loop_.mutex_.lock();
    const std::size_t s = thread_slot;
    loop_.blocked_section_[s].store(0, std::memory_order_relaxed);
    loop_.section_turn_[s] = 0;
}

EventLoop::Relock::Relock(EventLoop& loop) noexcept : loop_(loop) {
    if (running != &loop_ || section_depth == 0) return;
    loop_.mutex_.lock();
    relocked_ = true;
}

EventLoop::Relock::~Relock() {
    if (relocked_) loop_.mutex_.unlock();
}

void EventLoop::start_watchdog() noexcept {
    watchdog_armed_ = true;
}

// In the first blocking section, with the loop held (so by one thread only).
void EventLoop::launch_watchdog() noexcept {
    watchdog_armed_ = false;
    try {
        watchdog_ = std::thread([this] { watch(); });
    } catch (const std::system_error&) {
        log("cannot start the watchdog thread: a stuck file system would stall the broker");
    }
}

void EventLoop::watch() noexcept {
    std::unique_lock lock(watchdog_mutex_);
    std::uint64_t seen = sections_.load();
    std::uint64_t watched = 0;  // the owner's section at the last tick, if any
    int ticks = 0;              // ... and for how many ticks it has been there
    int idle = 0;
    while (!stopping_) {
        if (watchdog_parked_) {
            watchdog_wake_.wait(lock, [&] { return stopping_ || !watchdog_parked_; });
            continue;
        }
        watchdog_wake_.wait_for(lock, kTick);
        if (stopping_) break;
        const std::uint64_t blocked = blocked_section_[owner_slot_.load()].load(std::memory_order_relaxed);
        ticks = blocked != 0 && blocked == watched ? ticks + 1 : 0;
        watched = blocked;
        if (ticks >= kStallTicks) {
            ticks = 0;
            lock.unlock();
            take_over();
            lock.lock();
            continue;
        }
        const std::uint64_t count = sections_.load();
        idle = (count == seen && blocked == 0) ? idle + 1 : 0;
        seen = count;
        if (idle >= kIdleTicksBeforeParking) {
            watchdog_parked_ = true;
            idle = 0;
        }
    }
}

// Starts a helper thread for the loop whose owner is stuck in a blocking section.
void EventLoop::take_over() noexcept {
    static LogLimit full("every broker thread is waiting for a file system");
    std::unique_lock lock(mutex_, std::try_to_lock);
    // The owner holds the mutex only outside blocking sections: if it is held, the owner came back.
    if (!lock.owns_lock() || finished_ || blocked_section_[owner_slot_.load()].load() == 0) return;
    std::size_t free_slot = 0;
    for (std::size_t s = 1; s < kMaxThreads && free_slot == 0; ++s)
        if (!slot_taken_[s]) free_slot = s;
    if (free_slot == 0) {
        log_limited(full,
                    "all %zu broker threads are stuck in file system calls: requests wait until one returns",
                    kMaxThreads);
        return;
    }
    // The loop has no owner until the helper (or the stuck thread, if it comes back first) takes it;
    // the owner's slot is the helper's, which is not blocked, so the watchdog starts no other one.
    const std::thread::id stuck = owner_;
    const std::size_t stuck_slot = owner_slot_.load();
    slot_taken_[free_slot] = true;
    ++threads_;
    owner_ = std::thread::id();
    owner_slot_ = free_slot;
    try {
        std::thread([this, free_slot] { helper(free_slot); }).detach();
    } catch (const std::system_error&) {
        slot_taken_[free_slot] = false;
        --threads_;
        owner_ = stuck;
        owner_slot_ = stuck_slot;
    }
}

void EventLoop::helper(std::size_t slot) noexcept {
    // umask is per file-system context: give this thread its own, so that a creation's umask on one
    // thread never applies to another's.
    if (::unshare(CLONE_FS) == 0) ::umask(base_umask_);
    std::unique_lock lock(mutex_);
    thread_slot = slot;
    running = this;
    if (owner_ == std::thread::id() && !finished_) {
        owner_ = std::this_thread::get_id();
        drive(lock, /*helper=*/true);
    }
    running = nullptr;
    slot_taken_[slot] = false;
    --threads_;
}

}  // namespace fdbroker::broker
