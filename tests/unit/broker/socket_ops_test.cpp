// SocketOps without a worker: what each request is judged by, the sockets it makes, a connect that
// cannot finish at once handed back as pending, and what a unix listener leaves in the file system.
#include "broker/ops/socket_ops.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "support/harness.hpp"
#include "support/policy_text.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::broker {
namespace {

using test::policy_text::load;

// Waits (bounded) for a pending connect to end and returns how it ended.
int settle(const SocketResult& r) {
    if (!r.pending) return r.verdict.error;
    pollfd p{r.fd.get(), POLLOUT, 0};
    if (::poll(&p, 1, 5000) != 1) return EINPROGRESS;
    return SocketOps::connect_outcome(r.fd.get());
}

bool connects_to(const std::string& path) {
    const unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    path.copy(sa.sun_path, sizeof sa.sun_path - 1);
    return ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

bool nonblocking(int fd) {
    return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

class SocketOpsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        server_ = std::make_unique<test::Server>(test::tcp_listener("127.0.0.1", 16, port_),
                                                 test::Server::Mode::echo);
        const std::string d = dir_.path();
        policy_ = load(
            "version = 1\n[profile.p]\n"
            "connect = [\"tcp:127.0.0.1:" +
            std::to_string(port_) + "\", \"tcp:127.0.0.1:" + std::to_string(closed_) + "\", \"unix:" + d +
            "/*.sock\"]\n"
            "listen = [{ address = \"unix:" +
            d + "/l.sock\", mode = \"0640\" }, \"unix:" + d + "/srv/*\"]\n" + "deny = [\"" + d +
            "/no.sock\"]\n");
        ASSERT_TRUE(policy_);
        profile_ = policy_->profile("p");
    }

    test::TempDir dir_;
    int port_ = 0;
    const int closed_ = test::closed_port();
    std::unique_ptr<test::Server> server_;
    std::shared_ptr<const policy::Policy> policy_;
    const policy::Profile* profile_ = nullptr;
};

TEST_F(SocketOpsTest, VerdictsNameWhatDecided) {
    SocketOps ops(*profile_, std::nullopt);
    SocketResult r = ops.connect("tcp:127.0.0.1:" + std::to_string(port_));
    EXPECT_TRUE(r.verdict.allowed);
    EXPECT_EQ(r.verdict.rule, &profile_->connect_rules()[0]);
    EXPECT_EQ(settle(r), 0);
    EXPECT_TRUE(r.fd);

    r = ops.connect("tcp:127.0.0.1:1");
    EXPECT_FALSE(r.verdict.allowed);
    EXPECT_EQ(r.verdict.rule, nullptr);
    EXPECT_EQ(r.verdict.deny, nullptr);
    EXPECT_EQ(r.verdict.error, EACCES);
    EXPECT_FALSE(r.fd);

    // A deny pattern refuses a socket path that a connect rule grants, and is named for the audit.
    r = ops.connect("unix:" + dir_ / "no.sock");
    EXPECT_EQ(r.verdict.error, EACCES);
    ASSERT_NE(r.verdict.deny, nullptr);
    EXPECT_EQ(r.verdict.deny->kind, policy::RuleKind::deny);

    r = ops.connect("tcp:127.0.0.1");
    EXPECT_EQ(r.verdict.error, EINVAL);
    EXPECT_FALSE(r.verdict.allowed);
    r = ops.listen("unix:" + dir_ / "other.sock", 1);  // a connect rule is no listen rule
    EXPECT_EQ(r.verdict.error, EACCES);
}

TEST_F(SocketOpsTest, ARefusedConnectReportsWhy) {
    SocketOps ops(*profile_, std::nullopt);
    const SocketResult r = ops.connect("tcp:127.0.0.1:" + std::to_string(closed_));
    EXPECT_TRUE(r.verdict.allowed);
    EXPECT_EQ(settle(r), ECONNREFUSED);
}

TEST(SocketOps, AConnectWithoutAnAnswerIsHandedBackPending) {
    const test::Unanswering silent;
    const std::string address = "tcp:127.0.0.1:" + std::to_string(silent.port());
    const auto policy = load("version = 1\n[profile.p]\nconnect = [\"" + address + "\"]\n");
    ASSERT_TRUE(policy);
    SocketOps ops(*policy->profile("p"), std::nullopt);
    const SocketResult r = ops.connect(address);
    EXPECT_TRUE(r.verdict.allowed);
    EXPECT_EQ(r.verdict.error, 0);
    ASSERT_TRUE(r.pending);
    ASSERT_TRUE(r.fd);
    EXPECT_TRUE(nonblocking(r.fd.get()));  // it is the broker's to wait on, not to block on
    EXPECT_EQ(SocketOps::connect_outcome(r.fd.get()), EINPROGRESS);
    EXPECT_EQ(::fcntl(r.fd.get(), F_GETFD), FD_CLOEXEC);
    ASSERT_EQ(SocketOps::make_blocking(r.fd.get()), 0);
    EXPECT_FALSE(nonblocking(r.fd.get()));
}

TEST_F(SocketOpsTest, UnixListenersAndWhatTheyLeaveBehind) {
    SocketOps ops(*profile_, std::nullopt);
    SocketResult r = ops.listen("unix:" + dir_ / "l.sock", 3);
    ASSERT_EQ(r.verdict.error, 0);
    ASSERT_TRUE(r.fd);
    EXPECT_FALSE(nonblocking(r.fd.get()));
    EXPECT_EQ(::fcntl(r.fd.get(), F_GETFD), FD_CLOEXEC);
    int listening = 0;
    socklen_t len = sizeof listening;
    ASSERT_EQ(::getsockopt(r.fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
    EXPECT_EQ(listening, 1);
    struct ::stat st {};
    ASSERT_EQ(::lstat((dir_ / "l.sock").c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0640u);

    // The name is taken: the second listen fails and leaves the first one's file alone.
    const SocketResult again = ops.listen("unix:" + dir_ / "l.sock", 3);
    EXPECT_EQ(again.verdict.error, EADDRINUSE);
    EXPECT_TRUE(test::exists(dir_ / "l.sock"));
    EXPECT_TRUE(connects_to(dir_ / "l.sock"));  // still the first listener's

    // A missing directory is the real error, and nothing is created.
    r = ops.listen("unix:" + dir_ / "srv/a.sock", 3);
    EXPECT_EQ(r.verdict.error, ENOENT);
    // A name too long for sun_path once bound beneath its directory's descriptor.
    ::mkdir((dir_ / "srv").c_str(), 0755);
    r = ops.listen("unix:" + dir_ / "srv/" + std::string(100, 'n'), 3);
    EXPECT_EQ(r.verdict.error, ENAMETOOLONG);
    r = ops.listen("unix:" + dir_ / "srv/" + std::string(80, 'n'), 3);
    EXPECT_EQ(r.verdict.error, 0);
}

// A unix socket of the given type bound at `path` (listening, for a connected type).
unique_fd unix_server(const std::string& path, int type) {
    unique_fd server(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    path.copy(sa.sun_path, sizeof sa.sun_path - 1);
    EXPECT_EQ(::bind(server.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << path;
    if (type != SOCK_DGRAM) {
        EXPECT_EQ(::listen(server.get(), 1), 0);
    }
    return server;
}

int socket_type(int fd) {
    int type = 0;
    socklen_t len = sizeof type;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 ? type : -1;
}

TEST_F(SocketOpsTest, AUnixConnectTakesTheServersSocketType) {
    SocketOps ops(*profile_, std::nullopt);
    const unique_fd seqpacket = unix_server(dir_ / "seqpacket.sock", SOCK_SEQPACKET);
    const SocketResult r = ops.connect("unix:" + dir_ / "seqpacket.sock");
    ASSERT_EQ(r.verdict.error, 0);
    EXPECT_EQ(socket_type(r.fd.get()), SOCK_SEQPACKET);
}

// A datagram socket can send to any other by name, whatever it is connected to: a unix connect rule
// whose server is one grants it only when the profile says datagram_reach = "any".
TEST_F(SocketOpsTest, AUnixDatagramServerNeedsTheProfilesAcknowledgement) {
    const unique_fd dgram = unix_server(dir_ / "dgram.sock", SOCK_DGRAM);
    SocketOps ops(*profile_, std::nullopt);
    SocketResult r = ops.connect("unix:" + dir_ / "dgram.sock");
    EXPECT_EQ(r.verdict.error, EACCES);
    EXPECT_FALSE(r.verdict.allowed);
    EXPECT_EQ(r.verdict.rule, &profile_->connect_rules()[2]);  // named in the audit line
    EXPECT_FALSE(r.fd);

    const auto any = load(
        "version = 1\n[profile.p]\ndatagram_reach = \"any\"\nconnect = [\"unix:" + dir_ / "*.sock" + "\"]\n");
    ASSERT_TRUE(any);
    SocketOps any_ops(*any->profile("p"), std::nullopt);
    r = any_ops.connect("unix:" + dir_ / "dgram.sock");
    ASSERT_EQ(r.verdict.error, 0);
    EXPECT_TRUE(r.verdict.allowed);
    EXPECT_EQ(socket_type(r.fd.get()), SOCK_DGRAM);
}

TEST(SocketOps, AConnectToTheAnyAddressIsJudgedAsTheLoopbackItReaches) {
    int port = 0;
    const test::Server local(test::tcp_listener("127.0.0.1", 4, port), test::Server::Mode::echo);
    const std::string p = std::to_string(port);
    const auto remote_only = load("version = 1\n[profile.p]\nconnect = [\"tcp:10.9.9.9:" + p +
                                  "\", \"tcp:0.0.0.0:" + p + "\", \"tcp:[::]:" + p + "\"]\n");
    ASSERT_TRUE(remote_only);
    SocketOps ops(*remote_only->profile("p"), std::nullopt);
    for (const std::string& any : {"tcp:0.0.0.0:" + p, "tcp:[::]:" + p, "tcp:[::ffff:0.0.0.0]:" + p}) {
        const SocketResult r = ops.connect(any);
        EXPECT_EQ(r.verdict.error, EACCES) << any;
        EXPECT_FALSE(r.fd) << any;
        ASSERT_TRUE(r.verdict.reached) << any;
    }
    EXPECT_EQ(ops.connect("tcp:0.0.0.0:" + p).verdict.reached->view(), "tcp:127.0.0.1:" + p);
    EXPECT_EQ(ops.connect("tcp:[::]:" + p).verdict.reached->view(), "tcp:[::1]:" + p);

    const auto local_rule = load("version = 1\n[profile.p]\nconnect = [\"tcp:127.0.0.1:" + p + "\"]\n");
    ASSERT_TRUE(local_rule);
    SocketOps local_ops(*local_rule->profile("p"), std::nullopt);
    const SocketResult r = local_ops.connect("tcp:0.0.0.0:" + p);
    EXPECT_TRUE(r.verdict.allowed);
    EXPECT_EQ(settle(r), 0);
    EXPECT_FALSE(local_ops.connect("tcp:127.0.0.1:" + p).verdict.reached);
}

int v6only(int fd) {
    int value = -1;
    socklen_t len = sizeof value;
    return ::getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &value, &len) == 0 ? value : -1;
}

TEST(SocketOps, IPv6ListenersAreIPv6OnlyUnlessTheRuleSaysDualStack) {
    if (!test::has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
    const auto policy = load(
        "version = 1\n[profile.p]\ndatagram_reach = \"any\"\n"
        "listen = [\"tcp:[::1]:0\", \"udp:[::1]:0\", { address = \"tcp:[::]:0\", dual_stack = true },\n"
        "  \"tcp:127.0.0.1:0\"]\n");
    ASSERT_TRUE(policy);
    SocketOps ops(*policy->profile("p"), std::nullopt);
    for (const char* address : {"tcp:[::1]:0", "udp:[::1]:0"}) {
        const SocketResult r = ops.listen(address, 1);
        ASSERT_EQ(r.verdict.error, 0) << address;
        EXPECT_EQ(v6only(r.fd.get()), 1) << address;
    }
    const SocketResult dual = ops.listen("tcp:[::]:0", 1);
    ASSERT_EQ(dual.verdict.error, 0);
    EXPECT_EQ(v6only(dual.fd.get()), 0);
    // An IPv4-mapped address is IPv4, granted by an IPv4 rule: its socket must take IPv4.
    const SocketResult mapped = ops.listen("tcp:[::ffff:127.0.0.1]:0", 1);
    ASSERT_EQ(mapped.verdict.error, 0);
    EXPECT_EQ(v6only(mapped.fd.get()), 0);
}

TEST_F(SocketOpsTest, AUnixConnectReachesOnlyASocket) {
    SocketOps ops(*profile_, std::nullopt);
    test::write_file(dir_ / "file.sock", "not a socket");
    EXPECT_EQ(ops.connect("unix:" + dir_ / "file.sock").verdict.error, ECONNREFUSED);
    EXPECT_EQ(ops.connect("unix:" + dir_ / "none.sock").verdict.error, ENOENT);
    const test::Server server(test::unix_listener(dir_ / "real.sock"), test::Server::Mode::echo);
    ASSERT_EQ(::symlink((dir_ / "real.sock").c_str(), (dir_ / "link.sock").c_str()), 0);
    EXPECT_EQ(ops.connect("unix:" + dir_ / "link.sock").verdict.error, ELOOP);
    const SocketResult r = ops.connect("unix:" + dir_ / "real.sock");
    ASSERT_EQ(r.verdict.error, 0);
    ASSERT_EQ(::send(r.fd.get(), "hi", 2, MSG_NOSIGNAL), 2);
    ::shutdown(r.fd.get(), SHUT_WR);
    char buf[16];
    EXPECT_EQ(::recv(r.fd.get(), buf, sizeof buf, MSG_WAITALL), 7);
    EXPECT_EQ(std::string(buf, 7), "echo:hi");
}

}  // namespace
}  // namespace fdbroker::broker
