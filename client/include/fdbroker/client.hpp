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
#include <memory>
#include <span>
#include <string>
#include <system_error>

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
    void access(const char* path, int mode, std::error_code& ec) noexcept;
    struct ::stat stat(const char* path, std::error_code& ec) noexcept;
    // Returns the number of bytes written to buf (no NUL added, truncated like readlink(2)).
    std::size_t readlink(const char* path, std::span<char> buf, std::error_code& ec) noexcept;
    std::string readlink(const char* path, std::error_code& ec);
    void mkdir(const char* path, mode_t mode, std::error_code& ec) noexcept;
    void unlink(const char* path, std::error_code& ec) noexcept;
    void rmdir(const char* path, std::error_code& ec) noexcept;
    void rename(const char* from, const char* to, std::error_code& ec) noexcept;
    // Sockets the broker opens ("tcp:127.0.0.1:6379", "udp:[::1]:53", "unix:/run/x.sock",
    // "unix:@name"): connected, or listening (bound, for udp). Always close-on-exec, and blocking.
    unique_fd connect(const char* address, std::error_code& ec) noexcept;
    unique_fd listen(const char* address, int backlog, std::error_code& ec) noexcept;

  private:
    std::unique_ptr<Connection> connection_;
};

}  // namespace fdbroker
