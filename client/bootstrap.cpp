// Finding the bootstrap channel: FDBROKER_FD, else FDBROKER_SOCKET, else the default serve socket.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "client/connection.hpp"

namespace fdbroker {
namespace {

constexpr std::string_view kRootSocket = "/run/fdbroker/fdbroker.sock";
constexpr std::string_view kUserSocketName = "/fdbroker.sock";

// FDBROKER_FD as a plain decimal number: no sign, no spaces, nothing after it.
bool parse_fd(std::string_view text, int& fd) noexcept {
    if (text.empty() || text.front() < '0' || text.front() > '9') return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
    return ec == std::errc{} && end == text.data() + text.size();
}

int adopt_inherited(const char* text, unique_fd& out) noexcept {
    int fd = -1;
    if (!parse_fd(text, fd) || check_channel(fd) != 0) return ENOTCONN;
    // The fd is used as it is: it is inherited by descendants on purpose, so its flags (no
    // FD_CLOEXEC) are the launcher's choice, not ours.
    out.reset(fd);
    return 0;
}

// Connects to a path, or to an abstract name given as "@name".
int connect_to(std::string_view address, unique_fd& out) noexcept {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const bool abstract = !address.empty() && address.front() == '@';
    if (abstract) address.remove_prefix(1);
    // A path needs room for its NUL; an abstract name is counted by the address length instead.
    const std::size_t room = sizeof(sa.sun_path) - 1;
    if (address.empty() || address.size() > room) return ENOTCONN;
    if (!abstract && address.find('\0') != std::string_view::npos) return ENOTCONN;
    char* dst = abstract ? sa.sun_path + 1 : sa.sun_path;
    std::memcpy(dst, address.data(), address.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + (abstract ? 1 : 0) +
                                            address.size() + (abstract ? 0 : 1));

    unique_fd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!sock) return ENOTCONN;
    int rc = 0;
    do {
        rc = ::connect(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len);
    } while (rc != 0 && errno == EINTR);
    // An interrupted connect may still complete in the background; EISCONN then means success.
    if (rc != 0 && errno != EISCONN) return ENOTCONN;
    out = std::move(sock);
    return 0;
}

bool set(const char* value) noexcept {
    return value != nullptr && value[0] != '\0';
}

}  // namespace

BootstrapSource BootstrapSource::from_environment() noexcept {
    BootstrapSource s;
    s.fd = std::getenv("FDBROKER_FD");
    s.socket = std::getenv("FDBROKER_SOCKET");
    s.runtime_dir = std::getenv("XDG_RUNTIME_DIR");
    s.root = ::geteuid() == 0;
    return s;
}

int check_channel(int fd) noexcept {
    struct ::stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return ENOTSOCK;
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len) != 0 || value != AF_UNIX) return EPROTOTYPE;
    len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0 || value != SOCK_SEQPACKET)
        return EPROTOTYPE;
    return 0;
}

int open_bootstrap(const BootstrapSource& source, unique_fd& out) noexcept {
    if (set(source.fd)) return adopt_inherited(source.fd, out);
    if (set(source.socket)) return connect_to(source.socket, out);
    if (source.root) return connect_to(kRootSocket, out);
    // XDG_RUNTIME_DIR must be absolute to be trusted (XDG Base Directory specification).
    if (!set(source.runtime_dir) || source.runtime_dir[0] != '/') return ENOTCONN;
    char path[sizeof(sockaddr_un::sun_path)];
    const std::string_view dir(source.runtime_dir);
    if (dir.size() + kUserSocketName.size() >= sizeof path) return ENOTCONN;
    std::memcpy(path, dir.data(), dir.size());
    std::memcpy(path + dir.size(), kUserSocketName.data(), kUserSocketName.size());
    return connect_to(std::string_view(path, dir.size() + kUserSocketName.size()), out);
}

}  // namespace fdbroker
