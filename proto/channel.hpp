// One SOCK_SEQPACKET endpoint: sends and receives whole frames with SCM_CREDENTIALS, SCM_PIDFD and
// SCM_RIGHTS fds (one, or an open_many reply's several), checking every control message and setting
// apart whatever was not asked for.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <utility>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::proto {

// Linux 6.5 socket ABI values, spelled out because older C library headers lack them.
inline constexpr int kSoPassPidfd = 76;  // SO_PASSPIDFD
inline constexpr int kScmPidfd = 0x04;   // SCM_PIDFD

struct Credentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

enum class RecvStatus {
    ok,           // a whole, well-formed message (control data included) is in Received
    would_block,  // nothing to read on a non-blocking socket
    eof,          // the peer closed its end
    error,        // recvmsg failed: see Received::error
    dropped,      // a message was lost because this process is out of descriptors (error: EMFILE or
                  // ENFILE) and the kernel could not pass its fd; not the sender's fault
    violation,    // the message broke the rules (truncated data or control, an unknown cmsg, more
                  // fds than allowed); every fd received is in Received::fds, the channel should end
};

// The most descriptors a legal message carries: an open_many reply's (wire::kMaxBatch).
inline constexpr std::size_t kMaxFdsPerMessage = 64;
// The most SCM_RIGHTS descriptors one received message can bring (channel.cpp's control buffer, which
// has room for what is allowed and a few more, so that a sender attaching too many is seen doing so).
inline constexpr std::size_t kMaxReceivedFds = kMaxFdsPerMessage + 24;

// The SCM_RIGHTS descriptors one message brought, in the order sent; those not taken close with it.
// Only the slots in use are ever touched: every message builds one, most bring no descriptor, and an
// array of kMaxReceivedFds unique_fds was walked twice per message (cleared, then destroyed).
class ReceivedFds {
  public:
    ReceivedFds() noexcept = default;
    ReceivedFds(ReceivedFds&& other) noexcept { adopt(other); }
    ReceivedFds& operator=(ReceivedFds&& other) noexcept {
        if (this != &other) {
            close_all();
            adopt(other);
        }
        return *this;
    }
    ReceivedFds(const ReceivedFds&) = delete;
    ReceivedFds& operator=(const ReceivedFds&) = delete;
    ~ReceivedFds() { close_all(); }

    [[nodiscard]] std::size_t size() const noexcept { return count_; }
    [[nodiscard]] bool full() const noexcept { return count_ == fds_.size(); }
    // Appends `fd` (which closes instead when full()).
    void push(unique_fd fd) noexcept {
        if (!full()) fds_[count_++] = fd.release();
    }
    // The descriptor in slot `i` (< size()), or an empty one if it was taken already.
    [[nodiscard]] unique_fd take(std::size_t i) noexcept { return unique_fd(std::exchange(fds_[i], -1)); }
    // How many slots still hold a descriptor.
    [[nodiscard]] std::size_t held() const noexcept {
        return static_cast<std::size_t>(std::count_if(fds_.begin(),
                                                      fds_.begin() + static_cast<std::ptrdiff_t>(count_),
                                                      [](int fd) { return fd >= 0; }));
    }

  private:
    void close_all() noexcept {
        for (std::size_t i = 0; i < count_; ++i)
            unique_fd closing(fds_[i]);
        count_ = 0;
    }
    void adopt(ReceivedFds& other) noexcept {
        count_ = std::exchange(other.count_, 0);
        std::copy_n(other.fds_.begin(), count_, fds_.begin());
    }

    std::array<int, kMaxReceivedFds> fds_;  // [0, count_) owned, -1 once taken; the rest unused
    std::size_t count_ = 0;
};

struct Received {
    RecvStatus status = RecvStatus::error;
    std::size_t size = 0;                    // bytes of payload written to the buffer
    std::optional<Credentials> credentials;  // SCM_CREDENTIALS, when present
    unique_fd fd;                            // max_fds <= 1: the one SCM_RIGHTS fd allowed, when present
    // max_fds > 1: the SCM_RIGHTS fds in fds[0, fd_count), in the order sent (fd stays empty).
    std::size_t fd_count = 0;
    unique_fd pidfd;       // SCM_PIDFD of the sender (kernel >= 6.5, SO_PASSPIDFD)
    int error = 0;         // errno for RecvStatus::error
    const char* why = "";  // what the violation was, for the log
    // The SCM_RIGHTS descriptors not handed out as `fd`: those a receiver allowing several takes,
    // or all of them when the status is not ok. They close with the Received unless the caller takes
    // them: closing a descriptor the peer chose may wait (a FUSE flush, a TCP socket set to linger),
    // which a server does off its event loop.
    ReceivedFds fds;
};

// Receives one frame into buf (which should be one byte larger than the largest legal frame, so
// that an oversized frame is seen as truncated), allowing at most max_fds descriptors with it (at most
// kMaxFdsPerMessage); control room is made for a few more than that only. Always MSG_CMSG_CLOEXEC.
[[nodiscard]] Received receive(int sock, std::span<std::byte> buf, int flags, int max_fds) noexcept;

struct SendOptions {
    const Credentials* credentials = nullptr;  // attach SCM_CREDENTIALS with these values
    int fd = -1;                               // attach this fd as SCM_RIGHTS
    int flags = 0;               // extra sendmsg flags (MSG_DONTWAIT); MSG_NOSIGNAL is always set
    std::span<const int> fds{};  // or these (at most kMaxFdsPerMessage), in this order, instead of fd
};

// Sends one frame. Returns 0 or an errno value (EAGAIN when a non-blocking send would block).
[[nodiscard]] int send(int sock, std::span<const std::byte> frame, const SendOptions& options) noexcept;
// Sends one frame made of `head` followed by `tail` (a header and a payload kept apart, so that a large
// payload is neither copied nor needs a buffer of its size).
[[nodiscard]] int send(int sock, std::span<const std::byte> head, std::span<const std::byte> tail,
                       const SendOptions& options) noexcept;

// SO_PASSCRED on; SO_PASSPIDFD too when want_pidfd and the kernel has it. Returns whether pidfds will
// arrive with each message.
bool enable_credentials(int sock, bool want_pidfd) noexcept;

Credentials own_credentials() noexcept;

}  // namespace fdbroker::proto
