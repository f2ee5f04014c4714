// The socket `fdbroker serve` listens on: made carefully at a path or an abstract name, or adopted from
// systemd (LISTEN_FDS).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

struct SocketSpec {
    std::string address;  // an absolute path, or "@name" for an abstract socket
    mode_t mode = 0660;
    std::optional<gid_t> group;
};

class ServeSocket {
  public:
    // The default address: /run/fdbroker/fdbroker.sock for root, $XDG_RUNTIME_DIR/fdbroker.sock for
    // anyone else (empty if XDG_RUNTIME_DIR is unset or relative).
    [[nodiscard]] static std::string default_address();

    // Creates the socket. For a path: the parent directory is made (0755) if missing and refused if
    // unsafe (not a directory, owned by someone else, writable by others without the sticky bit);
    // SOCKET.lock is flock'ed so that a second broker refuses to start; an existing socket file is
    // removed only after a connect proves that nobody listens on it. Null with `error` set on failure.
    [[nodiscard]] static std::optional<ServeSocket> create(const SocketSpec& spec, std::string& error);
    // The socket systemd passed (LISTEN_FDS): nullopt with `error` empty when there is none, with
    // `error` set when what was passed is not one listening unix seqpacket socket.
    [[nodiscard]] static std::optional<ServeSocket> from_systemd(std::string& error);

    // A moved-from socket has nothing left to remove.
    ServeSocket(ServeSocket&& other) noexcept
        : listener_(std::move(other.listener_)),
          lock_(std::move(other.lock_)),
          name_(std::move(other.name_)),
          remove_path_(std::exchange(other.remove_path_, {})) {}
    ServeSocket& operator=(ServeSocket&& other) noexcept {
        if (this != &other) {
            remove_file();
            listener_ = std::move(other.listener_);
            lock_ = std::move(other.lock_);
            name_ = std::move(other.name_);
            remove_path_ = std::exchange(other.remove_path_, {});
        }
        return *this;
    }
    ~ServeSocket();  // removes the socket file it created

    [[nodiscard]] int fd() const noexcept { return listener_.get(); }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    // Stops listening: new connects are refused from now on; the file stays until destruction.
    void close() noexcept { listener_.reset(); }

  private:
    ServeSocket() = default;
    void remove_file() noexcept;

    unique_fd listener_;
    unique_fd lock_;
    std::string name_;         // for messages
    std::string remove_path_;  // the file to remove at exit ("" for abstract and systemd sockets)
};

}  // namespace fdbroker::broker
