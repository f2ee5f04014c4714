// The sockets the broker opens for workers: connect and listen, judged by the profile's socket rules
// (docs/policy.md, "Socket rules"). Every socket is created SOCK_NONBLOCK | SOCK_CLOEXEC so that the
// broker never waits on the network; a TCP connect that cannot finish at once is handed back as
// pending, for the event loop to watch (pending_connect.hpp). A socket is made blocking again just
// before the worker gets it, since the worker expects what socket(2) and connect(2) would give it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/ops/file_ops.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

// The outcome of a socket request's policy check, for the reply and the audit line.
struct SocketVerdict {
    bool allowed = false;
    const policy::AddressRule* rule = nullptr;  // the granting rule
    const policy::Rule* deny = nullptr;         // a `deny` pattern that refused a unix socket path
    int error = 0;                              // errno for the worker; 0 = success
    // connect: the address judged and reached, when it is not the one asked for (0.0.0.0 and [::]
    // reach the local host); the audit line names it.
    std::optional<policy::InetText> reached;
};

struct SocketResult {
    SocketVerdict verdict;
    unique_fd fd;          // the socket for the worker; while pending, the socket still connecting
    bool pending = false;  // a TCP connect in progress: wait for fd to become writable
};

class SocketOps {
  public:
    SocketOps(const policy::Profile& profile, std::optional<FileOwner> owner)
        : profile_(&profile), owner_(owner) {}

    // The address `text` is written like a rule's. A unix connect whose server is a datagram socket is
    // refused (EACCES, logged) unless the profile says `datagram_reach = "any"`. Unix connects and listens
    // are made with the worker's effective ids, so that the peer's SO_PEERCRED names the worker.
    SocketResult connect(std::string_view text) const noexcept;
    SocketResult listen(std::string_view text, int backlog) const noexcept;

    // Transparent mode: connects or binds the worker's own socket `sock` (taken with pidfd_getfd) to
    // the address `text`, written like a rule's, judged by the connect or listen rules. The socket keeps the
    // worker's flags, so a connect on a non-blocking socket may fail with EINPROGRESS. An IPv6 socket is
    // bound IPv6-only unless its rule says `dual_stack`.
    SocketVerdict connect_socket(std::string_view text, int sock) const noexcept;
    // A unix path needs create on it (the socket file is a file; listen(2) asks the listen rules), and
    // is bound with the worker's identity and `umask`, as the caller's own bind(2) would make the socket
    // file. Any other address needs a listen rule.
    SocketVerdict bind_socket(std::string_view text, int sock, mode_t umask = 022) const noexcept;
    // Listens on `sock` if the listen rules grant address `text` (the socket's own, bound already).
    SocketVerdict listen_socket(std::string_view text, int sock, int backlog) const noexcept;
    // The path a unix socket was bound to by its last component alone (a path too long for sun_path),
    // which its own name no longer says; nothing for any other socket.
    [[nodiscard]] static std::optional<std::string> bound_path(int sock) noexcept;

    // For a pending connect whose socket became writable (or failed): 0 when connected, the
    // connect's errno when it failed, EINPROGRESS when it is in fact still connecting.
    [[nodiscard]] static int connect_outcome(int fd) noexcept;
    // Clears O_NONBLOCK, so that the worker's socket behaves like one from socket(2). 0 or errno.
    [[nodiscard]] static int make_blocking(int fd) noexcept;

  private:
    int bind_unix_path(const policy::SocketAddress& address, int sock, mode_t umask) const noexcept;
    // Parses text into address and judges it (Profile::decide_socket): EINVAL when malformed, EACCES
    // when not granted. For a connect, an unspecified address is first replaced by the loopback
    // address it reaches.
    SocketVerdict judge(policy::SocketUse use, std::string_view text,
                        policy::SocketAddress& address) const noexcept;
    void refuse_datagram(SocketVerdict& verdict, std::string_view text) const noexcept;
    static int connect_inet(const policy::SocketAddress& address, SocketResult& result) noexcept;
    static int listen_inet(const policy::SocketAddress& address, const policy::AddressRule& rule, int backlog,
                           unique_fd& out) noexcept;
    int listen_abstract(const policy::SocketAddress& address, int backlog, unique_fd& out) const noexcept;
    int listen_unix_path(const policy::SocketAddress& address, const policy::SocketFile& file, int backlog,
                         unique_fd& out) const noexcept;
    int own_socket_file(int dir, const char* name, const policy::SocketFile& file) const noexcept;

    const policy::Profile* profile_;
    std::optional<FileOwner> owner_;
};

}  // namespace fdbroker::broker
