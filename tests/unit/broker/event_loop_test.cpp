// The event loop's promise: a handler stuck in a blocking section never stalls the other handlers,
// and what was retired is not destroyed under a section that may still use it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "broker/core/event_loop.hpp"
#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {
namespace {

using namespace std::chrono_literals;

struct Pipe {
    Pipe() {
        int fds[2];
        EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
    }
    void poke() const { EXPECT_EQ(::write(write_end.get(), "x", 1), 1); }
    void drain() const {
        char c;
        EXPECT_EQ(::read(read_end.get(), &c, 1), 1);
    }
    unique_fd read_end, write_end;
};

// Something the test waits for, with a generous bound so that a failure shows as a failure.
class Flag {
  public:
    void set() {
        {
            const std::lock_guard lock(mutex_);
            set_ = true;
        }
        cv_.notify_all();
    }
    bool wait() {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, 60s, [this] { return set_; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool set_ = false;
};

// Reads one byte from `gate` inside a blocking section: stuck until the test writes there.
struct Stuck final : EventHandler {
    EventLoop* loop = nullptr;
    Pipe trigger, gate;
    Flag entered, left;
    void on_event(std::uint32_t) noexcept override {
        trigger.drain();
        entered.set();
        loop->blocking([this] { gate.drain(); });
        left.set();
    }
};

struct Counter final : EventHandler {
    Pipe pipe;
    std::atomic<int> events{0};
    Flag reached;
    int target = 3;
    void on_event(std::uint32_t) noexcept override {
        pipe.drain();
        if (++events == target) reached.set();
    }
};

struct Tracked {
    // A constructor rather than make_unique's parenthesized aggregate initialization, which clang
    // (clang-tidy) before 16 does not implement.
    explicit Tracked(std::atomic<bool>* flag) : destroyed(flag) {}
    Tracked(const Tracked&) = delete;
    Tracked& operator=(const Tracked&) = delete;
    ~Tracked() { *destroyed = true; }
    std::atomic<bool>* destroyed;
};

// Runs `loop` with its watchdog on a thread of its own until `done` is seen at the end of a turn.
std::thread run_until(EventLoop& loop, const std::atomic<bool>& done) {
    return std::thread([&loop, &done] {
        EventLoop::Hooks hooks;
        hooks.timeout = [] { return 50; };
        hooks.end_of_turn = [&done] { return done.load(); };
        loop.start_watchdog();
        EXPECT_TRUE(loop.run(std::move(hooks)));
    });
}

TEST(EventLoop, AStuckHandlerDoesNotStallTheOthers) {
    EventLoop loop;
    ASSERT_TRUE(loop.valid());
    Stuck stuck;
    stuck.loop = &loop;
    Counter counter;
    ASSERT_TRUE(loop.add(stuck.trigger.read_end.get(), EPOLLIN, &stuck));
    ASSERT_TRUE(loop.add(counter.pipe.read_end.get(), EPOLLIN, &counter));
    std::atomic<bool> done{false};

    std::thread runner = run_until(loop, done);
    stuck.trigger.poke();
    ASSERT_TRUE(stuck.entered.wait());
    // The thread that runs the loop is now stuck in the kernel: the others must still be served.
    for (int i = 0; i < counter.target; ++i)
        counter.pipe.poke();
    ASSERT_TRUE(counter.reached.wait());
    EXPECT_EQ(loop.threads(), 2u);

    stuck.gate.poke();
    ASSERT_TRUE(stuck.left.wait());
    done = true;
    counter.pipe.poke();  // one more turn, to see `done`
    runner.join();
    EXPECT_EQ(counter.events.load(), counter.target + 1);
    EXPECT_TRUE(loop.watchdog_started());
}

// A loop whose handlers never block (a worker that asks for nothing) never starts the watchdog's
// thread: nothing could stall it.
TEST(EventLoop, TheWatchdogStartsWithTheFirstBlockingSection) {
    EventLoop loop;
    ASSERT_TRUE(loop.valid());
    Counter counter;
    ASSERT_TRUE(loop.add(counter.pipe.read_end.get(), EPOLLIN, &counter));
    std::atomic<bool> done{false};
    std::thread runner = run_until(loop, done);
    for (int i = 0; i < counter.target; ++i)
        counter.pipe.poke();
    ASSERT_TRUE(counter.reached.wait());
    done = true;
    counter.pipe.poke();
    runner.join();
    EXPECT_FALSE(loop.watchdog_started());

    Stuck stuck;
    stuck.loop = &loop;
    ASSERT_TRUE(loop.add(stuck.trigger.read_end.get(), EPOLLIN, &stuck));
    done = false;
    runner = run_until(loop, done);
    stuck.gate.poke();  // the section passes at once
    stuck.trigger.poke();
    ASSERT_TRUE(stuck.left.wait());
    done = true;
    counter.pipe.poke();
    runner.join();
    EXPECT_TRUE(loop.watchdog_started());
}

TEST(EventLoop, RetiredObjectsOutliveTheSectionsThatMayUseThem) {
    EventLoop loop;
    std::atomic<bool> destroyed{false};
    struct Retirer final : EventHandler {
        EventLoop* loop = nullptr;
        Pipe pipe;
        std::unique_ptr<Tracked> object;
        void on_event(std::uint32_t) noexcept override {
            pipe.drain();
            loop->retire(std::move(object));
        }
    } retirer;
    retirer.loop = &loop;
    retirer.object = std::make_unique<Tracked>(&destroyed);
    Stuck stuck;
    stuck.loop = &loop;
    ASSERT_TRUE(loop.add(stuck.trigger.read_end.get(), EPOLLIN, &stuck));
    ASSERT_TRUE(loop.add(retirer.pipe.read_end.get(), EPOLLIN, &retirer));
    std::atomic<bool> done{false};
    Counter counter;
    counter.target = 1;
    ASSERT_TRUE(loop.add(counter.pipe.read_end.get(), EPOLLIN, &counter));

    std::thread runner = run_until(loop, done);
    stuck.trigger.poke();
    ASSERT_TRUE(stuck.entered.wait());
    retirer.pipe.poke();  // retired while the section that began earlier is still stuck
    counter.pipe.poke();
    ASSERT_TRUE(counter.reached.wait());  // the retiring turn is over, and more turns ran after it
    EXPECT_FALSE(destroyed.load());
    stuck.gate.poke();
    ASSERT_TRUE(stuck.left.wait());
    done = true;
    counter.pipe.poke();
    runner.join();
    EXPECT_TRUE(destroyed.load());
}

}  // namespace
}  // namespace fdbroker::broker
