#include "broker/serve/client_acceptor.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "broker/core/log.hpp"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; older headers lack it
#endif

namespace fdbroker::broker {

namespace {

constexpr std::size_t kMaxGroups = 65536;  // NGROUPS_MAX

}  // namespace

bool read_peer(int connection, Peer& peer) noexcept {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    try {
        peer.groups.resize(16);
        for (;;) {
            len = static_cast<socklen_t>(peer.groups.size() * sizeof(gid_t));
            if (::getsockopt(connection, SOL_SOCKET, SO_PEERGROUPS, peer.groups.data(), &len) == 0) {
                peer.groups.resize(len / sizeof(gid_t));
                break;
            }
            // ERANGE tells the size needed in len.
            if (errno != ERANGE || len / sizeof(gid_t) > kMaxGroups) return false;
            peer.groups.resize(len / sizeof(gid_t));
        }
    } catch (const std::bad_alloc&) {
        return false;
    }
    int pidfd = -1;
    len = sizeof pidfd;
    if (::getsockopt(connection, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) peer.pidfd.reset(pidfd);
    return true;
}

bool ClientAcceptor::start() noexcept {
    return loop_.add(fd_, EPOLLIN, this);
}

void ClientAcceptor::stop() noexcept {
    if (stopped_) return;
    stopped_ = true;
    loop_.remove(fd_);
}

void ClientAcceptor::on_event(std::uint32_t) noexcept {
    // Bounded, so that a flood of connects cannot keep the loop from serving the channels it has.
    for (int i = 0; i < 64 && !stopped_; ++i) {
        unique_fd connection(::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
        if (!connection) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            // Out of descriptors or memory: the client waits in the backlog and is retried next turn.
            if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM)
                log("accepting a client failed: %s", std::strerror(errno));
            return;
        }
        Peer peer;
        if (!read_peer(connection.get(), peer)) {
            log("refused a client: cannot read its credentials (%s)", std::strerror(errno));
            continue;
        }
        accept_(std::move(connection), std::move(peer));
    }
}

}  // namespace fdbroker::broker
