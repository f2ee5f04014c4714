#include "broker/serve/serve_socket.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "broker/serve/systemd.hpp"

namespace fdbroker::broker {

namespace {

std::string errno_text(int error) {
    return std::strerror(error);
}

// Fills `sa` for a path or "@name"; the returned length counts what the kernel must see.
socklen_t make_address(const std::string& address, sockaddr_un& sa) {
    sa = {};
    sa.sun_family = AF_UNIX;
    const bool abstract = address.front() == '@';
    const std::size_t size = address.size() - (abstract ? 1 : 0);
    std::memcpy(sa.sun_path + (abstract ? 1 : 0), address.data() + (abstract ? 1 : 0), size);
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + (abstract ? 1 + size : size + 1));
}

// The broker must receive SCM_CREDENTIALS with every message, including those a client sends before
// accept(): set on the listener, the option is inherited by each accepted socket.
bool listen_with_credentials(int fd) {
    const int on = 1;
    return ::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0;
}

// The directory that holds the socket: created if missing, and trusted only if nobody but root or the
// broker's own user can replace what is in it.
unique_fd safe_parent(const std::string& dir, std::string& error) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        error = "cannot create " + dir + ": " + errno_text(errno);
        return {};
    }
    unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        error = "cannot open the socket directory " + dir + ": " + errno_text(errno);
        return {};
    }
    struct ::stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        error = "cannot inspect " + dir + ": " + errno_text(errno);
        return {};
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
        error = "refusing the socket directory " + dir + ": it belongs to uid " + std::to_string(st.st_uid);
        return {};
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
        error = "refusing the socket directory " + dir +
                ": others may write to it (make it 0755, or sticky like /tmp)";
        return {};
    }
    return fd;
}

// Removes a socket file nobody listens on (a broker that crashed); refuses anything else.
bool clear_stale(int dir, const std::string& name, const std::string& path, std::string& error) {
    struct ::stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return true;
        error = "cannot inspect " + path + ": " + errno_text(errno);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        error = path + " exists and is not a socket: refusing to replace it";
        return false;
    }
    sockaddr_un sa;
    const socklen_t len = make_address(path, sa);
    const unique_fd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!probe) {
        error = "socket: " + errno_text(errno);
        return false;
    }
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sa), len) == 0) {
        error = "another broker is already listening on " + path;
        return false;
    }
    // ECONNREFUSED: the file is there and nobody listens. EPROTOTYPE: a stream or datagram socket,
    // someone else's.
    if (errno != ECONNREFUSED) {
        error =
            "cannot tell whether " + path + " is in use (" + errno_text(errno) + "): refusing to replace it";
        return false;
    }
    if (::unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT) {
        error = "cannot remove the stale socket " + path + ": " + errno_text(errno);
        return false;
    }
    return true;
}

}  // namespace

std::string ServeSocket::default_address() {
    if (::geteuid() == 0) return "/run/fdbroker/fdbroker.sock";
    const char* dir = std::getenv("XDG_RUNTIME_DIR");
    if (dir == nullptr || dir[0] != '/') return {};
    return std::string(dir) + "/fdbroker.sock";
}

std::optional<ServeSocket> ServeSocket::create(const SocketSpec& spec, std::string& error) {
    const std::string& address = spec.address;
    const bool abstract = !address.empty() && address.front() == '@';
    if (address.empty() || (!abstract && address.front() != '/') || address.find('\0') != std::string::npos) {
        error = "'" + address + "' is not a socket address: give an absolute path or @name";
        return std::nullopt;
    }
    if (address.size() + 1 > sizeof(sockaddr_un::sun_path) || address == "@" || address.back() == '/') {
        error = "'" + address + "' is not a usable socket address (empty, a directory, or longer than " +
                std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)";
        return std::nullopt;
    }
    ServeSocket s;
    s.name_ = address;
    unique_fd dir;
    std::string name;
    if (!abstract) {
        const std::size_t slash = address.rfind('/');
        const std::string parent = slash == 0 ? "/" : address.substr(0, slash);
        name = address.substr(slash + 1);
        dir = safe_parent(parent, error);
        if (!dir) return std::nullopt;
        const std::string lock_name = name + ".lock";
        s.lock_.reset(
            ::openat(dir.get(), lock_name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!s.lock_) {
            error = "cannot open the lock file " + address + ".lock: " + errno_text(errno);
            return std::nullopt;
        }
        if (::flock(s.lock_.get(), LOCK_EX | LOCK_NB) != 0) {
            error = errno == EWOULDBLOCK ? "another fdbroker serve is running on " + address + " (it holds " +
                                               address + ".lock)"
                                         : "cannot lock " + address + ".lock: " + errno_text(errno);
            return std::nullopt;
        }
        if (!clear_stale(dir.get(), name, address, error)) return std::nullopt;
    }

    s.listener_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.listener_) {
        error = "socket: " + errno_text(errno);
        return std::nullopt;
    }
    sockaddr_un sa;
    const socklen_t len = make_address(address, sa);
    // Bound under a umask that leaves the file 0600, so that it is never reachable with wider
    // permissions than asked for, even for the moment before the chmod below.
    const mode_t old_umask = ::umask(0177);
    const int bound = ::bind(s.listener_.get(), reinterpret_cast<const sockaddr*>(&sa), len);
    const int bind_errno = errno;
    ::umask(old_umask);
    if (bound != 0) {
        error = bind_errno == EADDRINUSE ? "another process is already listening on " + address
                                         : "cannot bind " + address + ": " + errno_text(bind_errno);
        return std::nullopt;
    }
    if (!abstract) {
        s.remove_path_ = address;
        if (spec.group && ::fchownat(dir.get(), name.c_str(), static_cast<uid_t>(-1), *spec.group,
                                     AT_SYMLINK_NOFOLLOW) != 0) {
            error = "cannot give " + address + " to group " + std::to_string(*spec.group) + ": " +
                    errno_text(errno);
            return std::nullopt;
        }
        if (::fchmodat(dir.get(), name.c_str(), spec.mode & 0777, 0) != 0) {
            error = "cannot set the mode of " + address + ": " + errno_text(errno);
            return std::nullopt;
        }
    }
    if (!listen_with_credentials(s.listener_.get()) || ::listen(s.listener_.get(), SOMAXCONN) != 0) {
        error = "cannot listen on " + address + ": " + errno_text(errno);
        return std::nullopt;
    }
    return s;
}

std::optional<ServeSocket> ServeSocket::from_systemd(std::string& error) {
    // unset_environment: the workers the broker spawns must not believe they were socket-activated.
    const int n = systemd::listen_fds();
    if (n == 0) return std::nullopt;
    if (n < 0) {
        error = "LISTEN_FDS: " + errno_text(-n);
        return std::nullopt;
    }
    if (n != 1) {
        error = "systemd passed " + std::to_string(n) + " sockets; fdbroker serve listens on exactly one";
        return std::nullopt;
    }
    const int fd = 3;  // SD_LISTEN_FDS_START
    if (systemd::is_socket_unix(fd, SOCK_SEQPACKET, 1) <= 0) {
        error =
            "the socket systemd passed is not a listening unix SOCK_SEQPACKET socket "
            "(use ListenSequentialPacket= in the .socket unit)";
        return std::nullopt;
    }
    ServeSocket s;
    s.listener_.reset(fd);
    s.name_ = "the socket passed by systemd";
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || !listen_with_credentials(fd)) {
        error = "setting up the socket systemd passed: " + errno_text(errno);
        return std::nullopt;
    }
    return s;
}

ServeSocket::~ServeSocket() {
    remove_file();
}

void ServeSocket::remove_file() noexcept {
    if (!remove_path_.empty()) ::unlink(remove_path_.c_str());
    remove_path_.clear();
}

}  // namespace fdbroker::broker
