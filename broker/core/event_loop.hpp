// The broker's event loop: one epoll set, whose handlers are called per event, run by one thread at a
// time — and never stalled by one request.
//
// Every request is performed on the thread that read it, because handing each one to another thread
// would cost a cross-CPU wake-up per request. But a request may block in the kernel for good: an open
// on a network or FUSE file system that stopped answering, a page of the caller's memory backed by
// one. Code that may block runs in a *blocking section* (`blocking(f)`), with the loop released; a
// watchdog thread notices when the thread running the loop has been inside one for a few tens of
// milliseconds and starts a helper thread that takes the loop over, so every other worker is
// still served. When the stuck call returns, its thread finishes that one request and gives up the
// loop: the thread that called run() waits to get it back, a helper simply ends. (The Go runtime's
// system monitor retakes a processor from a thread stuck in a system call the same way.)
//
// Everything that event handlers touch is guarded by one mutex, held by whichever thread runs the
// loop and released only inside epoll_wait and blocking sections; code inside a blocking section
// touches nothing shared. Objects that a stuck section may still be using are not destroyed under it:
// retire() destroys them after the current turn *and* after every blocking section that had begun by
// then has ended.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

class EventHandler {
  public:
    virtual void on_event(std::uint32_t events) noexcept = 0;
    // Every handler runs with the broker's identity but those that take the worker's file-system
    // identity themselves and may find the thread still holding it from their last call (transparent
    // listeners: worker_identity.hpp).
    [[nodiscard]] virtual bool keeps_worker_identity() const noexcept { return false; }

  protected:
    ~EventHandler() = default;
};

class EventLoop {
  public:
    // Threads that may run the loop at once, the first included: one per request stuck in a blocking
    // section, plus the one serving. Beyond this the loop waits like a single-threaded one would.
    static constexpr std::size_t kMaxThreads = 64;
    // A blocking section on the thread that runs the loop hands the loop over once it has lasted
    // 20 to 30 ms (seen at three watchdog ticks, 10 ms apart).

    EventLoop();  // valid() is false if epoll itself is unavailable
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(epoll_); }

    bool add(int fd, std::uint32_t events, EventHandler* handler) noexcept;
    bool modify(int fd, std::uint32_t events, EventHandler* handler) noexcept;
    void remove(int fd) noexcept;

    struct Hooks {
        // How long the next epoll_wait may sleep (-1: until something happens).
        std::function<int()> timeout = [] { return -1; };
        // Called after each turn by the thread that ran it: true ends the loop.
        std::function<bool()> end_of_turn = [] { return false; };
        // Called instead of returning when a helper finds the loop finished while the thread that
        // called run() is still stuck in a blocking section: must end the process (_exit).
        std::function<void()> abandon;
    };
    // Runs turns until end_of_turn says so (true) or epoll fails (false, errno set). May be called
    // again afterwards, once no helper thread is left, to run more turns.
    bool run(Hooks hooks);

    // Lets the watchdog start: the first blocking section starts its thread, so that a loop whose
    // workers never ask for anything that may block (a short command) never pays for the thread, its
    // start or its end. Threads inherit their creator's capabilities, seccomp filter and no_new_privs,
    // so this comes after the broker has confined itself. If the thread cannot start, that is logged
    // and the loop runs on one thread, as if no request could stall.
    void start_watchdog() noexcept;
    // Whether the watchdog's thread was started (by the owner thread, or once run() has returned).
    [[nodiscard]] bool watchdog_started() const noexcept { return watchdog_.joinable(); }

    // Runs f() with the loop released: f may block in the kernel, and must touch nothing that event
    // handlers touch. Returns what f returns.
    template <class F>
    decltype(auto) blocking(F&& f) {
        Section section(*this);
        return std::forward<F>(f)();
    }

    // Inside a blocking section: runs f() with the loop held again, for what touches shared state (an
    // audit line, a registration with the loop). Outside one, just runs f().
    template <class F>
    decltype(auto) locked(F&& f) {
        Relock relock(*this);
        return std::forward<F>(f)();
    }

    // Closes `fd` at the end of the turn, in a blocking section: closing a file may wait for its file
    // system (a FUSE flush), and nothing may wait with the loop held.
    void close_later(unique_fd fd) noexcept {
        if (!fd) return;
        try {
            closing_.push_back(std::move(fd));
        } catch (const std::bad_alloc&) {
            fd.reset();  // no room to defer it: closed now
        }
    }

    // Destroys `object` once no code can be using it any more (see above).
    template <class T>
    void retire(std::unique_ptr<T> object) noexcept {
        if (!object) return;
        try {
            retired_.reserve(retired_.size() + 1);
        } catch (const std::bad_alloc&) {
            // No room to defer it: kept for good, since destroying it now could pull it from under a
            // stuck call.
            static_cast<void>(object.release());
            return;
        }
        retired_.push_back({turn_, std::unique_ptr<void, void (*)(void*)>(
                                       object.release(), [](void* p) { delete static_cast<T*>(p); })});
    }

    // Takes `which` out of `owners` and retires it: for an object that ends itself from one of its own
    // events, while the turn that dispatched the event may still hold others for it.
    template <class T>
    void retire_from(std::vector<std::unique_ptr<T>>& owners, const T& which) noexcept {
        for (auto& owned : owners)
            if (owned.get() == &which) {
                std::swap(owned, owners.back());
                retire(std::move(owners.back()));
                owners.pop_back();
                return;
            }
    }

    // Destroys everything retired, once the loop has finished and no helper thread is left (run()
    // returned and threads() is 1): what it refers to may be about to go.
    void free_all_retired() noexcept {
        if (threads_.load() == 1) retired_.clear();
    }

    // The threads serving now (1 unless a request is stuck), for tests and the log.
    [[nodiscard]] std::size_t threads() const noexcept { return threads_.load(); }

  private:
    class Section {
      public:
        explicit Section(EventLoop& loop) noexcept;
        ~Section();
        Section(const Section&) = delete;
        Section& operator=(const Section&) = delete;

      private:
        EventLoop& loop_;
    };
    class Relock {
      public:
        explicit Relock(EventLoop& loop) noexcept;
        ~Relock();
        Relock(const Relock&) = delete;
        Relock& operator=(const Relock&) = delete;

      private:
        EventLoop& loop_;
        bool relocked_ = false;
    };
    struct Retired {
        std::uint64_t turn;
        std::unique_ptr<void, void (*)(void*)> object;
    };

    bool drive(std::unique_lock<std::mutex>& lock, bool helper);
    bool turn(std::unique_lock<std::mutex>& lock);
    void free_retired() noexcept;
    void watch() noexcept;
    void launch_watchdog() noexcept;
    void take_over() noexcept;
    void helper(std::size_t slot) noexcept;

    unique_fd epoll_;
    std::mutex mutex_;
    std::condition_variable handed_back_;
    Hooks hooks_;
    std::thread::id owner_;   // the thread running the loop; none while it is being handed back
    std::thread::id origin_;  // the thread that called run()
    bool origin_waiting_ = false;
    bool finished_ = false;
    bool result_ = true;
    std::uint64_t turn_ = 1;
    std::vector<Retired> retired_;
    std::vector<unique_fd> closing_;

    // Per thread slot: the turn in which its blocking section began (0: none), and the section's number
    // (0: not blocked). The slot of the thread running the loop is owner_slot_.
    std::array<std::uint64_t, kMaxThreads> section_turn_{};
    std::array<std::atomic<std::uint64_t>, kMaxThreads> blocked_section_{};
    std::atomic<std::size_t> owner_slot_{0};
    std::array<bool, kMaxThreads> slot_taken_{true};  // slot 0 is run()'s
    std::atomic<std::size_t> threads_{1};
    std::atomic<std::uint64_t> sections_{0};  // sections entered so far: tells the watchdog to wake

    mode_t base_umask_ = 022;
    std::thread watchdog_;
    bool watchdog_armed_ = false;  // start_watchdog() was called; the thread is not running yet
    std::mutex watchdog_mutex_;
    std::condition_variable watchdog_wake_;
    std::atomic<bool> watchdog_parked_{false};
    bool stopping_ = false;
};

}  // namespace fdbroker::broker
