// Descriptors a peer sends the broker that the broker does not keep: a "channel" that is no channel,
// or a descriptor attached to a request that may carry none. Closing one can take as long as the peer
// likes — a TCP socket set to linger with unsent data waits for its peer, a FUSE file's close waits for
// the file system's flush — so the broker closes them off its event loop, and nobody else waits.
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/harness.hpp"
#include "support/serve_broker.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::test {
namespace {

// A connected TCP socket whose last close waits for an hour: its peer (never accepted) reads nothing,
// so data stays queued, and SO_LINGER makes close wait for it to be sent. Closing the listener on
// `port` resets the connection, which ends the wait.
unique_fd lingering_socket(int port) {
    unique_fd s = connect_within(port, 5000);
    if (!s) return {};
    const std::vector<char> chunk(1 << 16, 'x');
    while (::send(s.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
    int queued = 0;
    const linger hour{1, 3600};
    if (::ioctl(s.get(), SIOCOUTQ, &queued) != 0 || queued == 0 ||
        ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &hour, sizeof hour) != 0)
        return {};
    return s;
}

unique_fd connect_to(const std::string& path) {
    unique_fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (!s || ::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return {};
    return s;
}

// Sends one request frame with our credentials and `fd` attached.
int send_with(int sock, const wire::Request& request, int fd) {
    std::array<std::byte, wire::kMaxRequestSize> frame{};
    const std::size_t size = wire::encode_request(request, frame);
    const proto::Credentials me = proto::own_credentials();
    return proto::send(sock, std::span(frame.data(), size), {.credentials = &me, .fd = fd, .flags = 0});
}

// Sends `lingering` with `request` on `sock` and closes the test's copy while the broker is stopped, so
// that the broker's copy, still in flight, is the last one: the close that waits is the broker's.
int hand_over(const ServeBroker& broker, int sock, const wire::Request& request, unique_fd& lingering) {
    if (::kill(broker.pid(), SIGSTOP) != 0) return errno;
    const int err = send_with(sock, request, lingering.get());
    lingering.reset();
    ::kill(broker.pid(), SIGCONT);
    return err;
}

// Whether the broker ends the channel `sock` (its end of file) within a minute.
bool ended_by_broker(int sock) {
    pollfd p{sock, POLLIN, 0};
    std::array<std::byte, wire::kMaxReplySize + 1> buf{};
    for (int waited = 0; waited < 60; ++waited) {
        if (::poll(&p, 1, 1000) != 1) continue;
        const ssize_t n = ::recv(sock, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN)) return true;
    }
    return false;
}

class PeerDescriptors : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "clients run as other users, which needs root";
        if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
        ::mkdir((dir / "data").c_str(), 0755);
        write_file(dir / "data/file", "plain");
    }
    [[nodiscard]] std::string policy() const {
        return "[profile.p]\nclients = { users = [0, 1002] }\nread = [\"" + dir.path() + "/data/**\"]\n";
    }
    // Another client, as uid 1002, reads a file: what a broker held up would never answer.
    void another_client_is_served(const ServeBroker& broker) const {
        const Outcome other = broker.run_client(1002, 1002, {{"read", dir / "data/file"}});
        EXPECT_EQ(other.lines(), std::vector<std::string>{"ok plain"}) << other.err;
    }

    TempDir dir;
};

TEST_F(PeerDescriptors, AChannelThatIsNoChannelIsClosedWithoutHoldingUpAnyone) {
    ServeBroker broker(dir, policy());
    ASSERT_TRUE(broker.ready());
    int port = 0;
    unique_fd listener = tcp_listener("127.0.0.1", 4, port);
    unique_fd lingering = lingering_socket(port);
    ASSERT_TRUE(lingering) << "cannot make a lingering TCP socket: " << std::strerror(errno);
    const unique_fd bootstrap = connect_to(broker.socket());
    ASSERT_TRUE(bootstrap) << std::strerror(errno);
    wire::Request attach;
    attach.op = wire::Op::attach;
    attach.id = 1;
    ASSERT_EQ(hand_over(broker, bootstrap.get(), attach, lingering), 0);
    EXPECT_TRUE(ended_by_broker(bootstrap.get())) << "the broker is held up closing what a client sent";
    another_client_is_served(broker);
    listener.reset();  // resets the connection: the broker's close returns
    const Outcome stopped = broker.stop();
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    EXPECT_NE(stopped.err.find("the attached channel is not a unix seqpacket socket"), std::string::npos)
        << stopped.err;
}

TEST_F(PeerDescriptors, ADescriptorSentWithARequestIsClosedWithoutHoldingUpAnyone) {
    ServeBroker broker(dir, policy());
    ASSERT_TRUE(broker.ready());
    // A channel of our own, attached as the library would.
    const unique_fd bootstrap = connect_to(broker.socket());
    ASSERT_TRUE(bootstrap) << std::strerror(errno);
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    const unique_fd mine(pair[0]);
    unique_fd theirs(pair[1]);
    wire::Request attach;
    attach.op = wire::Op::attach;
    attach.id = 1;
    ASSERT_EQ(send_with(bootstrap.get(), attach, theirs.get()), 0);
    theirs.reset();
    std::array<std::byte, wire::kMaxReplySize + 1> buf{};
    const proto::Received answer = proto::receive(mine.get(), buf, 0, 0);
    ASSERT_EQ(answer.status, proto::RecvStatus::ok);
    const wire::DecodedReply reply = wire::decode_reply(std::span(buf.data(), answer.size));
    ASSERT_TRUE(reply.reply && reply.reply->result == 0);

    int port = 0;
    unique_fd listener = tcp_listener("127.0.0.1", 4, port);
    unique_fd lingering = lingering_socket(port);
    ASSERT_TRUE(lingering) << "cannot make a lingering TCP socket: " << std::strerror(errno);
    const std::string path = dir / "data/file";
    wire::Request open;
    open.op = wire::Op::open;
    open.id = 2;
    open.path = path;
    ASSERT_EQ(hand_over(broker, mine.get(), open, lingering), 0);
    EXPECT_TRUE(ended_by_broker(mine.get())) << "the broker is held up closing what a client sent";
    another_client_is_served(broker);
    listener.reset();
    const Outcome stopped = broker.stop();
    EXPECT_EQ(stopped.status, 0) << stopped.err;
}

}  // namespace
}  // namespace fdbroker::test
