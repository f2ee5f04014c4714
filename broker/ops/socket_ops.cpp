#include "broker/ops/socket_ops.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/log.hpp"
#include "broker/core/worker_identity.hpp"
#include "broker/ops/openat2_compat.hpp"
#include "policy/path.hpp"
#include "policy/path_buffer.hpp"

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
    return unique_fd(openat2_compat(AT_FDCWD, z.c_str(), how));
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

// Connects to a unix socket of whatever type its server uses: stream, seqpacket or datagram, tried in
// that order. A socket file of another type refuses with EPROTOTYPE; an abstract name is looked up per
// type, so there a server of another type looks absent (ECONNREFUSED). A datagram socket is handed over
// only when `datagram` allows it: connected or not, it can send to any other datagram socket by name.
// Otherwise a datagram connect that succeeds only tells that the server is one: it is closed,
// `refused_datagram` set and EACCES returned.
int connect_unix(const sockaddr_un& sa, socklen_t len, bool abstract, bool datagram, unique_fd& out,
                 bool& refused_datagram) noexcept {
    int err = EPROTOTYPE;
    for (const int type : {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM}) {
        unique_fd sock(::socket(AF_UNIX, type | kSocketFlags, 0));
        if (!sock) return errno;
        if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) == 0) {
            if (type == SOCK_DGRAM && !datagram) {
                refused_datagram = true;
                return EACCES;
            }
            out = std::move(sock);
            return 0;
        }
        err = errno;
        if (err != EPROTOTYPE && !(abstract && err == ECONNREFUSED)) break;
    }
    return err;
}

// IPV6_V6ONLY for an IPv6 socket about to be bound to `address` under `rule`. Without it a [::] socket
// also takes IPv4 clients (unless the system's bindv6only says otherwise), which an IPv6 rule never
// granted: so it is on, unless the rule asks for dual stack. An IPv4-mapped address is IPv4 (an IPv4
// rule granted it) and can only be bound with the option off: the broker's own socket gets it off, a
// program's keeps what the program chose, as natively. The option cannot change once bound.
int set_v6only(int sock, const SocketAddress& address, const policy::AddressRule& rule, bool ours) noexcept {
    if (!address.is_inet() || !address.ipv6) return 0;
    const bool mapped = policy::is_v4_mapped(address);
    if (mapped && !ours) return 0;
    const int v6only = rule.dual_stack || mapped ? 0 : 1;
    if (::setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) return errno;
    return 0;
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

SocketVerdict SocketOps::judge(policy::SocketUse use, std::string_view text,
                               SocketAddress& address) const noexcept {
    const policy::SocketDecision decision = profile_->decide_socket(use, text, address);
    SocketVerdict verdict;
    verdict.allowed = decision.allowed;
    verdict.rule = decision.rule;
    verdict.deny = decision.deny;
    verdict.error = decision.error;
    if (decision.reaches_loopback) verdict.reached.emplace(address);
    return verdict;
}

// A unix connect that found a datagram server under a profile whose datagram sockets may reach only
// their peer: refused, and said in the log (rate-limited: a worker retrying must not flood it).
void SocketOps::refuse_datagram(SocketVerdict& verdict, std::string_view text) const noexcept {
    static LogLimit refusals("a datagram server refused");
    const policy::AddressRule* rule = verdict.rule;
    verdict.allowed = false;
    verdict.error = EACCES;
    log_limited(
        refusals,
        "profile '%s': connect to '%.*s' refused: its server is a datagram socket, which can send to any "
        "address, not only its peer (the connect rule on line %u grants it only with datagram_reach = "
        "\"any\")",
        profile_->name().c_str(), static_cast<int>(text.size()), text.data(), rule->line);
}

int SocketOps::connect_inet(const SocketAddress& address, SocketResult& result) noexcept {
    sockaddr_storage sa;
    const socklen_t len = inet_address(address, sa);
    const int type = address.transport == Transport::tcp ? SOCK_STREAM : SOCK_DGRAM;
    unique_fd sock(::socket(sa.ss_family, type | kSocketFlags, 0));
    if (!sock) return errno;
    if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) == 0) {
        result.fd = std::move(sock);
        return 0;
    }
    if (errno != EINPROGRESS) return errno;
    result.fd = std::move(sock);
    result.pending = true;
    return 0;
}

SocketResult SocketOps::connect(std::string_view text) const noexcept {
    SocketAddress address;
    SocketResult result;
    result.verdict = judge(policy::SocketUse::connect, text, address);
    if (result.verdict.error != 0) return result;
    int& error = result.verdict.error;
    const bool datagram = profile_->datagram_reach() == policy::DatagramReach::any;
    bool refused_datagram = false;
    unique_fd file;  // a unix socket file, held until the connect is made
    sockaddr_un sa;
    socklen_t len = 0;
    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp:
            error = connect_inet(address, result);
            if (result.pending) return result;
            break;
        case Transport::unix_path:
        case Transport::unix_abstract: {
            if (address.transport == Transport::unix_path) {
                error = unix_path_by_descriptor(address.name, file, sa, len);
            } else {
                static_cast<void>(unix_address(address.name, true, sa, len));  // the parser checked the size
            }
            if (error != 0) break;
            const AsWorker as_worker(owner_);
            error = as_worker.error();
            const bool abstract = address.transport == Transport::unix_abstract;
            if (error == 0) error = connect_unix(sa, len, abstract, datagram, result.fd, refused_datagram);
            break;
        }
    }
    if (refused_datagram) refuse_datagram(result.verdict, text);
    if (error == 0) error = make_blocking(result.fd.get());
    if (error != 0) result.fd.reset();
    return result;
}

SocketVerdict SocketOps::connect_socket(std::string_view text, int sock) const noexcept {
    SocketAddress address;
    SocketVerdict verdict = judge(policy::SocketUse::connect, text, address);
    if (verdict.error != 0) return verdict;
    sockaddr_storage storage;
    socklen_t len = 0;
    unique_fd file;
    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp:
            len = inet_address(address, storage);
            if (::connect(sock, reinterpret_cast<const sockaddr*>(&storage), len) != 0) verdict.error = errno;
            return verdict;
        case Transport::unix_path:
        case Transport::unix_abstract:
            break;
    }
    sockaddr_un sa;
    if (address.transport == Transport::unix_path) {
        if ((verdict.error = unix_path_by_descriptor(address.name, file, sa, len)) != 0) return verdict;
    } else {
        static_cast<void>(unix_address(address.name, true, sa, len));
    }
    const AsWorker as_worker(owner_);
    if ((verdict.error = as_worker.error()) != 0) return verdict;
    if (::connect(sock, reinterpret_cast<const sockaddr*>(&sa), len) != 0) verdict.error = errno;
    return verdict;
}

SocketVerdict SocketOps::listen_socket(std::string_view text, int sock, int backlog) const noexcept {
    SocketAddress address;
    SocketVerdict verdict = judge(policy::SocketUse::listen, text, address);
    if (verdict.error != 0) return verdict;
    // A unix listener lends its credentials to every client (SO_PEERCRED): the worker's, not root's.
    const AsWorker as_worker(address.is_inet() ? std::nullopt : owner_);
    if ((verdict.error = as_worker.error()) != 0) return verdict;
    if (::listen(sock, backlog) != 0) verdict.error = errno;
    return verdict;
}

namespace {

// The unix sockets bound here by their name alone (a path too long for sun_path, bound from its
// directory): their own name no longer says where they are, so listen(2) judges the path recorded at
// the bind, by the socket's inode. Bounded; the oldest are forgotten first (a listen then refused).
class NamedByDirectory {
  public:
    void remember(ino_t socket, std::string_view path) {
        const std::lock_guard lock(mutex_);
        std::erase_if(paths_, [socket](const auto& e) { return e.first == socket; });
        if (paths_.size() == kKept) paths_.pop_front();
        paths_.emplace_back(socket, path);
    }
    std::optional<std::string> find(ino_t socket) const {
        const std::lock_guard lock(mutex_);
        for (const auto& [ino, path] : paths_)
            if (ino == socket) return path;
        return std::nullopt;
    }

  private:
    static constexpr std::size_t kKept = 1024;
    mutable std::mutex mutex_;
    std::deque<std::pair<ino_t, std::string>> paths_;
};

NamedByDirectory& named_by_directory() {
    static NamedByDirectory table;
    return table;
}

// Whether the socket file `name` is in the directory `parent` reached again with no symlink, and that
// directory is still the one (`before`) the bind was made in: if it was swapped for a symlink
// meanwhile, the bind made its file elsewhere.
bool made_here(std::string_view parent, const struct ::stat& before, const char* name) noexcept {
    struct ::stat after {
    }, made{};
    const unique_fd again = open_no_symlinks(parent, O_DIRECTORY);
    return again && ::fstat(again.get(), &after) == 0 && after.st_dev == before.st_dev &&
           after.st_ino == before.st_ino && ::fstatat(again.get(), name, &made, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISSOCK(made.st_mode);
}

ino_t socket_inode(int sock) noexcept {
    struct ::stat st {};
    return ::fstat(sock, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

// Binds the caller's socket to a path, as the worker (so the file is its own, made with its umask, and
// the kernel's permission checks are its own). bind(2) takes only a path, and the socket's name is the
// path it was given, which the program and its peers see: so the path is bound as written, after its
// parent was reached with no symlink on the way, and checked again after: if the parent was swapped
// for a symlink meanwhile, the file made through it is removed and the bind refused. A path too long
// for sun_path is bound by its last component from the directory's descriptor, as the kernel binds a
// relative name from the working directory.
int SocketOps::bind_unix_path(const SocketAddress& address, int sock, mode_t umask) const noexcept {
    const std::string_view parent = policy::parent_of(address.name);
    struct ::stat before {};
    const unique_fd dir = open_no_symlinks(parent, O_DIRECTORY);
    if (!dir || ::fstat(dir.get(), &before) != 0) return errno == ELOOP ? EACCES : errno;
    PathBuffer name;
    if (!name.assign(policy::name_of(address.name))) return ENAMETOOLONG;
    sockaddr_un sa;
    socklen_t len = 0;
    const bool whole = unix_address(address.name, false, sa, len);
    if (!whole && !unix_address(name.view(), false, sa, len)) return ENAMETOOLONG;
    // A name alone is bound from the directory: this thread's working directory goes there for the bind
    // and comes back as the broker (the worker may not enter it), since another thread may share it.
    unique_fd here;
    if (!whole) {
        here.reset(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!here) return errno;
    }
    int rc = 0;
    {
        const AsWorker as_worker(owner_);
        if ((rc = as_worker.error()) == 0) {
            const mode_t old = ::umask(umask & 0777);
            const bool bound = (whole || ::fchdir(dir.get()) == 0) &&
                               ::bind(sock, reinterpret_cast<const sockaddr*>(&sa), len) == 0;
            rc = bound ? 0 : errno;
            ::umask(old);
        }
    }
    if (here && ::fchdir(here.get()) != 0) std::abort();
    if (rc != 0) return rc;
    const AsWorker as_worker(owner_);
    if (const int err = as_worker.error(); err != 0) return err;
    if (made_here(parent, before, name.c_str())) {
        if (whole) return 0;
        try {
            named_by_directory().remember(socket_inode(sock), address.name);
            return 0;
        } catch (const std::bad_alloc&) {
            // Unrecorded, a later listen could not be judged: undone below.
        }
    }
    // Where this bind made it: by the path as bound, or in the directory it was bound from.
    if (whole)
        ::unlink(sa.sun_path);
    else
        ::unlinkat(dir.get(), name.c_str(), 0);
    return EACCES;
}

std::optional<std::string> SocketOps::bound_path(int sock) noexcept {
    try {
        return named_by_directory().find(socket_inode(sock));
    } catch (...) {
        return std::nullopt;
    }
}

SocketVerdict SocketOps::bind_socket(std::string_view text, int sock, mode_t umask) const noexcept {
    SocketAddress address;
    // A unix path is a file the bind makes, which `create` on it grants, as for mknod of a socket;
    // whether anyone may connect to it is asked at listen(2), of the listen rules. Any other address is
    // the listen rules' from the bind on.
    if (policy::parse_socket_address(text, address) && address.transport == Transport::unix_path) {
        SocketVerdict verdict;
        const policy::Decision created = profile_->decide(address.name, policy::need_create);
        verdict.allowed = created.allowed;
        verdict.deny = created.allowed ? nullptr : created.rule;
        verdict.error = created.allowed ? bind_unix_path(address, sock, umask) : EACCES;
        return verdict;
    }
    SocketVerdict verdict = judge(policy::SocketUse::listen, text, address);
    if (verdict.error != 0) return verdict;
    sockaddr_storage storage;
    socklen_t len = 0;
    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp:
            len = inet_address(address, storage);
            // Whatever the program set: the option cannot change after the bind.
            if ((verdict.error = set_v6only(sock, address, *verdict.rule, /*ours=*/false)) != 0)
                return verdict;
            break;
        case Transport::unix_abstract: {
            sockaddr_un sa;
            static_cast<void>(unix_address(address.name, true, sa, len));
            std::memcpy(&storage, &sa, sizeof sa);
            break;
        }
        case Transport::unix_path:
            return verdict;  // taken above
    }
    if (::bind(sock, reinterpret_cast<const sockaddr*>(&storage), len) != 0) verdict.error = errno;
    return verdict;
}

SocketResult SocketOps::listen(std::string_view text, int backlog) const noexcept {
    SocketAddress address;
    SocketResult result;
    result.verdict = judge(policy::SocketUse::listen, text, address);
    if (result.verdict.error != 0) return result;
    int& error = result.verdict.error;
    switch (address.transport) {
        case Transport::tcp:
        case Transport::udp:
            error = listen_inet(address, *result.verdict.rule, backlog, result.fd);
            break;
        case Transport::unix_path:
            error = listen_unix_path(address, result.verdict.rule->file, backlog, result.fd);
            break;
        case Transport::unix_abstract:
            error = listen_abstract(address, backlog, result.fd);
            break;
    }
    if (error == 0) error = make_blocking(result.fd.get());
    if (error != 0) result.fd.reset();
    return result;
}

int SocketOps::listen_inet(const SocketAddress& address, const policy::AddressRule& rule, int backlog,
                           unique_fd& out) noexcept {
    sockaddr_storage sa;
    const socklen_t len = inet_address(address, sa);
    const bool tcp = address.transport == Transport::tcp;
    unique_fd sock(::socket(sa.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | kSocketFlags, 0));
    if (!sock) return errno;
    const int on = 1;
    // SO_REUSEADDR lets a restarted server bind over its old connections in TIME_WAIT. Not for UDP,
    // where it would let a second socket share the port and take its datagrams.
    if (tcp && ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return errno;
    if (const int err = set_v6only(sock.get(), address, rule, /*ours=*/true); err != 0) return err;
    if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0) return errno;
    if (tcp && ::listen(sock.get(), backlog) != 0) return errno;
    out = std::move(sock);
    return 0;
}

// Bound as the broker, listening as the worker: listen(2) is what records the credentials every client
// will see as SO_PEERCRED.
int SocketOps::listen_abstract(const SocketAddress& address, int backlog, unique_fd& out) const noexcept {
    sockaddr_un sa;
    socklen_t len = 0;
    static_cast<void>(unix_address(address.name, true, sa, len));  // the parser checked the size
    unique_fd sock(::socket(AF_UNIX, SOCK_STREAM | kSocketFlags, 0));
    if (!sock) return errno;
    if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0) return errno;
    const AsWorker as_worker(owner_);
    if (const int err = as_worker.error(); err != 0) return err;
    if (::listen(sock.get(), backlog) != 0) return errno;
    out = std::move(sock);
    return 0;
}

// Binds beneath the parent directory's descriptor (through /proc/self/fd/N/NAME, as bind(2) has no
// *at form), so a symlink swapped into the path cannot move the socket elsewhere. The mode is set by
// the umask during bind, so the file never exists with looser permissions than the rule's. The bind is
// the broker's (it may need to reach a directory the worker cannot); listen(2), which records the
// credentials clients see, is the worker's.
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
    int err = 0;
    {
        const AsWorker as_worker(owner_);
        err = as_worker.error();
        if (err == 0 && ::listen(sock.get(), backlog) != 0) err = errno;
    }
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
