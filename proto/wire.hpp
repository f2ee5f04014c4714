// The wire format between libfdbroker and the broker (docs/protocol.md): fixed little-endian
// headers, sizes checked before anything is read, and decoded views that never allocate.
#pragma once

#include <sys/stat.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <span>
#include <string_view>

namespace fdbroker::wire {

inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::size_t kMaxPath = 4095;         // bytes, without a terminating NUL (PATH_MAX - 1)
inline constexpr std::size_t kMaxXattrName = 255;     // XATTR_NAME_MAX
inline constexpr std::size_t kMaxXattrValue = 65536;  // XATTR_SIZE_MAX, and XATTR_LIST_MAX for a list
inline constexpr std::size_t kRequestHeaderSize = 24;
inline constexpr std::size_t kReplyHeaderSize = 16;
inline constexpr std::size_t kStatPayloadSize = 16 * sizeof(std::uint64_t);  // 16 fields of struct stat
inline constexpr std::size_t kTimesDataSize = 4 * sizeof(std::uint64_t);     // utimens: two timespecs
// A request is a header, its paths (or a path and an attribute name), and the data some ops carry.
inline constexpr std::size_t kMaxRequestHeadSize = kRequestHeaderSize + 2 * kMaxPath;
inline constexpr std::size_t kMaxRequestSize = kRequestHeaderSize + kMaxPath + kMaxXattrName + kMaxXattrValue;
inline constexpr std::size_t kMaxReplyPayload = kMaxXattrValue;
inline constexpr std::size_t kMaxReplySize = kReplyHeaderSize + kMaxReplyPayload;

// Request flags (the header's `flags` word), each valid only for the ops that take it.
inline constexpr std::uint32_t kNoFollow = 0x1;  // act on a final symlink itself (lchown, lgetxattr, ...)
inline constexpr std::uint32_t kFollow = 0x2;    // link: link what a final symlink names (AT_SYMLINK_FOLLOW)

// open_many: at most this many opens in one request, and as many descriptors in its one reply (well
// under the kernel's SCM_MAX_FD of 253, and what one channel may have in flight: kMaxUnreceived).
inline constexpr std::size_t kMaxBatch = 64;
// An open_many entry: flags (4), mode (4), the path's length (2), then the path.
inline constexpr std::size_t kBatchEntryHeaderSize = 10;
// The entries of one open_many request together: the largest data any op carries.
inline constexpr std::size_t kMaxBatchData = kMaxXattrValue;
// An open_many reply's payload: one signed 32-bit result per entry.
inline constexpr std::size_t kBatchResultSize = 4;

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
    connect = 10,   // path: the address; the reply carries the connected socket
    listen = 11,    // path: the address; arg0: the backlog; the reply carries the listening (or bound) socket
    chmod = 12,     // arg0: mode · flags: kNoFollow
    chown = 13,     // arg0: uid · arg1: gid (each -1: unchanged) · flags: kNoFollow
    truncate = 14,  // arg0, arg1: the length's low and high 32 bits
    utimens = 15,   // data: the two times (encode_times) · flags: kNoFollow
    link = 16,      // path → path2 · flags: kFollow
    mknod = 17,     // arg0: mode (type and permissions) · arg1: device number
    getxattr = 18,  // path2: the name · arg0: the caller's buffer size · flags: kNoFollow
    listxattr = 19,    // arg0: the caller's buffer size · flags: kNoFollow
    setxattr = 20,     // path2: the name · arg0: XATTR_CREATE/REPLACE · data: the value · flags: kNoFollow
    removexattr = 21,  // path2: the name · flags: kNoFollow
    open_many = 22,    // arg0: the number of entries · data: the entries (encode_open_entry); the reply
                       // carries one result per entry (encode_batch_results) and a descriptor per success
};

[[nodiscard]] std::string_view op_name(Op op) noexcept;
// Number of paths an op carries (0, 1 or 2, an attribute name counting as the second); 0 for ops the
// broker does not know.
[[nodiscard]] int op_path_count(Op op) noexcept;
[[nodiscard]] bool op_is_known(std::uint16_t op) noexcept;

// A decoded request. The paths view the receive buffer, so a Request lives no longer than it.
struct Request {
    Op op{};
    std::uint32_t id = 0;
    std::uint32_t arg0 = 0;  // open: flags · access, mkdir, chmod, mknod: mode · listen: backlog · see Op
    std::uint32_t arg1 = 0;  // open: mode · chown: gid · mknod: device · truncate: high half of the length
    std::uint32_t flags = 0;  // kNoFollow, kFollow: only for the ops that take them
    std::string_view path;    // first path (empty for attach); connect, listen: the address
    std::string_view path2;   // rename, link: destination · the xattr ops but list: the attribute's name
    std::span<const std::byte> data;  // utimens: the times · setxattr: the value · open_many: entries
};

// One open of an open_many request. Decoded, the path views the receive buffer.
struct OpenEntry {
    std::uint32_t flags = 0;  // open(2)'s flags
    std::uint32_t mode = 0;   // the mode, when the flags create (0 otherwise)
    std::string_view path;
};

// The bytes one entry takes on the wire, or 0 for a path that cannot be sent (empty, longer than
// kMaxPath, or containing NUL).
[[nodiscard]] std::size_t open_entry_size(std::string_view path) noexcept;
// Writes one entry at the start of out; returns the bytes written, or 0 as open_entry_size (or when
// out is too small).
[[nodiscard]] std::size_t encode_open_entry(const OpenEntry& entry, std::span<std::byte> out) noexcept;
// Takes the first entry off `data`, the entries of an open_many request that decode_request accepted
// (which checked that exactly arg0 well-formed entries fill it); nullopt when none is left.
[[nodiscard]] std::optional<OpenEntry> next_open_entry(std::span<const std::byte>& data) noexcept;

enum class DecodeError {
    too_short,     // fewer bytes than a header
    too_long,      // more than the largest legal frame
    bad_version,   // a version this broker does not speak
    unknown_op,    // an op number the broker does not know
    bad_length,    // lengths disagree with the frame size, or exceed the op's limits
    bad_path,      // a path the op needs is empty, or a path contains NUL
    reserved_set,  // a reserved field, a flag or an argument the op does not take is not zero
    bad_argument,  // an argument the op takes is outside the values it allows
};
[[nodiscard]] std::string_view describe(DecodeError e) noexcept;

struct DecodedRequest {
    std::optional<Request> request;
    DecodeError error{};
};
[[nodiscard]] DecodedRequest decode_request(std::span<const std::byte> frame) noexcept;

// Encodes into out (at least kRequestHeaderSize + path sizes + data size); returns the frame size, or 0
// if the request cannot be expressed (a path too long or containing NUL, more data than any op takes).
[[nodiscard]] std::size_t encode_request(const Request& r, std::span<std::byte> out) noexcept;
// The same without the data: the header and paths only (at most kMaxRequestHeadSize bytes), which a
// sender then sends followed by r.data as one message, so that a value of 64 KiB needs no copy and no
// buffer of that size. Returns the size written, or 0 as encode_request.
[[nodiscard]] std::size_t encode_request_head(const Request& r, std::span<std::byte> out) noexcept;

struct Reply {
    Op op{};
    std::uint32_t id = 0;
    std::int32_t result = 0;             // >= 0: success value; < 0: -errno
    bool has_fd = false;                 // an fd travels with this frame as SCM_RIGHTS
    std::span<const std::byte> payload;  // stat record, readlink bytes, an xattr value or list
};

struct DecodedReply {
    std::optional<Reply> reply;
    DecodeError error{};
};
[[nodiscard]] DecodedReply decode_reply(std::span<const std::byte> frame) noexcept;
[[nodiscard]] std::size_t encode_reply(const Reply& r, std::span<std::byte> out) noexcept;
// The header alone, for a sender that sends r.payload after it as one message; kReplyHeaderSize, or 0
// for a payload too long to express.
[[nodiscard]] std::size_t encode_reply_head(const Reply& r,
                                            std::span<std::byte, kReplyHeaderSize> out) noexcept;

// Whether a decoded reply has the shape its op promises (docs/protocol.md, "Reply shapes"): an error
// (-4095..-1) carries neither fd nor payload; a successful open, connect or listen carries an fd; stat
// the stat record; readlink result == payload size (at most kMaxPath); getxattr and listxattr a result
// of at most kMaxXattrValue and either no payload (the size was asked) or result == payload size; every
// other op neither. A receiver ends a channel whose replies do not fit, since its peer is not speaking
// this protocol.
[[nodiscard]] bool reply_shape_ok(const Reply& r) noexcept;

// An open_many reply's results: `result` is the number of entries, and the payload one signed 32-bit
// value per entry, in request order: 0 when a descriptor came for the entry (the descriptors travel in
// entry order, one per 0), -errno when its open failed.
void encode_batch_results(std::span<const std::int32_t> results, std::span<std::byte> out) noexcept;
// Entry i's result from an open_many reply's payload (-EPROTO beyond its end).
[[nodiscard]] std::int32_t batch_result(std::span<const std::byte> payload, std::size_t i) noexcept;
// How many descriptors an open_many reply that reply_shape_ok accepted announces.
[[nodiscard]] std::size_t batch_descriptors(const Reply& r) noexcept;

// struct stat travels as 16 little-endian u64 fields (see docs/protocol.md).
void encode_stat(const struct ::stat& st, std::span<std::byte, kStatPayloadSize> out) noexcept;
[[nodiscard]] bool decode_stat(std::span<const std::byte> in, struct ::stat& st) noexcept;

// utimens times travel as four little-endian 64-bit fields: atime seconds and nanoseconds, then mtime's
// (two's complement; UTIME_NOW and UTIME_OMIT as themselves). Decoding fails for a wrong size, or values
// the host's timespec cannot hold; nanoseconds out of range are the kernel's to refuse (EINVAL), as for
// the caller's own utimensat.
void encode_times(const struct ::timespec (&times)[2], std::span<std::byte, kTimesDataSize> out) noexcept;
[[nodiscard]] bool decode_times(std::span<const std::byte> in, struct ::timespec (&times)[2]) noexcept;

}  // namespace fdbroker::wire
