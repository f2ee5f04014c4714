// The C++ face of libfdbroker: a Client per broker connection, results as std::error_code.
//
//     std::error_code ec;
//     auto& broker = fdbroker::Client::global(ec);            // FDBROKER_FD / FDBROKER_SOCKET / default
//     fdbroker::unique_fd fd = broker.open("/etc/hostname", O_RDONLY, 0, ec);
//
// A Client is thread-safe: several threads may have requests in flight on it at once. After fork()
// the child transparently gets a channel of its own on first use.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "fdbroker/fdbroker.h"
#include "fdbroker/unique_fd.hpp"

namespace fdbroker {

class Connection;  // the channel and its in-flight requests (internal)

class FDBROKER_API Client {
    // Only Client's own factories can name a Key, so only they can construct one.
    struct Key {
        explicit Key() = default;
    };

  public:
    // The process-wide client the C functions use, created on first call. ec is ENOTCONN when no
    // broker can be reached; the returned reference is valid either way (its calls then fail too).
    static Client& global(std::error_code& ec) noexcept;

    // A client over a channel the caller already holds (a FDBROKER_FD-style bootstrap socket, or a
    // connected serve socket). Takes ownership of channel.
    static std::unique_ptr<Client> from_channel(unique_fd channel, std::error_code& ec) noexcept;

    ~Client();
    Client(Key, std::unique_ptr<Connection> connection) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    unique_fd open(const char* path, int flags, mode_t mode, std::error_code& ec) noexcept;

    // Many opens in one round trip (a few when the paths are long), each decided, performed and audited
    // as open() would be: results[i] gets requests[i]'s descriptor or its error. ec is set only when the
    // exchange itself failed (EINVAL: more than kMaxOpenMany requests, or as many results as requests
    // not given; ENOTCONN; ECONNRESET), and then every result is empty.
    using OpenRequest = ::fdbroker_open_request;
    struct OpenResult {
        unique_fd fd;
        std::error_code ec;
    };
    static constexpr std::size_t kMaxOpenMany = FDBROKER_OPEN_MANY_MAX;
    void open_batch(std::span<const OpenRequest> requests, std::span<OpenResult> results,
                    std::error_code& ec) noexcept;
    std::vector<OpenResult> open_batch(std::span<const OpenRequest> requests, std::error_code& ec);
    void access(const char* path, int mode, std::error_code& ec) noexcept;
    struct ::stat stat(const char* path, std::error_code& ec) noexcept;
    // Returns the number of bytes written to buf (no NUL added, truncated like readlink(2)).
    std::size_t readlink(const char* path, std::span<char> buf, std::error_code& ec) noexcept;
    std::string readlink(const char* path, std::error_code& ec);
    void mkdir(const char* path, mode_t mode, std::error_code& ec) noexcept;
    void unlink(const char* path, std::error_code& ec) noexcept;
    void rmdir(const char* path, std::error_code& ec) noexcept;
    void rename(const char* from, const char* to, std::error_code& ec) noexcept;

    // Changes to a file's metadata, like the *at() system calls on a path. `flags` is 0, or
    // AT_SYMLINK_NOFOLLOW to act on a final symlink itself (link: AT_SYMLINK_FOLLOW to link what one
    // names); anything else is EINVAL. They need write on the path (mknod and link's new name create);
    // the broker makes the change as the worker's user, so the kernel's rules on who may change what
    // apply, whatever the policy grants.
    // Like fchmodat(2) with fchmodat2's flags: a symlink's own mode cannot be changed (EOPNOTSUPP).
    void chmod(const char* path, mode_t mode, int flags, std::error_code& ec) noexcept;
    // Like fchownat(2); -1 leaves the owner or group as it is.
    void chown(const char* path, uid_t owner, gid_t group, int flags, std::error_code& ec) noexcept;
    void truncate(const char* path, off_t length, std::error_code& ec) noexcept;
    // Like utimensat(2): times null for now, UTIME_NOW and UTIME_OMIT honoured.
    void utimens(const char* path, const struct ::timespec times[2], int flags, std::error_code& ec) noexcept;
    // Like linkat(2): a hard link `to` for `from`; it may not grant more than `from` already has.
    void link(const char* from, const char* to, int flags, std::error_code& ec) noexcept;
    // Like mknod(2): a FIFO, socket or regular file (mode carries the type); devices are the kernel's
    // to refuse.
    void mknod(const char* path, mode_t mode, dev_t dev, std::error_code& ec) noexcept;

    // Extended attributes, like getxattr(2) and its kin (flags: AT_SYMLINK_NOFOLLOW for the l- forms).
    // Setting and removing need write; getting and listing any grant, and where the path may not be read
    // the file looks as if it had none (ENODATA, an empty list). get and list return the length of
    // the value or list, copied into `value` or `list`; an empty buffer asks for the length only.
    std::size_t getxattr(const char* path, const char* name, std::span<char> value, int flags,
                         std::error_code& ec) noexcept;
    std::size_t listxattr(const char* path, std::span<char> list, int flags, std::error_code& ec) noexcept;
    // xattr_flags: 0, XATTR_CREATE or XATTR_REPLACE, as for setxattr(2).
    void setxattr(const char* path, const char* name, std::span<const char> value, int xattr_flags, int flags,
                  std::error_code& ec) noexcept;
    void removexattr(const char* path, const char* name, int flags, std::error_code& ec) noexcept;

    // Sockets the broker opens ("tcp:127.0.0.1:6379", "udp:[::1]:53", "unix:/run/x.sock",
    // "unix:@name"): connected, or listening (bound, for udp). Always close-on-exec, and blocking.
    unique_fd connect(const char* address, std::error_code& ec) noexcept;
    unique_fd listen(const char* address, int backlog, std::error_code& ec) noexcept;

  private:
    std::unique_ptr<Connection> connection_;
};

}  // namespace fdbroker
