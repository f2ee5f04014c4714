// Servers the socket tests run in-process, on loopback or unix sockets only (nothing leaves the
// machine), for workers to reach through brokered sockets.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::test {

// Listening sockets; each throws std::runtime_error when it cannot be made.
unique_fd tcp_listener(const char* ip, int backlog, int& port);  // ip "127.0.0.1" or "::1"; port chosen
unique_fd unix_listener(const std::string& path);
unique_fd abstract_listener(const std::string& name);
unique_fd udp_socket(int& port);  // bound to 127.0.0.1, port chosen

// Whether this machine has the IPv6 loopback address, ::1 (listed in /proc/net/if_inet6).
bool has_ipv6_loopback();

// A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago).
int closed_port();
// A free port below 1024 on 127.0.0.1, or 0 if none could be bound.
int free_privileged_port();
// Does the socket table (/proc/net/tcp, /proc/net/tcp6) show a connect to `port` waiting for an
// answer (SYN_SENT)?
bool syn_sent_to(int port);
// Waits (bounded, 10 s) until syn_sent_to(port) holds.
bool wait_for_syn_sent(int port);
// Connects to 127.0.0.1:port and returns the connected socket, or an empty one if the connect did
// not complete within timeout_ms (nothing is left connecting in that case).
unique_fd connect_within(int port, int timeout_ms);
// Connects to a unix path or "@abstract" name, sends `text`, shuts down its writing side and returns
// everything that comes back.
std::string exchange_unix(const std::string& where, const std::string& text);
std::string exchange_tcp(int port, const std::string& text);
std::string exchange_udp(int port, const std::string& text);

// A listener on 127.0.0.1 whose accept queue is full: a further connect gets no answer at all (the
// kernel drops its SYN), which makes a peer that never answers without leaving the machine.
class Unanswering {
  public:
    Unanswering();
    [[nodiscard]] int port() const { return port_; }

  private:
    unique_fd listener_;
    int port_ = 0;
    std::vector<unique_fd> queued_;
};

// Serves a listening stream socket (or a bound datagram socket) on its own thread until destroyed.
// echo: answers each client (stream: a connection, read to its end; datagram: one datagram) with
// "echo:" + what it sent. greet: sends each connection one byte and closes it. peer_uid: answers each
// connection with the uid the kernel reports for its peer (SO_PEERCRED), as "uid=N". peer_ids: with
// its uid, gid and supplementary groups (SO_PEERGROUPS), as "uid=N gid=N groups=A,B".
class Server {
  public:
    enum class Mode { echo, greet, peer_uid, peer_ids };
    Server(unique_fd socket, Mode mode, char greeting = '\0');
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    [[nodiscard]] int served() const { return served_; }

  private:
    void run();
    void serve_stream(int conn);
    void serve_datagram();

    unique_fd socket_;
    unique_fd stop_;
    Mode mode_;
    char greeting_;
    bool datagram_ = false;
    std::atomic<int> served_{0};
    std::thread thread_;
};

}  // namespace fdbroker::test
