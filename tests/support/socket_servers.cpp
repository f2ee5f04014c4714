#include "support/socket_servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "support/harness.hpp"
#include "support/read_all.hpp"

namespace fdbroker::test {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

socklen_t unix_address(const std::string& where, sockaddr_un& sa) {
    sa = {};
    sa.sun_family = AF_UNIX;
    if (where.size() >= sizeof sa.sun_path) throw std::runtime_error("unix address too long: " + where);
    std::memcpy(sa.sun_path, where.data(), where.size());
    if (where.starts_with('@')) {
        sa.sun_path[0] = '\0';
        return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + where.size());
    }
    return sizeof sa;
}

sockaddr_in loopback(int port) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<std::uint16_t>(port));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

int bound_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) fail("getsockname");
    return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// A client or server connection must never hang a test: reads give up after a few seconds.
void limit_waits(int fd) {
    const timeval five{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &five, sizeof five);
}

std::string send_and_read(int fd, const std::string& text) {
    limit_waits(fd);
    if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size())) fail("send");
    ::shutdown(fd, SHUT_WR);
    return read_all(fd);
}

}  // namespace

unique_fd tcp_listener(const char* ip, int backlog, int& port) {
    const bool v6 = std::strchr(ip, ':') != nullptr;
    unique_fd s(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) fail("socket");
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        ::inet_pton(AF_INET6, ip, &sin6->sin6_addr);
        len = sizeof *sin6;
    } else {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        ::inet_pton(AF_INET, ip, &sin->sin_addr);
        len = sizeof *sin;
    }
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) fail("bind");
    if (::listen(s.get(), backlog) != 0) fail("listen");
    port = bound_port(s.get());
    return s;
}

unique_fd unix_listener(const std::string& path) {
    unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa;
    const socklen_t len = unix_address(path, sa);
    if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(s.get(), 64) != 0)
        fail("unix listener " + path);
    // Reachable by any user, as the services a worker is granted are: the broker connects with the
    // worker's identity, and the socket file's permissions apply to it.
    if (path.front() != '@' && ::chmod(path.c_str(), 0666) != 0) fail("chmod " + path);
    return s;
}

unique_fd abstract_listener(const std::string& name) {
    return unix_listener("@" + name);
}

unique_fd udp_socket(int& port) {
    unique_fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const sockaddr_in sin = loopback(0);
    if (!s || ::bind(s.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) fail("udp socket");
    port = bound_port(s.get());
    return s;
}

int closed_port() {
    int port = 0;
    tcp_listener("127.0.0.1", 1, port);  // closed again at once
    return port;
}

int free_privileged_port() {
    for (int port = 1023; port >= 512; --port) {
        unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const sockaddr_in sin = loopback(port);
        if (s && ::bind(s.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) == 0) return port;
    }
    return 0;
}

bool has_ipv6_loopback() {
    return contains(read_file("/proc/net/if_inet6"), "00000000000000000000000000000001");
}

bool syn_sent_to(int port) {
    constexpr unsigned kSynSent = 2;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // the header
        while (std::getline(in, line)) {
            unsigned remote_port = 0, state = 0;
            if (std::sscanf(line.c_str(), " %*d: %*[0-9A-Fa-f]:%*x %*[0-9A-Fa-f]:%x %x", &remote_port,
                            &state) == 2 &&
                static_cast<int>(remote_port) == port && state == kSynSent)
                return true;
        }
    }
    return false;
}

bool wait_for_syn_sent(int port) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (syn_sent_to(port)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

unique_fd connect_within(int port, int timeout_ms) {
    unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const sockaddr_in sin = loopback(port);
    if (!s) fail("socket");
    if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) == 0) return s;
    if (errno != EINPROGRESS) fail("connect");
    pollfd p{s.get(), POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return {};
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0 ? std::move(s) : unique_fd();
}

std::string exchange_unix(const std::string& where, const std::string& text) {
    unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa;
    const socklen_t len = unix_address(where, sa);
    if (!s || ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) fail("connect " + where);
    return send_and_read(s.get(), text);
}

std::string exchange_tcp(int port, const std::string& text) {
    unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in sin = loopback(port);
    if (!s || ::connect(s.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0)
        fail("connect to port " + std::to_string(port));
    return send_and_read(s.get(), text);
}

std::string exchange_udp(int port, const std::string& text) {
    unique_fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const sockaddr_in sin = loopback(port);
    if (!s || ::connect(s.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0)
        fail("udp connect");
    limit_waits(s.get());
    if (::send(s.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) fail("udp send");
    char buf[4096];
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0) fail("udp recv");
    return std::string(buf, static_cast<std::size_t>(n));
}

Unanswering::Unanswering() {
    listener_ = tcp_listener("127.0.0.1", 0, port_);
    for (int i = 0; i < 16; ++i) {
        unique_fd queued = connect_within(port_, 300);
        if (!queued) return;  // this one was not answered: the queue is full
        queued_.push_back(std::move(queued));
    }
    throw std::runtime_error("the accept queue of a listener never filled");
}

Server::Server(unique_fd socket, Mode mode, char greeting)
    : socket_(std::move(socket)), stop_(::eventfd(0, EFD_CLOEXEC)), mode_(mode), greeting_(greeting) {
    int type = 0;
    socklen_t len = sizeof type;
    ::getsockopt(socket_.get(), SOL_SOCKET, SO_TYPE, &type, &len);
    datagram_ = type == SOCK_DGRAM;
    thread_ = std::thread([this] { run(); });
}

Server::~Server() {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
    thread_.join();
}

void Server::run() {
    for (;;) {
        pollfd fds[2] = {{stop_.get(), POLLIN, 0}, {socket_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[0].revents != 0) return;
        if (datagram_) {
            serve_datagram();
            continue;
        }
        unique_fd conn(::accept4(socket_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!conn) continue;
        // Accepted sockets are served blocking, with bounded waits.
        ::fcntl(conn.get(), F_SETFL, 0);
        limit_waits(conn.get());
        serve_stream(conn.get());
        ++served_;
    }
}

void Server::serve_stream(int conn) {
    if (mode_ == Mode::peer_uid) {
        ucred peer{};
        socklen_t len = sizeof peer;
        const std::string answer = ::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0
                                       ? "uid=" + std::to_string(peer.uid)
                                       : "?";
        static_cast<void>(read_all(conn));  // the client's request, as for echo
        [[maybe_unused]] ssize_t n = ::send(conn, answer.data(), answer.size(), MSG_NOSIGNAL);
        return;
    }
    if (mode_ == Mode::peer_ids) {
        ucred peer{};
        socklen_t len = sizeof peer;
        gid_t groups[64];
        socklen_t groups_len = sizeof groups;
        std::string answer = "?";
        if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 &&
            ::getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, groups, &groups_len) == 0) {
            answer = "uid=" + std::to_string(peer.uid) + " gid=" + std::to_string(peer.gid) + " groups=";
            for (std::size_t i = 0; i < groups_len / sizeof(gid_t); ++i)
                answer += (i == 0 ? "" : ",") + std::to_string(groups[i]);
        }
        static_cast<void>(read_all(conn));
        [[maybe_unused]] ssize_t n = ::send(conn, answer.data(), answer.size(), MSG_NOSIGNAL);
        return;
    }
    if (mode_ == Mode::greet) {
        [[maybe_unused]] ssize_t n = ::send(conn, &greeting_, 1, MSG_NOSIGNAL);
        return;
    }
    const std::string reply = "echo:" + read_all(conn);
    [[maybe_unused]] ssize_t n = ::send(conn, reply.data(), reply.size(), MSG_NOSIGNAL);
}

void Server::serve_datagram() {
    char buf[4096];
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const ssize_t n =
        ::recvfrom(socket_.get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) return;
    const std::string reply = "echo:" + std::string(buf, static_cast<std::size_t>(n));
    ::sendto(socket_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
    ++served_;
}

}  // namespace fdbroker::test
