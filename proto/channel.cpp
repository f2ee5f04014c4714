// Whole-frame send and receive on SOCK_SEQPACKET with strict control-message handling: every fd the
// kernel installs is owned by a unique_fd the moment it is seen, so no path out of receive() leaks.
#include "proto/channel.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#ifdef SO_PASSPIDFD
static_assert(SO_PASSPIDFD == fdbroker::proto::kSoPassPidfd);
#endif
#ifdef SCM_PIDFD
static_assert(SCM_PIDFD == fdbroker::proto::kScmPidfd);
#endif

namespace fdbroker::proto {
namespace {

// Room for what a legal message can carry (credentials, a pidfd, max_fds fds) plus a few extra fds,
// so that a sender attaching too many is seen as a violation rather than only as truncated control.
// A receiver allowing one fd offers no more room than that: a misbehaving peer can make it hold only
// a few descriptors at once.
constexpr std::size_t kExtraFds = 4;
constexpr std::size_t control_size(std::size_t max_fds) noexcept {
    return CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int)) +
           CMSG_SPACE(sizeof(int) * (max_fds + kExtraFds));
}
constexpr std::size_t kControlSize = control_size(kMaxFdsPerMessage);
// No mix of control messages fitting kControlSize can carry more fds than this.
constexpr std::size_t kFdCapacity = kControlSize / sizeof(int);
static_assert(kFdCapacity <= kMaxReceivedFds);

int int_at(const unsigned char* data, std::size_t index) noexcept {
    int v = 0;
    std::memcpy(&v, data + index * sizeof(int), sizeof v);
    return v;
}

// Each take_* function moves what one control message (`len` bytes at `data`) brought into r, and
// returns what was wrong with the message, or nullptr.

// SCM_RIGHTS: each fd goes to r.fds.
const char* take_rights(const unsigned char* data, std::size_t len, Received& r) noexcept {
    const char* why = nullptr;
    for (std::size_t i = 0; i < len / sizeof(int); ++i) {
        unique_fd fd(int_at(data, i));
        if (r.fds.size() < kFdCapacity) {
            r.fds.push(std::move(fd));
        } else {
            why = "more fds than allowed";  // cannot happen with kFdCapacity; fd closes here
        }
    }
    if (len % sizeof(int) != 0) why = "malformed SCM_RIGHTS";
    return why;
}

const char* take_pidfd(const unsigned char* data, std::size_t len, Received& r) noexcept {
    unique_fd pidfd(len == sizeof(int) ? int_at(data, 0) : -1);
    if (len != sizeof(int) || r.pidfd) return "malformed or repeated SCM_PIDFD";
    if (pidfd.get() >= 0) r.pidfd = std::move(pidfd);
    return nullptr;
}

const char* take_credentials(const unsigned char* data, std::size_t len, Received& r) noexcept {
    if (len != sizeof(ucred) || r.credentials) return "malformed or repeated SCM_CREDENTIALS";
    ucred u{};
    std::memcpy(&u, data, sizeof u);
    r.credentials = Credentials{u.pid, u.uid, u.gid};
    return nullptr;
}

// Every control message of msg, in order; the last problem found is the one reported.
const char* take_control(msghdr& msg, Received& r) noexcept {
    const char* why = nullptr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        const std::size_t len = c->cmsg_len - CMSG_LEN(0);
        const unsigned char* data = CMSG_DATA(c);
        const char* problem = "unexpected control message";
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            problem = take_rights(data, len, r);
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == kScmPidfd) {
            problem = take_pidfd(data, len, r);
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            problem = take_credentials(data, len, r);
        }
        if (problem != nullptr) why = problem;
    }
    return why;
}

}  // namespace

Received receive(int sock, std::span<std::byte> buf, int flags, int max_fds) noexcept {
    Received r;
    const auto allowed =
        static_cast<std::size_t>(std::clamp(max_fds, 0, static_cast<int>(kMaxFdsPerMessage)));
    // Not zeroed: the kernel writes what msg_controllen then covers, and nothing else is read.
    alignas(cmsghdr) std::array<unsigned char, kControlSize> control;
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control_size(allowed);

    ssize_t n = 0;
    do {
        n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        r.error = errno;
        r.status =
            (r.error == EAGAIN || r.error == EWOULDBLOCK) ? RecvStatus::would_block : RecvStatus::error;
        return r;
    }

    // Take ownership of every fd first; the checks below may then simply return, leaving whatever was
    // not handed out in `fds`.
    const char* why = take_control(msg, r);
    const std::size_t nfds = r.fds.size();

    // On SOCK_SEQPACKET a zero-length read is the peer's end of file (this protocol has no empty
    // frames); anything that came with it is unwanted.
    if (n == 0) {
        r.status = RecvStatus::eof;
        r.pidfd.reset();
        return r;
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) why = "frame larger than the buffer";
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
        // The kernel also truncates when it cannot install a passed descriptor because this process
        // is at its descriptor limit. Then the sender did nothing wrong: the message is lost, the
        // channel is fine.
        if (const unique_fd probe(::fcntl(sock, F_DUPFD_CLOEXEC, 0));
            !probe && (errno == EMFILE || errno == ENFILE)) {
            r.status = RecvStatus::dropped;
            r.error = errno;
            r.pidfd.reset();
            return r;
        }
        why = "control data truncated";
    }
    if (why == nullptr && nfds > allowed) why = "more fds than allowed";
    if (why != nullptr) {
        // The credentials stay: they say who misbehaved, for the log.
        r.status = RecvStatus::violation;
        r.why = why;
        r.pidfd.reset();
        return r;
    }
    if (allowed <= 1 && nfds == 1) {
        r.fd = r.fds.take(0);
    } else {
        r.fd_count = nfds;
    }
    r.size = static_cast<std::size_t>(n);
    r.status = RecvStatus::ok;
    return r;
}

int send(int sock, std::span<const std::byte> frame, const SendOptions& options) noexcept {
    return send(sock, frame, {}, options);
}

int send(int sock, std::span<const std::byte> head, std::span<const std::byte> tail,
         const SendOptions& options) noexcept {
    const std::span<const int> fds = options.fd >= 0 ? std::span<const int>(&options.fd, 1) : options.fds;
    if (fds.size() > kMaxFdsPerMessage) return EINVAL;
    // Each message zeroed where it is written (its padding included), not the whole buffer: it is sized
    // for 88 descriptors and most messages carry one or none.
    alignas(cmsghdr)
        std::array<unsigned char, CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)>
            control;
    std::size_t used = 0;
    if (options.credentials != nullptr) {
        std::memset(control.data() + used, 0, CMSG_SPACE(sizeof(ucred)));
        auto* c = reinterpret_cast<cmsghdr*>(control.data() + used);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof(ucred));
        const ucred u{options.credentials->pid, options.credentials->uid, options.credentials->gid};
        std::memcpy(CMSG_DATA(c), &u, sizeof u);
        used += CMSG_SPACE(sizeof(ucred));
    }
    if (!fds.empty()) {
        std::memset(control.data() + used, 0, CMSG_SPACE(sizeof(int) * fds.size()));
        auto* c = reinterpret_cast<cmsghdr*>(control.data() + used);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        used += CMSG_SPACE(sizeof(int) * fds.size());
    }

    iovec iov[2] = {{const_cast<std::byte*>(head.data()), head.size()},
                    {const_cast<std::byte*>(tail.data()), tail.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = tail.empty() ? 1 : 2;
    if (used != 0) {
        msg.msg_control = control.data();
        msg.msg_controllen = used;
    }
    ssize_t n = 0;
    do {
        // MSG_NOSIGNAL: a vanished peer is an error to report, never a signal that kills the process.
        n = ::sendmsg(sock, &msg, options.flags | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    // SOCK_SEQPACKET sends a whole record or nothing; anything else is not the socket we expect.
    return static_cast<std::size_t>(n) == head.size() + tail.size() ? 0 : EMSGSIZE;
}

bool enable_credentials(int sock, bool want_pidfd) noexcept {
    const int on = 1;
    if (::setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) return false;
    if (!want_pidfd) return false;
    // Kernels before 6.5 reject the option; the caller then falls back to the pid alone.
    return ::setsockopt(sock, SOL_SOCKET, kSoPassPidfd, &on, sizeof on) == 0;
}

Credentials own_credentials() noexcept {
    // The real ids: what the kernel itself attaches when a sender gives none, and always accepted
    // in an explicit SCM_CREDENTIALS without privileges.
    return Credentials{::getpid(), ::getuid(), ::getgid()};
}

}  // namespace fdbroker::proto
