// Accepts serve-mode clients and authenticates them at the door: the kernel's record of who connected
// (SO_PEERCRED, SO_PEERGROUPS, SO_PEERPIDFD) picks the profile; a client no profile names is refused.
#pragma once

#include <sys/types.h>

#include <functional>
#include <vector>

#include "broker/core/event_loop.hpp"
#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups
    unique_fd pidfd;            // where the kernel has SO_PEERPIDFD (Linux 6.5+)
};

class ClientAcceptor final : public EventHandler {
  public:
    // Called for each accepted connection with its peer; the connection is the client's bootstrap
    // channel if the callback takes it.
    using Accept = std::function<void(unique_fd connection, Peer peer)>;

    ClientAcceptor(EventLoop& loop, int listening_fd, Accept accept) noexcept
        : loop_(loop), fd_(listening_fd), accept_(std::move(accept)) {}
    bool start() noexcept;
    // Stops accepting; connects are refused once the socket itself is closed.
    void stop() noexcept;
    void on_event(std::uint32_t events) noexcept override;

  private:
    EventLoop& loop_;
    int fd_;
    Accept accept_;
    bool stopped_ = false;
};

// Reads what the kernel recorded about the process at the other end of a unix socket when it connected.
[[nodiscard]] bool read_peer(int connection, Peer& peer) noexcept;

}  // namespace fdbroker::broker
