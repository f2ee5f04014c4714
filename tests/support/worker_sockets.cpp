// Socket commands of the test worker. Each prints one result line ("ok ..." or an errno name):
//
//   connect ADDR                  fdbroker_connect; "ok" if the socket is close-on-exec and blocking
//   listen ADDR BACKLOG           fdbroker_listen; the same checks, and a stream socket must listen
//   echo-through ADDR TEXT        connects, sends TEXT, prints what comes back ("ok REPLY")
//   serve-once ADDR BACKLOG       listens, prints "listening PORT", answers one client (stream: one
//                                 connection, datagram: one datagram) with "served:" + what it sent
//   pending-connect ADDR FILE N   a thread connects to ADDR; the worker prints "connecting", waits for a
//                                 line on stdin, then opens FILE N times here and N times in a child,
//                                 and reports whether the connect was still in progress meanwhile
//   abandon-connect ADDR          a thread connects to ADDR; the worker prints "connecting", waits for a
//                                 line on stdin, and exits with the connect still in progress
//   connect-race ADDR N EXPECT    connects N times; each server greets with one byte, which must be
//                                 EXPECT's first byte
//   netns                         the worker's network namespace (/proc/self/ns/net)
//   sendto ADDR PORT              connects to ADDR, then sends one byte with sendto naming 127.0.0.1:PORT
//                                 and one with send; prints both outcomes ("ok" or an errno name)
#include "support/worker_sockets.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "fdbroker/fdbroker.h"
#include "fdbroker/unique_fd.hpp"
#include "support/read_all.hpp"
#include "support/worker_output.hpp"

namespace fdbroker::test {

namespace {

const char* errno_name(int e) {
    const char* name = ::strerrorname_np(e);
    return name ? name : "E?";
}

void print_errno(int e) {
    std::printf("%s\n", errno_name(e));
}

int socket_int(int fd, int option) {
    int value = -1;
    socklen_t len = sizeof value;
    ::getsockopt(fd, SOL_SOCKET, option, &value, &len);
    return value;
}

// What socket(2) + connect(2) or listen(2) would have given: close-on-exec (as the API promises),
// blocking, and listening when it is a stream socket from listen. Empty when all holds.
std::string socket_problems(int fd, bool listening) {
    std::string problems;
    if ((::fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0) problems += " not-cloexec";
    if ((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0) problems += " nonblocking";
    const bool stream = socket_int(fd, SO_TYPE) == SOCK_STREAM;
    if (listening && stream && socket_int(fd, SO_ACCEPTCONN) != 1) problems += " not-listening";
    return problems;
}

void report_socket(int fd, bool listening) {
    if (fd < 0) return print_errno(errno);
    const std::string problems = socket_problems(fd, listening);
    if (problems.empty())
        std::printf("ok\n");
    else
        std::printf("bad-socket%s\n", problems.c_str());
    ::close(fd);
}

bool is_stream(int fd) {
    return socket_int(fd, SO_TYPE) == SOCK_STREAM;
}

void echo_through(const std::string& address, const std::string& text) {
    const unique_fd sock(fdbroker_connect(address.c_str()));
    if (!sock) return print_errno(errno);
    if (::send(sock.get(), text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
        return print_errno(errno);
    std::string reply;
    if (is_stream(sock.get())) {
        ::shutdown(sock.get(), SHUT_WR);
        reply = read_all(sock.get());
    } else {
        char buf[4096];
        const ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
        if (n < 0) return print_errno(errno);
        reply.assign(buf, static_cast<std::size_t>(n));
    }
    std::printf("ok %s\n", reply.c_str());
}

void serve_once(const std::string& address, int backlog) {
    const unique_fd sock(fdbroker_listen(address.c_str(), backlog));
    if (!sock) return print_errno(errno);
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    int port = 0;
    if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&local), &len) == 0) {
        if (local.ss_family == AF_INET) port = ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
        if (local.ss_family == AF_INET6) port = ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
    }
    std::printf("listening %d\n", port);
    std::fflush(stdout);
    std::string got;
    if (is_stream(sock.get())) {
        const unique_fd conn(::accept4(sock.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) return print_errno(errno);
        got = read_all(conn.get());
        const std::string answer = "served:" + got;
        if (::send(conn.get(), answer.data(), answer.size(), MSG_NOSIGNAL) < 0) return print_errno(errno);
    } else {
        char buf[4096];
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        const ssize_t n =
            ::recvfrom(sock.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
        if (n < 0) return print_errno(errno);
        got.assign(buf, static_cast<std::size_t>(n));
        const std::string answer = "served:" + got;
        if (::sendto(sock.get(), answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                     peer_len) < 0)
            return print_errno(errno);
    }
    std::printf("ok served %s\n", got.c_str());
}

// The broker must go on serving while a connect of this very process waits for an answer that never
// comes: the opens (on this process's channel, and on a child's own) must all finish while the connect
// is still in progress, and the connect must end with ETIMEDOUT after the profile's connect_timeout.
void pending_connect(const std::string& address, const std::string& path, int count) {
    std::atomic<bool> connect_done{false};
    int connect_errno = 0;
    std::thread connector([&] {
        const int fd = fdbroker_connect(address.c_str());
        connect_errno = fd < 0 ? errno : 0;
        if (fd >= 0) ::close(fd);
        connect_done = true;
    });
    // The test answers once it sees the broker's connect on the wire.
    std::printf("connecting\n");
    std::fflush(stdout);
    char line[16];
    [[maybe_unused]] char* got = std::fgets(line, sizeof line, stdin);

    const pid_t child = ::fork();
    if (child == 0) ::_exit(open_many(path, count) == 0 ? 0 : 1);
    const int failures = open_many(path, count);
    int status = -1;
    ::waitpid(child, &status, 0);
    const bool ended_meanwhile = connect_done.load();
    connector.join();
    std::printf("ok opens-failed=%d child=%s connect-ended-during-opens=%d connect=%s\n", failures,
                WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "fail", ended_meanwhile ? 1 : 0,
                connect_errno == 0 ? "connected" : errno_name(connect_errno));
}

void abandon_connect(const std::string& address) {
    std::thread([address] { static_cast<void>(fdbroker_connect(address.c_str())); }).detach();
    std::printf("connecting\n");
    std::fflush(stdout);
    char line[16];
    [[maybe_unused]] char* got = std::fgets(line, sizeof line, stdin);
    ::_exit(0);
}

void connect_race(const std::string& address, int count, char expect) {
    int connected = 0, refused = 0, wrong = 0;
    for (int i = 0; i < count; ++i) {
        const unique_fd sock(fdbroker_connect(address.c_str()));
        if (!sock) {
            ++refused;
            continue;
        }
        ++connected;
        char greeting = 0;
        if (::read(sock.get(), &greeting, 1) != 1 || greeting != expect) ++wrong;
    }
    std::printf("%s connected=%d refused=%d wrong=%d\n", wrong == 0 ? "ok" : "fail", connected, refused,
                wrong);
}

// A socket the worker holds, aimed elsewhere with sendto's address: the filter must refuse the address
// (a datagram socket would deliver to it), while a plain send still works.
void sendto_elsewhere(const std::string& address, int port) {
    const unique_fd sock(fdbroker_connect(address.c_str()));
    if (!sock) return print_errno(errno);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const ssize_t aimed =
        ::sendto(sock.get(), "x", 1, MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    const int aimed_errno = errno;
    const ssize_t plain = ::send(sock.get(), "y", 1, MSG_NOSIGNAL);
    std::printf("%s %s\n", aimed == 1 ? "ok" : errno_name(aimed_errno),
                plain == 1 ? "ok" : errno_name(errno));
}

void netns() {
    char buf[64];
    const ssize_t n = ::readlink("/proc/self/ns/net", buf, sizeof buf);
    if (n < 0) return print_errno(errno);
    std::printf("ok %.*s\n", static_cast<int>(n), buf);
}

}  // namespace

bool run_socket_command(const std::vector<std::string>& a) {
    const std::string& cmd = a[0];
    if (cmd == "connect") {
        report_socket(fdbroker_connect(arg(a, 1).c_str()), false);
    } else if (cmd == "listen") {
        report_socket(fdbroker_listen(arg(a, 1).c_str(), std::atoi(arg(a, 2).c_str())), true);
    } else if (cmd == "echo-through") {
        echo_through(arg(a, 1), arg(a, 2));
    } else if (cmd == "serve-once") {
        serve_once(arg(a, 1), std::atoi(arg(a, 2).c_str()));
    } else if (cmd == "pending-connect") {
        pending_connect(arg(a, 1), arg(a, 2), std::atoi(arg(a, 3).c_str()));
    } else if (cmd == "abandon-connect") {
        abandon_connect(arg(a, 1));
    } else if (cmd == "connect-race") {
        connect_race(arg(a, 1), std::atoi(arg(a, 2).c_str()), arg(a, 3).empty() ? '\0' : arg(a, 3)[0]);
    } else if (cmd == "netns") {
        netns();
    } else if (cmd == "sendto") {
        sendto_elsewhere(arg(a, 1), std::atoi(arg(a, 2).c_str()));
    } else {
        return false;
    }
    return true;
}

}  // namespace fdbroker::test
