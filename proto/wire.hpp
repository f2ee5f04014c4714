// The wire format between libfdbroker and the broker (docs/protocol.md): fixed little-endian
// headers, sizes checked before anything is read, and decoded views that never allocate.
#pragma once

#include <sys/stat.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace fdbroker::wire {

inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::size_t kMaxPath = 4095;  // bytes, without a terminating NUL (PATH_MAX - 1)
inline constexpr std::size_t kRequestHeaderSize = 24;
inline constexpr std::size_t kReplyHeaderSize = 16;
inline constexpr std::size_t kStatPayloadSize = 16 * sizeof(std::uint64_t);  // 16 fields of struct stat
inline constexpr std::size_t kMaxRequestSize = kRequestHeaderSize + 2 * kMaxPath;
inline constexpr std::size_t kMaxReplySize = kReplyHeaderSize + kMaxPath;

enum class Op : std::uint16_t {
    attach = 1,  // carries one fd: the new private channel of the sending process
    open = 2,
    access = 3,
    stat = 4,
    readlink = 5,
    mkdir = 6,
    unlink = 7,
    rmdir = 8,
    rename = 9,
    connect = 10,  // path: the address; the reply carries the connected socket
    listen = 11,   // path: the address; arg0: the backlog; the reply carries the listening (or bound) socket
};

[[nodiscard]] std::string_view op_name(Op op) noexcept;
// Number of paths an op carries (0, 1 or 2); 0 for ops the broker does not know.
[[nodiscard]] int op_path_count(Op op) noexcept;
[[nodiscard]] bool op_is_known(std::uint16_t op) noexcept;

// A decoded request. The paths view the receive buffer, so a Request lives no longer than it.
struct Request {
    Op op{};
    std::uint32_t id = 0;
    std::uint32_t arg0 = 0;  // open: flags · access: mode · mkdir: mode · listen: backlog (an int)
    std::uint32_t arg1 = 0;  // open: mode
    std::string_view path;   // first path (empty for attach); connect, listen: the address
    std::string_view path2;  // rename: destination
};

enum class DecodeError {
    too_short,     // fewer bytes than a header
    too_long,      // more than the largest legal frame
    bad_version,   // a version this broker does not speak
    unknown_op,    // an op number the broker does not know
    bad_length,    // path lengths disagree with the frame size, or exceed kMaxPath
    bad_path,      // a path the op needs is empty, or a path contains NUL
    reserved_set,  // a reserved field is not zero
};
[[nodiscard]] std::string_view describe(DecodeError e) noexcept;

struct DecodedRequest {
    std::optional<Request> request;
    DecodeError error{};
};
[[nodiscard]] DecodedRequest decode_request(std::span<const std::byte> frame) noexcept;

// Encodes into out (at least kRequestHeaderSize + path sizes); returns the frame size, or 0 if the
// request cannot be expressed (a path too long, or containing NUL).
[[nodiscard]] std::size_t encode_request(const Request& r, std::span<std::byte> out) noexcept;

struct Reply {
    Op op{};
    std::uint32_t id = 0;
    std::int32_t result = 0;             // >= 0: success value; < 0: -errno
    bool has_fd = false;                 // an fd travels with this frame as SCM_RIGHTS
    std::span<const std::byte> payload;  // stat record or readlink bytes
};

struct DecodedReply {
    std::optional<Reply> reply;
    DecodeError error{};
};
[[nodiscard]] DecodedReply decode_reply(std::span<const std::byte> frame) noexcept;
[[nodiscard]] std::size_t encode_reply(const Reply& r, std::span<std::byte> out) noexcept;

// Whether a decoded reply has the shape its op promises (docs/protocol.md, "Reply shapes"): an error
// (-4095..-1) carries neither fd nor payload; a successful open, connect or listen carries an fd; stat
// the stat record; readlink result == payload size; every other op neither. A receiver ends a channel whose
// replies do not fit, since its peer is not speaking this protocol.
[[nodiscard]] bool reply_shape_ok(const Reply& r) noexcept;

// struct stat travels as 16 little-endian u64 fields (see docs/protocol.md).
void encode_stat(const struct ::stat& st, std::span<std::byte, kStatPayloadSize> out) noexcept;
[[nodiscard]] bool decode_stat(std::span<const std::byte> in, struct ::stat& st) noexcept;

}  // namespace fdbroker::wire
