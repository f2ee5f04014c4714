#include "broker/socket_ops.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "broker/path_buffer.hpp"
#include "policy/path.hpp"

namespace fdbroker::broker {

namespace {

using policy::SocketAddress;
using policy::Transport;

constexpr int kSocketFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

// openat2 from the root with no symlink anywhere on the way (RESOLVE_NO_SYMLINKS also refuses /proc
// magic links): the path reached is exactly the path judged, however the tree is rearranged meanwhile.
unique_fd open_no_symlinks(std::string_view path, std::uint64_t flags) noexcept {
    PathBuffer z;
    if (!z.assign(path)) {
        errno = ENAMETOOLONG;
        return {};
    }
    open_how how{};
    how.flags = flags | O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS;
    return unique_fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, z.c_str(), &how, sizeof how)));
}

socklen_t inet_address(const SocketAddress& a, sockaddr_storage& storage) noexcept {
    storage = {};
    if (a.ipv6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a.port);
        std::memcpy(&sin6->sin6_addr, a.ip.data(), 16);
        return sizeof *sin6;
    }
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    std::memcpy(&sin->sin_addr, a.ip.data(), 4);
    return sizeof *sin;
}

// A unix address for a path (NUL-terminated) or an abstract name (after a leading NUL). False when it
// does not fit in sun_path.
bool unix_address(std::string_view name, bool abstract, sockaddr_un& sa, socklen_t& len) noexcept {
    sa = {};
    sa.sun_family = AF_UNIX;
    if (name.empty() || name.size() > sizeof sa.sun_path - 1) return false;
    const std::size_t start = abstract ? 1 : 0;
    std::memcpy(sa.sun_path + start, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + start + name.size() + (abstract ? 0 : 1));
    return true;
}

// The address of a unix socket file by its descriptor (/proc/self/fd/N) rather than by name, so that
// the file judged is the file reached: a path swapped for a symlink meanwhile fails at openat2. `file`
// holds the socket file open and must outlive the connect. Returns an errno: ECONNREFUSED, as
// connect(2) says it, for a file that is not a socket.
int unix_path_by_descriptor(std::string_view path, unique_fd& file, sockaddr_un& sa,
                            socklen_t& len) noexcept {
    file = open_no_symlinks(path, 0);
    struct ::stat st {};
    if (!file || ::fstat(file.get(), &st) != 0) return errno;
    if (!S_ISSOCK(st.st_mode)) return ECONNREFUSED;
    char proc[32];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", file.get());
    static_cast<void>(unix_address(proc, false, sa, len));  // always fits
    return 0;
}

// For the length of a unix connect, a root broker takes the worker's effective uid and gid: the kernel
// records the connecting process's effective ids as the server's SO_PEERCRED, and checks the socket
// file's permissions with them, so a server that authenticates its peer (D-Bus, PostgreSQL's "peer")
// sees the worker rather than root. The broker is single-threaded, so nothing else runs meanwhile.
class WorkerEffectiveIds {
  public:
    explicit WorkerEffectiveIds(const std::optional<Owner>& owner) noexcept {
        if (!owner || ::geteuid() != 0) return;
        if (::setegid(owner->gid) != 0) return;
        switched_ = true;
        if (::seteuid(owner->uid) != 0) restore();
    }
    ~WorkerEffectiveIds() { restore(); }
    WorkerEffectiveIds(const WorkerEffectiveIds&) = delete;
    WorkerEffectiveIds& operator=(const WorkerEffectiveIds&) = delete;

  private:
    void restore() noexcept {
        if (!switched_) return;
        switched_ = false;
        // Going back cannot fail for a process whose saved uid is 0; if it ever did, continuing
        // would mean serving every worker with the wrong identity.
        if (::seteuid(0) != 0 || ::setegid(0) != 0) std::abort();
    }
    bool switched_ = false;
};

// Connects to a unix socket of whatever type its server uses: stream, seqpacket or datagram (a
// datagram socket such as /dev/log refuses the others with EPROTOTYPE).
int connect_unix(const sockaddr_un& sa, socklen_t len, unique_fd& out) noexcept {
    int err = EPROTOTYPE;
    for (const int type : {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM}) {
        unique_fd sock(::socket(AF_UNIX, type | kSocketFlags, 0));
        if (!sock) return errno;
        if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) == 0) {
            out = std::move(sock);
            return 0;
        }
        err = errno;
        if (err != EPROTOTYPE) break;
    }
    return err;
}

// The socket file at dir/name, if it is the one a bind of ours just made: a socket owned by the broker
// with no other name. Whatever a worker that may write the directory put there instead is left alone.
unique_fd our_socket_file(int dir, const char* name) noexcept {
    unique_fd file(::openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct ::stat st {};
    if (!file || ::fstat(file.get(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid() ||
        st.st_nlink != 1)
        return {};
    return file;
}

}  // namespace

int SocketOps::connect_outcome(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    if (err != 0) return err;
    // Writable with no error but not connected: a spurious wake-up; keep waiting.
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0)
        return errno == ENOTCONN ? EINPROGRESS : errno;
    return 0;
}

int SocketOps::make_blocking(int fd) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) return errno;
    return 0;
}

SocketVerdict SocketOps::judge(const std::vector<policy::AddressRule>& rules, std::string_view text,
                               SocketAddress& address) const noexcept {
    if (!policy::parse_socket_address(text, address)) return {false, nullptr, nullptr, EINVAL};
    if (address.transport == Transport::unix_path) {
        // A unix socket path is a path: a `deny` pattern refuses it as it refuses a file there.
        const policy::Decision files = profile_->decide(address.name, policy::need_any);
        if (!files.allowed && files.rule != nullptr && files.rule->kind == policy::RuleKind::deny)
            return {false, nullptr, files.rule, EACCES};
    }
    const policy::AddressRule* rule = policy::find_address_rule(rules, address);
    if (rule == nullptr) return {false, nullptr, nullptr, EACCES};
    return {true, rule, nullptr, 0};
}

SocketResult SocketOps::connect(std::string_view text) const noexcept {
    SocketAddress address;
    SocketResult result;
    result.verdict = judge(profile_->connect_rules(), text, address);
    if (result.verdict.error != 0) return result;
    int& error = result.verdict.error;

    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp: {
            sockaddr_storage sa;
            const socklen_t len = inet_address(address, sa);
            const int type = address.transport == Transport::tcp ? SOCK_STREAM : SOCK_DGRAM;
            unique_fd sock(::socket(sa.ss_family, type | kSocketFlags, 0));
            if (!sock) {
                error = errno;
            } else if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) == 0) {
                result.fd = std::move(sock);
            } else if (errno == EINPROGRESS) {
                result.fd = std::move(sock);
                result.pending = true;
                return result;
            } else {
                error = errno;
            }
            break;
        }
        case Transport::unix_path: {
            unique_fd file;
            sockaddr_un sa;
            socklen_t len = 0;
            if ((error = unix_path_by_descriptor(address.name, file, sa, len)) != 0) break;
            const WorkerEffectiveIds as_worker(owner_);
            error = connect_unix(sa, len, result.fd);
            break;
        }
        case Transport::unix_abstract: {
            sockaddr_un sa;
            socklen_t len = 0;
            static_cast<void>(unix_address(address.name, true, sa, len));  // the parser checked the size
            const WorkerEffectiveIds as_worker(owner_);
            error = connect_unix(sa, len, result.fd);
            break;
        }
    }
    if (error == 0) error = make_blocking(result.fd.get());
    if (error != 0) result.fd.reset();
    return result;
}

SocketVerdict SocketOps::connect_socket(std::string_view text, int sock) const noexcept {
    SocketAddress address;
    SocketVerdict verdict = judge(profile_->connect_rules(), text, address);
    if (verdict.error != 0) return verdict;
    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp: {
            sockaddr_storage sa;
            const socklen_t len = inet_address(address, sa);
            if (::connect(sock, reinterpret_cast<const sockaddr*>(&sa), len) != 0) verdict.error = errno;
            break;
        }
        case Transport::unix_path: {
            unique_fd file;
            sockaddr_un sa;
            socklen_t len = 0;
            if ((verdict.error = unix_path_by_descriptor(address.name, file, sa, len)) != 0) break;
            const WorkerEffectiveIds as_worker(owner_);
            if (::connect(sock, reinterpret_cast<const sockaddr*>(&sa), len) != 0) verdict.error = errno;
            break;
        }
        case Transport::unix_abstract: {
            sockaddr_un sa;
            socklen_t len = 0;
            static_cast<void>(unix_address(address.name, true, sa, len));
            const WorkerEffectiveIds as_worker(owner_);
            if (::connect(sock, reinterpret_cast<const sockaddr*>(&sa), len) != 0) verdict.error = errno;
            break;
        }
    }
    return verdict;
}

SocketVerdict SocketOps::judge_listen(std::string_view text) const noexcept {
    SocketAddress address;
    return judge(profile_->listen_rules(), text, address);
}

SocketVerdict SocketOps::bind_socket(std::string_view text, int sock) const noexcept {
    SocketAddress address;
    SocketVerdict verdict = judge(profile_->listen_rules(), text, address);
    if (verdict.error != 0) return verdict;
    sockaddr_storage storage;
    socklen_t len = 0;
    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp:
            len = inet_address(address, storage);
            break;
        case Transport::unix_abstract: {
            sockaddr_un sa;
            static_cast<void>(unix_address(address.name, true, sa, len));
            std::memcpy(&storage, &sa, sizeof sa);
            break;
        }
        case Transport::unix_path:
            verdict.error = EACCES;
            return verdict;
    }
    if (::bind(sock, reinterpret_cast<const sockaddr*>(&storage), len) != 0) verdict.error = errno;
    return verdict;
}

SocketResult SocketOps::listen(std::string_view text, int backlog) const noexcept {
    SocketAddress address;
    SocketResult result;
    result.verdict = judge(profile_->listen_rules(), text, address);
    if (result.verdict.error != 0) return result;
    int& error = result.verdict.error;

    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp: {
            sockaddr_storage sa;
            const socklen_t len = inet_address(address, sa);
            const bool tcp = address.transport == Transport::tcp;
            unique_fd sock(::socket(sa.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | kSocketFlags, 0));
            const int on = 1;
            // SO_REUSEADDR lets a restarted server bind over its old connections in TIME_WAIT. Not for
            // UDP, where it would let a second socket share the port and take its datagrams.
            if (!sock || (tcp && ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) ||
                ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0 ||
                (tcp && ::listen(sock.get(), backlog) != 0)) {
                error = errno;
                break;
            }
            result.fd = std::move(sock);
            break;
        }
        case Transport::unix_path:
            error = listen_unix_path(address, result.verdict.rule->file, backlog, result.fd);
            break;
        case Transport::unix_abstract: {
            sockaddr_un sa;
            socklen_t len = 0;
            static_cast<void>(unix_address(address.name, true, sa, len));
            unique_fd sock(::socket(AF_UNIX, SOCK_STREAM | kSocketFlags, 0));
            if (!sock || ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0 ||
                ::listen(sock.get(), backlog) != 0) {
                error = errno;
                break;
            }
            result.fd = std::move(sock);
            break;
        }
    }
    if (error == 0) error = make_blocking(result.fd.get());
    if (error != 0) result.fd.reset();
    return result;
}

// Binds beneath the parent directory's descriptor (through /proc/self/fd/N/NAME, as bind(2) has no
// *at form), so a symlink swapped into the path cannot move the socket elsewhere. The mode is set by
// the umask during bind, so the file never exists with looser permissions than the rule's.
int SocketOps::listen_unix_path(const SocketAddress& address, const policy::SocketFile& file, int backlog,
                                unique_fd& out) const noexcept {
    const std::string_view name = policy::name_of(address.name);
    const unique_fd dir = open_no_symlinks(policy::parent_of(address.name), O_DIRECTORY);
    if (!dir) return errno;
    PathBuffer name_z;
    if (!name_z.assign(name)) return ENAMETOOLONG;
    char where[sizeof(sockaddr_un::sun_path)];
    const int n = std::snprintf(where, sizeof where, "/proc/self/fd/%d/%s", dir.get(), name_z.c_str());
    sockaddr_un sa;
    socklen_t len = 0;
    if (n < 0 || static_cast<std::size_t>(n) >= sizeof where || !unix_address(where, false, sa, len))
        return ENAMETOOLONG;

    unique_fd sock(::socket(AF_UNIX, SOCK_STREAM | kSocketFlags, 0));
    if (!sock) return errno;
    int rc = 0;
    if (file.mode) {
        const mode_t old = ::umask(static_cast<mode_t>(~*file.mode & 0777));
        rc = ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len);
        const int saved = errno;
        ::umask(old);
        errno = saved;
    } else {
        rc = ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len);
    }
    if (rc != 0) return errno;
    int err = ::listen(sock.get(), backlog) == 0 ? 0 : errno;
    if (err == 0) err = own_socket_file(dir.get(), name_z.c_str(), file);
    if (err != 0) {
        // Take back the name this bind made, so that a failed listen leaves nothing behind.
        if (our_socket_file(dir.get(), name_z.c_str())) ::unlinkat(dir.get(), name_z.c_str(), 0);
        return err;
    }
    out = std::move(sock);
    return 0;
}

// Gives the socket file the rule's owner, else the worker's (when the broker runs as root, as for the
// files it creates).
int SocketOps::own_socket_file(int dir, const char* name, const policy::SocketFile& file) const noexcept {
    std::optional<uid_t> uid = file.uid;
    std::optional<gid_t> gid = file.gid;
    if (owner_) {
        if (!uid) uid = owner_->uid;
        if (!gid) gid = owner_->gid;
    }
    if (!uid && !gid) return 0;
    const unique_fd socket_file = our_socket_file(dir, name);
    if (!socket_file) return EPERM;  // replaced since the bind: no owner is handed out for it
    if (::fchownat(socket_file.get(), "", uid ? *uid : static_cast<uid_t>(-1),
                   gid ? *gid : static_cast<gid_t>(-1), AT_EMPTY_PATH) != 0)
        return errno;
    return 0;
}

}  // namespace fdbroker::broker
