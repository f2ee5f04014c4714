// A Session on a real event loop and Broker, with the test itself as the worker: attaching through a
// bootstrap channel, requests and replies on the private channel, and what ends a channel.
#include "broker/channels/session.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
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
    // The profile's rules: reading beneath the test's directory.
    [[nodiscard]] virtual std::string rules() const { return "read = [\"" + dir.path() + "/**\"]\n"; }
    void SetUp() override {
        test::write_file(dir / "file", "plain");
        const policy::LoadResult loaded =
            policy::Policy::load_string("version = 1\n[profile.p]\n" + rules(), "p.toml");
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
        static std::array<std::byte, wire::kMaxRequestSize> frame{};
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

TEST_F(SessionTest, AMalformedFrameOfAMetadataOpEndsThePrivateChannel) {
    const std::string path = dir / "file";
    const std::array<std::byte, wire::kTimesDataSize - 1> short_times{};
    wire::Request requests[4];
    requests[0].op = wire::Op::utimens;  // one byte of the times missing
    requests[0].data = short_times;
    requests[1].op = wire::Op::getxattr;  // a buffer larger than any value
    requests[1].path2 = "user.x";
    requests[1].arg0 = wire::kMaxXattrValue + 1;
    requests[2].op = wire::Op::chmod;  // a flag only link takes
    requests[2].flags = wire::kFollow;
    requests[3].op = wire::Op::removexattr;  // a name longer than any
    const std::string long_name(wire::kMaxXattrName + 1, 'n');
    requests[3].path2 = long_name;
    for (wire::Request& request : requests) {
        SCOPED_TRACE(std::string(wire::op_name(request.op)));
        const unique_fd channel = attach();
        ASSERT_TRUE(channel);
        request.id = 3;
        request.path = path;
        ASSERT_EQ(send(channel.get(), request), 0);
        pump();
        EXPECT_TRUE(ended(channel.get()));
        EXPECT_EQ(broker_->channels(), 0u);
    }
    EXPECT_FALSE(ended(bootstrap_.get())) << "only the channel that misbehaved is ended";
}

TEST_F(SessionTest, RepliesAWorkerDoesNotReadAreQueuedNotLost) {
    const unique_fd channel = attach();
    ASSERT_TRUE(channel);
    // More stat replies than the channel's send buffer (80 KiB, as the kernel counts) holds, asked for
    // without reading any.
    constexpr std::uint32_t kRequests = 200;
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

// Extended attributes of the largest size, which only some file systems hold (tmpfs does; ext4 holds
// one block): the broker reads a value of 64 KiB into a reply that its channel can still send.
class LargeXattrTest : public SessionTest {
  protected:
    void SetUp() override {
        char tmpl[] = "/dev/shm/fdbroker-session-test-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) GTEST_SKIP() << "no /dev/shm";
        shm_ = tmpl;
        const std::vector<char> value(wire::kMaxXattrValue, 'v');
        test::write_file(shm_ + "/file", "");
        if (::setxattr((shm_ + "/file").c_str(), "user.big", value.data(), value.size(), 0) != 0)
            GTEST_SKIP() << "/dev/shm holds no extended attribute of 64 KiB: " << std::strerror(errno);
        SessionTest::SetUp();
    }
    void TearDown() override {
        SessionTest::TearDown();
        if (!shm_.empty()) std::filesystem::remove_all(shm_);
    }
    [[nodiscard]] std::string rules() const override {
        return "read = [\"" + shm_ + "/**\"]\nwrite = [\"" + shm_ + "/**\"]\n";
    }
    std::string shm_;
};

TEST_F(LargeXattrTest, AValueOf64KiBComesBackWhole) {
    const unique_fd channel = attach();
    ASSERT_TRUE(channel);
    const std::string path = shm_ + "/file";
    wire::Request get;
    get.op = wire::Op::getxattr;
    get.id = 4;
    get.path = path;
    get.path2 = "user.big";
    get.arg0 = wire::kMaxXattrValue;
    ASSERT_EQ(send(channel.get(), get), 0);
    pump();
    std::optional<wire::Reply> reply = receive(channel.get());
    ASSERT_TRUE(reply) << "no reply, or one the channel could not carry";
    EXPECT_EQ(reply->result, static_cast<std::int32_t>(wire::kMaxXattrValue));
    ASSERT_EQ(reply->payload.size(), wire::kMaxXattrValue);
    EXPECT_EQ(reply->payload.front(), std::byte{'v'});
    EXPECT_EQ(reply->payload.back(), std::byte{'v'});
    EXPECT_TRUE(wire::reply_shape_ok(*reply));

    // Set a new one of the same size, then ask for its size only.
    const std::vector<std::byte> value(wire::kMaxXattrValue, std::byte{'w'});
    wire::Request set;
    set.op = wire::Op::setxattr;
    set.id = 5;
    set.path = path;
    set.path2 = "user.other";
    set.data = value;
    ASSERT_EQ(send(channel.get(), set), 0);
    pump();
    reply = receive(channel.get());
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->result, 0);
    get.id = 6;
    get.path2 = "user.other";
    get.arg0 = 0;
    ASSERT_EQ(send(channel.get(), get), 0);
    pump();
    reply = receive(channel.get());
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->result, static_cast<std::int32_t>(wire::kMaxXattrValue));
    EXPECT_TRUE(reply->payload.empty());
    std::vector<char> stored(wire::kMaxXattrValue);
    EXPECT_EQ(::getxattr(path.c_str(), "user.other", stored.data(), stored.size()),
              static_cast<ssize_t>(wire::kMaxXattrValue));
    EXPECT_EQ(stored.front(), 'w');
}

}  // namespace
}  // namespace fdbroker::broker
