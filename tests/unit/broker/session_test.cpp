// A Session on a real event loop and Broker, with the test itself as the worker: attaching through a
// bootstrap channel, requests and replies on the private channel, and what ends a channel.
#include "broker/channels/session.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/channels/broker.hpp"
#include "broker/core/audit.hpp"
#include "broker/core/event_loop.hpp"
#include "broker/core/tenants.hpp"
#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/harness.hpp"

namespace fdbroker::broker {
namespace {

struct Pair {
    unique_fd mine;
    unique_fd theirs;
};

Pair seqpacket_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return {};
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

class SessionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        test::write_file(dir / "file", "plain");
        const policy::LoadResult loaded = policy::Policy::load_string(
            "version = 1\n[profile.p]\nread = [\"" + dir.path() + "/**\"]\n", "p.toml");
        ASSERT_TRUE(loaded.policy);
        policy_ = loaded.policy;
        broker_ =
            std::make_unique<Broker>(loop_, tenants_, policy_, *policy_->profile("p"), std::nullopt, audit_);
        Pair bootstrap = seqpacket_pair();
        ASSERT_TRUE(bootstrap.mine);
        // Any process of our uid may attach through it, as for a serve-mode client.
        ASSERT_TRUE(broker_->add_bootstrap(std::move(bootstrap.theirs), {::getuid(), std::nullopt}));
        bootstrap_ = std::move(bootstrap.mine);
    }
    void TearDown() override {
        broker_.reset();
        loop_.free_all_retired();
    }

    // Runs a few loop turns: enough for what was sent to be read and answered.
    void pump(int turns = 5) {
        for (int i = 0; i < turns; ++i) {
            EventLoop::Hooks hooks;
            hooks.timeout = [] { return 10; };
            hooks.end_of_turn = [this] {
                broker_->end_turn();
                return true;
            };
            ASSERT_TRUE(loop_.run(std::move(hooks)));
        }
    }
    static int send(int sock, const wire::Request& request, int fd = -1) {
        std::array<std::byte, wire::kMaxRequestSize> frame{};
        const std::size_t size = wire::encode_request(request, frame);
        const proto::Credentials me = proto::own_credentials();
        // Never blocks: a test that sent more than fits would wait for a broker that only runs in pump().
        return proto::send(sock, std::span(frame.data(), size),
                           {.credentials = &me, .fd = fd, .flags = MSG_DONTWAIT});
    }
    // The next reply on `sock`, with the descriptor it carried; none if nothing came.
    static std::optional<wire::Reply> receive(int sock, unique_fd* fd = nullptr) {
        static std::array<std::byte, wire::kMaxReplySize + 1> buf{};
        proto::Received r = proto::receive(sock, buf, MSG_DONTWAIT, 1);
        if (r.status != proto::RecvStatus::ok) return std::nullopt;
        if (fd) *fd = std::move(r.fd);
        wire::DecodedReply d = wire::decode_reply(std::span(buf.data(), r.size));
        return d.reply;
    }
    // Whether the broker has ended channel `sock` (its end of file).
    static bool ended(int sock) {
        std::array<std::byte, 64> buf{};
        return ::recv(sock, buf.data(), buf.size(), MSG_DONTWAIT) == 0;
    }
    // A private channel, attached through the bootstrap channel.
    unique_fd attach() {
        Pair channel = seqpacket_pair();
        wire::Request request;
        request.op = wire::Op::attach;
        request.id = 1;
        if (send(bootstrap_.get(), request, channel.theirs.get()) != 0) return {};
        channel.theirs.reset();
        pump();
        const std::optional<wire::Reply> reply = receive(channel.mine.get());
        if (!reply || reply->result != 0) return {};
        return std::move(channel.mine);
    }

    test::TempDir dir;
    EventLoop loop_;
    Tenants tenants_{loop_, 1 << 20};
    Audit audit_;
    std::shared_ptr<const policy::Policy> policy_;
    std::unique_ptr<Broker> broker_;
    unique_fd bootstrap_;
};

TEST_F(SessionTest, AnAttachedChannelCarriesRequestsAndTheirDescriptors) {
    const unique_fd channel = attach();
    ASSERT_TRUE(channel);
    EXPECT_EQ(broker_->channels(), 1u);
    const std::string path = dir / "file";
    wire::Request open;
    open.op = wire::Op::open;
    open.id = 7;
    open.arg0 = O_RDONLY;
    open.path = path;
    ASSERT_EQ(send(channel.get(), open), 0);
    pump();
    unique_fd file;
    const std::optional<wire::Reply> reply = receive(channel.get(), &file);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->id, 7u);
    EXPECT_EQ(reply->result, 0);
    ASSERT_TRUE(file);
    char text[8] = {};
    EXPECT_EQ(::read(file.get(), text, sizeof text), 5);
    EXPECT_STREQ(text, "plain");
    // Denied outside the rules, with EACCES whether or not the path exists.
    open.id = 8;
    open.path = "/etc/passwd";
    ASSERT_EQ(send(channel.get(), open), 0);
    pump();
    const std::optional<wire::Reply> denied = receive(channel.get());
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->result, -EACCES);
}

TEST_F(SessionTest, AFileRequestOnTheBootstrapChannelEndsIt) {
    wire::Request open;
    open.op = wire::Op::open;
    open.id = 2;
    const std::string path = dir / "file";
    open.path = path;
    ASSERT_EQ(send(bootstrap_.get(), open), 0);
    pump();
    EXPECT_TRUE(ended(bootstrap_.get()));
}

TEST_F(SessionTest, AFrameThatDoesNotDecodeEndsThePrivateChannel) {
    const unique_fd channel = attach();
    ASSERT_TRUE(channel);
    const std::array<std::byte, 3> garbage{};
    const proto::Credentials me = proto::own_credentials();
    ASSERT_EQ(proto::send(channel.get(), garbage, {.credentials = &me, .fd = -1, .flags = 0}), 0);
    pump();
    EXPECT_TRUE(ended(channel.get()));
    EXPECT_EQ(broker_->channels(), 0u);
    EXPECT_FALSE(ended(bootstrap_.get())) << "only the channel that misbehaved is ended";
}

TEST_F(SessionTest, RepliesAWorkerDoesNotReadAreQueuedNotLost) {
    const unique_fd channel = attach();
    ASSERT_TRUE(channel);
    // More stat replies than the channel's 16 KiB send buffer holds, asked for without reading any.
    constexpr std::uint32_t kRequests = 100;
    const std::string path = dir / "file";
    for (std::uint32_t id = 1; id <= kRequests; ++id) {
        wire::Request stat;
        stat.op = wire::Op::stat;
        stat.id = id;
        stat.path = path;
        ASSERT_EQ(send(channel.get(), stat), 0) << id;
    }
    pump(10);
    int unread = 0;
    ASSERT_EQ(::ioctl(channel.get(), FIONREAD, &unread), 0);
    EXPECT_GT(unread, 0);
    std::uint32_t next = 1;
    for (int turns = 0; turns < 1000 && next <= kRequests; ++turns) {
        while (const std::optional<wire::Reply> reply = receive(channel.get())) {
            EXPECT_EQ(reply->id, next) << "replies come in order";
            EXPECT_EQ(reply->result, 0);
            ++next;
        }
        pump(1);
    }
    EXPECT_EQ(next, kRequests + 1);
}

}  // namespace
}  // namespace fdbroker::broker
