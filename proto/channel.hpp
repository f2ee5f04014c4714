// One SOCK_SEQPACKET endpoint: sends and receives whole frames with SCM_CREDENTIALS, SCM_PIDFD and
// at most one SCM_RIGHTS fd, checking every control message and setting apart whatever was not asked
// for.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <optional>
#include <span>

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
                  // fds than allowed); every fd received is in Received::unwanted, the channel should end
};

// The most SCM_RIGHTS descriptors one received message can bring (channel.cpp's control buffer).
inline constexpr std::size_t kMaxReceivedFds = 24;

struct Received {
    RecvStatus status = RecvStatus::error;
    std::size_t size = 0;                    // bytes of payload written to the buffer
    std::optional<Credentials> credentials;  // SCM_CREDENTIALS, when present
    unique_fd fd;                            // the one SCM_RIGHTS fd allowed, when present
    unique_fd pidfd;                         // SCM_PIDFD of the sender (kernel >= 6.5, SO_PASSPIDFD)
    int error = 0;                           // errno for RecvStatus::error
    const char* why = "";                    // what the violation was, for the log
    // The SCM_RIGHTS descriptors not handed out as `fd`: beyond max_fds, or all of them when the
    // status is not ok. They close with the Received unless the caller takes them: closing a
    // descriptor the peer chose may wait (a FUSE flush, a TCP socket set to linger), which a server
    // does off its event loop.
    std::array<unique_fd, kMaxReceivedFds> unwanted;
};

// Receives one frame into buf (which should be one byte larger than the largest legal frame, so
// that an oversized frame is seen as truncated). Always MSG_CMSG_CLOEXEC.
[[nodiscard]] Received receive(int sock, std::span<std::byte> buf, int flags, int max_fds) noexcept;

struct SendOptions {
    const Credentials* credentials = nullptr;  // attach SCM_CREDENTIALS with these values
    int fd = -1;                               // attach this fd as SCM_RIGHTS
    int flags = 0;  // extra sendmsg flags (MSG_DONTWAIT); MSG_NOSIGNAL is always set
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
