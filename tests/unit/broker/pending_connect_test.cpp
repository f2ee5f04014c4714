// The one pending connect of both modes: its waiter hears once, from the event loop, how it ended.
#include "broker/ops/pending_connect.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <optional>

#include "support/socket_servers.hpp"

namespace fdbroker::broker {
namespace {

using namespace std::chrono_literals;

struct Recorder final : PendingConnect::Waiter {
    void connect_done(int error, unique_fd socket) noexcept override {
        ++calls;
        result = error;
        got_socket = static_cast<bool>(socket);
    }
    int calls = 0;
    std::optional<int> result;
    bool got_socket = false;
};

// Runs `loop` until `recorder` has heard, or a few seconds.
void run_until_told(EventLoop& loop, const Recorder& recorder) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    EventLoop::Hooks hooks;
    hooks.timeout = [] { return 50; };
    hooks.end_of_turn = [&] { return recorder.calls > 0 || std::chrono::steady_clock::now() > deadline; };
    ASSERT_TRUE(loop.run(std::move(hooks)));
}

// A TCP socket connecting, without blocking, to a listener on 127.0.0.1.
unique_fd connecting_to(int port) {
    unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<std::uint16_t>(port));
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&in), sizeof in) != 0 && errno != EINPROGRESS)
        return {};
    return s;
}

TEST(PendingConnect, AConnectThatFinishesIsReportedOnce) {
    int port = 0;
    const unique_fd listener = test::tcp_listener("127.0.0.1", 4, port);
    ASSERT_TRUE(listener);
    EventLoop loop;
    Recorder recorder;
    PendingConnect connect(loop, connecting_to(port), recorder);
    ASSERT_TRUE(connect.start(10s));
    run_until_told(loop, recorder);
    EXPECT_EQ(recorder.calls, 1);
    EXPECT_EQ(recorder.result, 0);
    EXPECT_TRUE(recorder.got_socket);
    EXPECT_TRUE(connect.finished());
    connect.cancel();  // too late: nothing more is reported
    EXPECT_EQ(recorder.calls, 1);
}

TEST(PendingConnect, ARefusedConnectReportsItsErrno) {
    const int port = test::closed_port();
    EventLoop loop;
    Recorder recorder;
    PendingConnect connect(loop, connecting_to(port), recorder);
    ASSERT_TRUE(connect.start(10s));
    run_until_told(loop, recorder);
    EXPECT_EQ(recorder.result, ECONNREFUSED);
}

TEST(PendingConnect, ASocketThatNeverBecomesWritableTimesOut) {
    // A unix socket whose peer reads nothing, with its send buffer full: never writable.
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
    const unique_fd peer(pair[1]);
    unique_fd stuck(pair[0]);
    const char chunk[4096] = {};
    while (::send(stuck.get(), chunk, sizeof chunk, MSG_DONTWAIT) > 0) {
    }
    EventLoop loop;
    Recorder recorder;
    PendingConnect connect(loop, std::move(stuck), recorder);
    ASSERT_TRUE(connect.start(0ms)) << "a timeout of 0 fires at once rather than never";
    run_until_told(loop, recorder);
    EXPECT_EQ(recorder.result, ETIMEDOUT);
    EXPECT_EQ(recorder.calls, 1);
}

TEST(PendingConnect, CancellingReportsECanceledAndStopsWatching) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
    const unique_fd peer(pair[1]);
    EventLoop loop;
    Recorder recorder;
    PendingConnect connect(loop, unique_fd(pair[0]), recorder);
    ASSERT_TRUE(connect.start(10s));
    connect.cancel();
    EXPECT_EQ(recorder.result, ECANCELED);
    EXPECT_TRUE(recorder.got_socket) << "the waiter gets the socket back, whatever the outcome";
    connect.cancel();
    EXPECT_EQ(recorder.calls, 1);
}

}  // namespace
}  // namespace fdbroker::broker
