// SocketOps without a worker: what each request is judged by, the sockets it makes, a connect that
// cannot finish at once handed back as pending, and what a unix listener leaves in the file system.
#include "broker/socket_ops.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "support/harness.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::broker {
namespace {

std::shared_ptr<const policy::Policy> load(const std::string& text) {
    const policy::LoadResult result = policy::Policy::load_string(text, "p.toml");
    for (const auto& d : result.errors)
        ADD_FAILURE() << d.str();
    return result.policy;
}

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

TEST_F(SocketOpsTest, AUnixConnectTakesTheServersSocketType) {
    SocketOps ops(*profile_, std::nullopt);
    for (const int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
        const std::string path = dir_ / (type == SOCK_DGRAM ? "dgram.sock" : "seqpacket.sock");
        const unique_fd server(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        path.copy(sa.sun_path, sizeof sa.sun_path - 1);
        ASSERT_EQ(::bind(server.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        if (type == SOCK_SEQPACKET) {
            ASSERT_EQ(::listen(server.get(), 1), 0);
        }
        const SocketResult r = ops.connect("unix:" + path);
        ASSERT_EQ(r.verdict.error, 0) << path;
        int got = 0;
        socklen_t len = sizeof got;
        ASSERT_EQ(::getsockopt(r.fd.get(), SOL_SOCKET, SO_TYPE, &got, &len), 0);
        EXPECT_EQ(got, type) << path;
    }
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
