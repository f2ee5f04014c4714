// The test worker's fault commands: processes that die, stall or send what the broker must not keep,
// while others go on asking.
//
//   killed-mid-request PATH N   N times: a child opens PATH in a loop and is SIGKILLed while busy
//   stall-while-busy PATH N     a child floods its channel with requests and never reads a reply;
//                               meanwhile this process opens PATH N times
//   unexpected-fd PATH          sends a request carrying a pipe's write end: "fd-closed" once the
//                               broker has closed its copy (the read end sees EOF)
//   in-flight PATH              keeps up to 16 stat requests outstanding until the broker stops taking
//                               them; "ok answered=N lost=M bad=B": lost counts requests the broker
//                               accepted (the send succeeded) but never answered
#include "support/worker_faults.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "client/connection.hpp"
#include "fdbroker/fdbroker.h"
#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/worker_output.hpp"

namespace fdbroker::test {

namespace {

void killed_mid_request(const std::string& path, int rounds) {
    int killed = 0;
    for (int i = 0; i < rounds; ++i) {
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return print_errno(errno);
        const unique_fd ready(pipe_fds[0]);
        unique_fd ready_w(pipe_fds[1]);
        const pid_t child = ::fork();
        if (child == 0) {
            // Tell the parent once the channel is busy, then keep it busy until killed.
            open_many(path, 10);
            [[maybe_unused]] ssize_t n = ::write(ready_w.get(), "r", 1);
            for (;;)
                open_many(path, 1);
        }
        ready_w.reset();
        char byte;
        if (::read(ready.get(), &byte, 1) == 1) ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++killed;
    }
    std::printf("killed %d\n", killed);
}

void stall_while_busy(const std::string& path, int count) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return print_errno(errno);
    unique_fd flooded(pipe_fds[0]), flooded_w(pipe_fds[1]);
    const pid_t child = ::fork();
    if (child == 0) {
        flooded.reset();
        const unique_fd channel = attach_raw();
        const proto::Credentials me = proto::own_credentials();
        proto::SendOptions options;
        options.credentials = &me;
        options.flags = MSG_DONTWAIT;
        wire::Request req;
        req.op = wire::Op::stat;
        req.path = path;
        std::array<std::byte, wire::kMaxRequestSize> frame;
        int sent = 0;
        // Until the socket is full in both directions: the broker's replies pile up unread.
        for (; channel && sent < 100000; ++sent) {
            req.id = static_cast<std::uint32_t>(sent + 1);
            const std::size_t size = wire::encode_request(req, frame);
            if (proto::send(channel.get(), std::span(frame.data(), size), options) != 0) break;
        }
        [[maybe_unused]] ssize_t n = ::write(flooded_w.get(), "f", 1);
        ::pause();  // holds the channel, never reading, until killed
        ::_exit(0);
    }
    flooded_w.reset();
    char byte;
    const bool stalled = ::read(flooded.get(), &byte, 1) == 1;
    const int failures = open_many(path, count);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    std::printf("%s failures=%d\n", stalled && failures == 0 ? "ok" : "fail", failures);
}

void unexpected_fd(const std::string& path) {
    const unique_fd channel = attach_raw();
    if (!channel) return std::printf("attach-failed\n"), void();
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return print_errno(errno);
    const unique_fd probe(pipe_fds[0]);
    unique_fd carried(pipe_fds[1]);
    wire::Request req;
    req.op = wire::Op::stat;
    req.id = 1;
    req.path = path;
    std::array<std::byte, wire::kMaxRequestSize> frame;
    const std::size_t size = wire::encode_request(req, frame);
    const proto::Credentials me = proto::own_credentials();
    proto::SendOptions options;
    options.credentials = &me;
    options.fd = carried.get();
    if (proto::send(channel.get(), std::span(frame.data(), size), options) != 0) return print_errno(errno);
    carried.reset();
    // The read end reaches EOF only when no write end is left anywhere, the broker's copy included.
    pollfd p{probe.get(), POLLIN, 0};
    const bool closed = ::poll(&p, 1, 60'000) == 1 && ::read(probe.get(), pipe_fds, 1) == 0;
    std::printf("%s\n", closed ? "fd-closed" : "fd-kept");
}

void in_flight(const std::string& path) {
    const unique_fd channel = attach_raw();
    if (!channel) return std::printf("attach-failed\n"), void();
    const proto::Credentials me = proto::own_credentials();
    proto::SendOptions options;
    options.credentials = &me;
    wire::Request req;
    req.op = wire::Op::stat;
    req.path = path;
    std::array<std::byte, wire::kMaxRequestSize> frame;
    std::array<std::byte, wire::kMaxReplySize + 1> buf;
    int outstanding = 0, answered = 0, lost = 0, bad = 0;
    bool sending = true;
    for (std::uint32_t id = 1;;) {
        while (sending && outstanding < 16) {
            req.id = id++;
            const std::size_t size = wire::encode_request(req, frame);
            if (proto::send(channel.get(), std::span(frame.data(), size), options) != 0)
                sending = false;  // EPIPE: the broker takes no more requests
            else
                ++outstanding;
        }
        if (outstanding == 0) break;
        const proto::Received r = proto::receive(channel.get(), buf, 0, 0);
        if (r.status != proto::RecvStatus::ok) {
            lost = outstanding;
            break;
        }
        const wire::DecodedReply reply = wire::decode_reply(std::span(buf.data(), r.size));
        if (!reply.reply || reply.reply->result != 0) ++bad;
        --outstanding;
        if (++answered == 1) {
            std::printf("started\n");
            std::fflush(stdout);
        }
    }
    std::printf("ok answered=%d lost=%d bad=%d\n", answered, lost, bad);
}

}  // namespace

unique_fd attach_raw() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return {};
    unique_fd mine(pair[0]), theirs(pair[1]);
    std::array<std::byte, wire::kRequestHeaderSize> attach{};
    wire::Request req;
    req.op = wire::Op::attach;
    req.id = 1;
    const std::size_t size = wire::encode_request(req, attach);
    const proto::Credentials me = proto::own_credentials();
    proto::SendOptions options;
    options.fd = theirs.get();
    options.credentials = &me;
    // FDBROKER_FD under `fdbroker run`, a connection to FDBROKER_SOCKET under `fdbroker serve`.
    unique_fd bootstrap;
    if (open_bootstrap(BootstrapSource::from_environment(), bootstrap) != 0) return {};
    const int rc = proto::send(bootstrap.get(), std::span(attach.data(), size), options);
    if (std::getenv("FDBROKER_FD") != nullptr) static_cast<void>(bootstrap.release());  // inherited: keep it
    if (rc != 0) return {};
    theirs.reset();
    std::array<std::byte, wire::kMaxReplySize + 1> buf;
    const proto::Received r = proto::receive(mine.get(), buf, 0, 0);
    if (r.status != proto::RecvStatus::ok) return {};
    const wire::DecodedReply reply = wire::decode_reply(std::span(buf.data(), r.size));
    if (!reply.reply || reply.reply->result != 0) {
        errno = reply.reply ? -reply.reply->result : EPROTO;
        return {};
    }
    return mine;
}

bool run_fault_command(const std::vector<std::string>& a) {
    const std::string& cmd = a[0];
    if (cmd == "killed-mid-request")
        killed_mid_request(arg(a, 1), std::atoi(arg(a, 2).c_str()));
    else if (cmd == "stall-while-busy")
        stall_while_busy(arg(a, 1), std::atoi(arg(a, 2).c_str()));
    else if (cmd == "unexpected-fd")
        unexpected_fd(arg(a, 1));
    else if (cmd == "in-flight")
        in_flight(arg(a, 1));
    else
        return false;
    return true;
}

}  // namespace fdbroker::test
