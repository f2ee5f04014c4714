// Channel: frames, fds and credentials over a real SOCK_SEQPACKET socketpair, and the violations
// that must close everything that came with them.
#include "proto/channel.hpp"
#include "support/harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace fdbroker::proto {
namespace {

struct Pair {
    unique_fd a;
    unique_fd b;
};

Pair seqpacket_pair(int extra_flags = 0) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | extra_flags, 0, sv), 0);
    return {unique_fd(sv[0]), unique_fd(sv[1])};
}

std::span<const std::byte> bytes(std::string_view s) {
    return std::as_bytes(std::span(s));
}

std::string text(std::span<const std::byte> b, std::size_t n) {
    return std::string(reinterpret_cast<const char*>(b.data()), n);
}

using test::count_open_fds;

// The descriptors a receive set apart rather than handed out.
std::size_t unwanted(const Received& r) {
    return r.fds.held();
}

unique_fd open_null() {
    return unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

TEST(ReceivedFds, ClosesWhatIsNotTakenAndHandsOwnershipOnWhenMoved) {
    const int before = count_open_fds();
    unique_fd kept;
    {
        ReceivedFds a;
        for (int i = 0; i < 3; ++i)
            a.push(open_null());
        EXPECT_EQ(a.size(), 3U);
        EXPECT_EQ(a.held(), 3U);
        kept = a.take(1);
        EXPECT_TRUE(kept);
        EXPECT_FALSE(a.take(1)) << "a slot is taken once";
        EXPECT_EQ(a.held(), 2U);
        ReceivedFds b(std::move(a));
        EXPECT_EQ(b.held(), 2U);
        ReceivedFds c;
        c.push(open_null());
        c = std::move(b);  // c's own descriptor closes
        EXPECT_EQ(c.held(), 2U);
        EXPECT_EQ(count_open_fds(), before + 3);
    }
    EXPECT_EQ(count_open_fds(), before + 1) << "only the descriptor taken outlives them";
}

TEST(ReceivedFds, ADescriptorBeyondItsSlotsIsClosed) {
    const int before = count_open_fds();
    {
        ReceivedFds fds;
        while (!fds.full())
            fds.push(open_null());
        EXPECT_EQ(fds.size(), kMaxReceivedFds);
        fds.push(open_null());
        EXPECT_EQ(fds.size(), kMaxReceivedFds);
        EXPECT_EQ(count_open_fds(), before + static_cast<int>(kMaxReceivedFds));
    }
    EXPECT_EQ(count_open_fds(), before);
}

// sendmsg with any number of fds in one SCM_RIGHTS message, which send() deliberately cannot do.
ssize_t send_fds(int sock, std::string_view frame, const std::vector<int>& fds) {
    std::vector<unsigned char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    iovec iov{const_cast<char*>(frame.data()), frame.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    return ::sendmsg(sock, &msg, MSG_NOSIGNAL);
}

TEST(Channel, FrameFdAndCredentialsRoundTrip) {
    Pair p = seqpacket_pair();
    enable_credentials(p.b.get(), false);
    int pipefd[2];
    ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    unique_fd rd(pipefd[0]), wr(pipefd[1]);
    const Credentials me = own_credentials();
    ASSERT_EQ(send(p.a.get(), bytes("hello"), {.credentials = &me, .fd = wr.get()}), 0);
    wr.reset();

    std::array<std::byte, 64> buf;
    Received r = receive(p.b.get(), buf, 0, 1);
    ASSERT_EQ(r.status, RecvStatus::ok) << r.why;
    EXPECT_EQ(text(buf, r.size), "hello");
    ASSERT_TRUE(r.fd);
    EXPECT_EQ(::fcntl(r.fd.get(), F_GETFD), FD_CLOEXEC) << "received fds are always close-on-exec";
    ASSERT_EQ(::write(r.fd.get(), "x", 1), 1);  // the write end of our own pipe
    char c = 0;
    EXPECT_EQ(::read(rd.get(), &c, 1), 1);
    EXPECT_EQ(c, 'x');
    ASSERT_TRUE(r.credentials);
    EXPECT_EQ(r.credentials->pid, ::getpid());
    EXPECT_EQ(r.credentials->uid, ::getuid());
    EXPECT_EQ(r.credentials->gid, ::getgid());
}

TEST(Channel, KernelSuppliesCredentialsTheSenderOmits) {
    Pair p = seqpacket_pair();
    enable_credentials(p.b.get(), false);
    ASSERT_EQ(send(p.a.get(), bytes("x"), {}), 0);
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 0);
    ASSERT_EQ(r.status, RecvStatus::ok);
    ASSERT_TRUE(r.credentials);
    EXPECT_EQ(r.credentials->pid, ::getpid());
    EXPECT_EQ(r.credentials->uid, ::getuid());
    EXPECT_EQ(r.credentials->gid, ::getgid());
}

TEST(Channel, NoCredentialsWithoutPassCred) {
    Pair p = seqpacket_pair();
    const Credentials me = own_credentials();
    ASSERT_EQ(send(p.a.get(), bytes("x"), {.credentials = &me}), 0);
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 0);
    ASSERT_EQ(r.status, RecvStatus::ok);
    EXPECT_FALSE(r.credentials);
}

TEST(Channel, PidfdArrivesWhenAsked) {
    Pair p = seqpacket_pair();
    if (!enable_credentials(p.b.get(), true)) GTEST_SKIP() << "kernel without SO_PASSPIDFD (before 6.5)";
    ASSERT_EQ(send(p.a.get(), bytes("x"), {}), 0);
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 0);
    ASSERT_EQ(r.status, RecvStatus::ok) << r.why;
    ASSERT_TRUE(r.credentials);
    ASSERT_TRUE(r.pidfd);
    EXPECT_NE(::fcntl(r.pidfd.get(), F_GETFD) & FD_CLOEXEC, 0);
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(r.pidfd.get()));
    std::string line;
    bool found = false;
    while (std::getline(info, line)) {
        if (line.rfind("Pid:", 0) == 0) {
            EXPECT_EQ(std::stoi(line.substr(4)), ::getpid());
            found = true;
        }
    }
    EXPECT_TRUE(found);
}

TEST(Channel, FrameLargerThanBufferIsAViolation) {
    Pair p = seqpacket_pair();
    const int before = count_open_fds();
    {
        unique_fd null = open_null();
        ASSERT_EQ(send(p.a.get(), bytes("0123456789"), {.fd = null.get()}), 0);
    }
    std::array<std::byte, 9> buf;
    Received r = receive(p.b.get(), buf, 0, 1);
    EXPECT_EQ(r.status, RecvStatus::violation);
    EXPECT_FALSE(r.fd);
    EXPECT_EQ(unwanted(r), 1u);
    r = Received{};  // set apart, they close with it
    EXPECT_EQ(count_open_fds(), before);
}

TEST(Channel, MoreFdsThanAllowedAreAViolationAndSetApart) {
    Pair p = seqpacket_pair();
    const int before = count_open_fds();
    {
        unique_fd f1 = open_null(), f2 = open_null(), f3 = open_null();
        ASSERT_EQ(send_fds(p.a.get(), "frame", {f1.get(), f2.get(), f3.get()}), 5);
    }
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 1);
    EXPECT_EQ(r.status, RecvStatus::violation);
    EXPECT_FALSE(r.fd);
    EXPECT_EQ(unwanted(r), 3u);
    r = Received{};  // set apart, they close with it
    EXPECT_EQ(count_open_fds(), before);
}

TEST(Channel, FdsBeyondTheControlBufferAreAViolationAndSetApart) {
    Pair p = seqpacket_pair();
    const int before = count_open_fds();
    {
        std::vector<unique_fd> owned;
        std::vector<int> fds;
        for (int i = 0; i < 64; ++i) {
            owned.push_back(open_null());
            fds.push_back(owned.back().get());
        }
        ASSERT_EQ(send_fds(p.a.get(), "frame", fds), 5);
    }
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 1);
    EXPECT_EQ(r.status, RecvStatus::violation);
    EXPECT_GT(unwanted(r), 0u);
    r = Received{};  // set apart, they close with it
    EXPECT_EQ(count_open_fds(), before);
}

TEST(Channel, AnFdWhenNoneIsAllowedIsAViolationAndSetApart) {
    Pair p = seqpacket_pair();
    const int before = count_open_fds();
    {
        unique_fd null = open_null();
        ASSERT_EQ(send(p.a.get(), bytes("frame"), {.fd = null.get()}), 0);
    }
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 0);
    EXPECT_EQ(r.status, RecvStatus::violation);
    EXPECT_FALSE(r.fd);
    EXPECT_EQ(unwanted(r), 1u);
    r = Received{};  // set apart, they close with it
    EXPECT_EQ(count_open_fds(), before);
}

TEST(Channel, UnexpectedControlMessageIsAViolationAndFdsAreSetApart) {
    Pair p = seqpacket_pair();
    const int on = 1;
    // Unix sockets deliver SCM_TIMESTAMP when asked: a control message the protocol never uses.
    ASSERT_EQ(::setsockopt(p.b.get(), SOL_SOCKET, SO_TIMESTAMP, &on, sizeof on), 0);
    const int before = count_open_fds();
    {
        unique_fd null = open_null();
        ASSERT_EQ(send(p.a.get(), bytes("frame"), {.fd = null.get()}), 0);
    }
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 1);
    EXPECT_EQ(r.status, RecvStatus::violation);
    EXPECT_FALSE(r.fd);
    EXPECT_EQ(unwanted(r), 1u);
    r = Received{};  // set apart, they close with it
    EXPECT_EQ(count_open_fds(), before);
}

TEST(Channel, ForgedPidIsRefusedByTheKernel) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to an unprivileged uid in a child";
    Pair p = seqpacket_pair();
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(10);
        const Credentials forged_pid{parent, 65534, 65534};
        if (send(p.a.get(), bytes("x"), {.credentials = &forged_pid}) != EPERM) ::_exit(11);
        const Credentials forged_uid{::getpid(), 0, 65534};
        if (send(p.a.get(), bytes("x"), {.credentials = &forged_uid}) != EPERM) ::_exit(12);
        const Credentials honest = own_credentials();
        if (send(p.a.get(), bytes("honest"), {.credentials = &honest}) != 0) ::_exit(13);
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    // Only the honest frame got through.
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, MSG_DONTWAIT, 0);
    ASSERT_EQ(r.status, RecvStatus::ok);
    EXPECT_EQ(text(buf, r.size), "honest");
    EXPECT_EQ(receive(p.b.get(), buf, MSG_DONTWAIT, 0).status, RecvStatus::would_block);
}

TEST(Channel, EndOfFile) {
    Pair p = seqpacket_pair();
    p.a.reset();
    std::array<std::byte, 16> buf;
    EXPECT_EQ(receive(p.b.get(), buf, 0, 1).status, RecvStatus::eof);
}

TEST(Channel, EmptyMessageIsEndOfFileAndItsFdIsSetApart) {
    Pair p = seqpacket_pair();
    const int before = count_open_fds();
    {
        unique_fd null = open_null();
        ASSERT_EQ(send(p.a.get(), {}, {.fd = null.get()}), 0);
    }
    std::array<std::byte, 16> buf;
    Received r = receive(p.b.get(), buf, 0, 1);
    EXPECT_EQ(r.status, RecvStatus::eof);
    EXPECT_FALSE(r.fd);
    EXPECT_EQ(unwanted(r), 1u);
    r = Received{};  // set apart, they close with it
    EXPECT_EQ(count_open_fds(), before);
}

TEST(Channel, WouldBlock) {
    Pair p = seqpacket_pair(SOCK_NONBLOCK);
    std::array<std::byte, 16> buf;
    EXPECT_EQ(receive(p.b.get(), buf, 0, 1).status, RecvStatus::would_block);
    Pair q = seqpacket_pair();
    EXPECT_EQ(receive(q.b.get(), buf, MSG_DONTWAIT, 1).status, RecvStatus::would_block);
}

TEST(Channel, ReceiveErrorIsReported) {
    std::array<std::byte, 16> buf;
    unique_fd null = open_null();
    Received r = receive(null.get(), buf, 0, 1);
    EXPECT_EQ(r.status, RecvStatus::error);
    EXPECT_EQ(r.error, ENOTSOCK);
}

TEST(Channel, SendToAClosedPeerIsAnErrorNotSigpipe) {
    Pair p = seqpacket_pair();
    p.b.reset();
    // SIGPIPE keeps its default action: were it raised, this test process would die.
    const int err = send(p.a.get(), bytes("x"), {});
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET || err == ENOTCONN) << err;
}

}  // namespace
}  // namespace fdbroker::proto
