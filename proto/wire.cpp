// Encoding and decoding of frames. Every field is read and written byte by byte in little-endian
// order, so the format does not depend on the host's struct layout or byte order.
#include "proto/wire.hpp"

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>
#include <type_traits>

namespace fdbroker::wire {
namespace {

// Request header offsets (docs/protocol.md, "Request").
constexpr std::size_t kReqVersion = 0;
constexpr std::size_t kReqOp = 2;
constexpr std::size_t kReqId = 4;
constexpr std::size_t kReqArg0 = 8;
constexpr std::size_t kReqArg1 = 12;
constexpr std::size_t kReqLen0 = 16;
constexpr std::size_t kReqLen1 = 18;
constexpr std::size_t kReqFlags = 20;

// Reply header offsets (docs/protocol.md, "Reply").
constexpr std::size_t kRepVersion = 0;
constexpr std::size_t kRepOp = 2;
constexpr std::size_t kRepId = 4;
constexpr std::size_t kRepResult = 8;
constexpr std::size_t kRepPayloadLen = 12;
constexpr std::size_t kRepFlags = 14;

constexpr std::uint16_t kFlagFd = 0x0001;
// The payload is kMaxReplyPayload (65536) bytes, one more than payload_len can say; payload_len is then 0.
constexpr std::uint16_t kFlagFullPayload = 0x0002;
// The largest errno a reply may carry (the kernel's MAX_ERRNO); also keeps -result from overflowing.
constexpr std::int32_t kMaxErrno = 4095;

static_assert(kRequestHeaderSize == kReqFlags + 4);
static_assert(kReplyHeaderSize == kRepFlags + 2);
static_assert(kMaxPath <= std::numeric_limits<std::uint16_t>::max());
static_assert(kMaxReplyPayload == std::numeric_limits<std::uint16_t>::max() + 1UL);
static_assert(kMaxRequestSize >= kMaxRequestHeadSize);

void put16(std::byte* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::byte>(v & 0xffU);
    p[1] = static_cast<std::byte>(v >> 8U);
}

void put32(std::byte* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i)
        p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xffU);
}

void put64(std::byte* p, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i)
        p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xffU);
}

std::uint16_t get16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | std::to_integer<unsigned>(p[1])
                                                                            << 8U);
}

std::uint32_t get32(const std::byte* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8U) | std::to_integer<std::uint32_t>(p[i]);
    return v;
}

std::uint64_t get64(const std::byte* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8U) | std::to_integer<std::uint64_t>(p[i]);
    return v;
}

bool has_nul(std::string_view s) noexcept {
    return s.find('\0') != std::string_view::npos;
}

// What each op carries, checked by decode_request: its paths, the arguments and request flags it takes
// (an argument it does not take is 0 on the wire, one it takes at most its max), and its data.
struct Shape {
    Op op;
    std::string_view name;
    int paths;  // 0, 1 or 2
    std::uint32_t arg0_max;
    std::uint32_t arg1_max;
    std::uint32_t flags;
    bool xattr_name;  // path2 is an extended attribute's name, at most kMaxXattrName bytes
    std::size_t min_data;
    std::size_t max_data;
};

constexpr std::uint32_t kAny = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint32_t kXattrSetFlags = XATTR_CREATE | XATTR_REPLACE;
static_assert(kXattrSetFlags == 3, "setxattr's flags are the low bits its arg0 may hold");
constexpr auto kXattrSize = static_cast<std::uint32_t>(kMaxXattrValue);

// Indexed by op number - 1.
constexpr Shape kShapes[] = {
    {Op::attach, "attach", 0, 0, 0, 0, false, 0, 0},
    {Op::open, "open", 1, kAny, kAny, 0, false, 0, 0},
    {Op::access, "access", 1, kAny, 0, 0, false, 0, 0},
    {Op::stat, "stat", 1, 0, 0, 0, false, 0, 0},
    {Op::readlink, "readlink", 1, 0, 0, 0, false, 0, 0},
    {Op::mkdir, "mkdir", 1, kAny, 0, 0, false, 0, 0},
    {Op::unlink, "unlink", 1, 0, 0, 0, false, 0, 0},
    {Op::rmdir, "rmdir", 1, 0, 0, 0, false, 0, 0},
    {Op::rename, "rename", 2, 0, 0, 0, false, 0, 0},
    {Op::connect, "connect", 1, 0, 0, 0, false, 0, 0},
    {Op::listen, "listen", 1, kAny, 0, 0, false, 0, 0},
    {Op::chmod, "chmod", 1, kAny, 0, kNoFollow, false, 0, 0},
    {Op::chown, "chown", 1, kAny, kAny, kNoFollow, false, 0, 0},
    {Op::truncate, "truncate", 1, kAny, kAny, 0, false, 0, 0},
    {Op::utimens, "utimens", 1, 0, 0, kNoFollow, false, kTimesDataSize, kTimesDataSize},
    {Op::link, "link", 2, 0, 0, kFollow, false, 0, 0},
    {Op::mknod, "mknod", 1, kAny, kAny, 0, false, 0, 0},
    {Op::getxattr, "getxattr", 2, kXattrSize, 0, kNoFollow, true, 0, 0},
    {Op::listxattr, "listxattr", 1, kXattrSize, 0, kNoFollow, false, 0, 0},
    {Op::setxattr, "setxattr", 2, kXattrSetFlags, 0, kNoFollow, true, 0, kMaxXattrValue},
    {Op::removexattr, "removexattr", 2, 0, 0, kNoFollow, true, 0, 0},
    {Op::open_many, "open_many", 0, static_cast<std::uint32_t>(kMaxBatch), 0, 0, false,
     kBatchEntryHeaderSize + 1, kMaxBatchData},
};
constexpr std::uint16_t kLastOp = static_cast<std::uint16_t>(Op::open_many);
static_assert(std::size(kShapes) == kLastOp);

constexpr bool shapes_in_op_order() {
    for (std::size_t i = 0; i < std::size(kShapes); ++i)
        if (static_cast<std::size_t>(kShapes[i].op) != i + 1) return false;
    return true;
}
static_assert(shapes_in_op_order(), "kShapes[n - 1] describes op n");

const Shape* shape_of(std::uint16_t op) noexcept {
    return op >= 1 && op <= kLastOp ? &kShapes[op - 1] : nullptr;
}

// Stores a field of struct stat as u64: signed values as two's complement.
template <class T>
std::uint64_t to_wire(T v) noexcept {
    if constexpr (std::is_signed_v<T>) {
        return static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
    } else {
        return static_cast<std::uint64_t>(v);
    }
}

// Reads a u64 back into a field of type T; false if the value does not fit T (a lying or foreign
// sender), so that a truncated value is never passed off as the real one.
template <class T>
bool from_wire(std::uint64_t raw, T& out) noexcept {
    if constexpr (std::is_signed_v<T>) {
        const auto v = static_cast<std::int64_t>(raw);
        if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
            v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
            return false;
        out = static_cast<T>(v);
    } else {
        if (raw > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return false;
        out = static_cast<T>(raw);
    }
    return true;
}

bool nsec_ok(long nsec) noexcept {
    return nsec >= 0 && nsec < 1'000'000'000L;
}

}  // namespace

std::string_view op_name(Op op) noexcept {
    const Shape* shape = shape_of(static_cast<std::uint16_t>(op));
    return shape != nullptr ? shape->name : "unknown";
}

int op_path_count(Op op) noexcept {
    const Shape* shape = shape_of(static_cast<std::uint16_t>(op));
    return shape != nullptr ? shape->paths : 0;
}

bool op_is_known(std::uint16_t op) noexcept {
    return shape_of(op) != nullptr;
}

std::string_view describe(DecodeError e) noexcept {
    switch (e) {
        case DecodeError::too_short:
            return "frame shorter than its header";
        case DecodeError::too_long:
            return "frame longer than the largest legal frame";
        case DecodeError::bad_version:
            return "unsupported protocol version";
        case DecodeError::unknown_op:
            return "unknown op";
        case DecodeError::bad_length:
            return "lengths disagree with the frame size or exceed the op's limits";
        case DecodeError::bad_path:
            return "empty path where one is required, or NUL in a path";
        case DecodeError::reserved_set:
            return "reserved field, flag or argument is not zero";
        case DecodeError::bad_argument:
            return "argument outside the values its op allows";
    }
    return "unknown decode error";
}

namespace {

// The header's fields against the op's shape: the request flags and arguments it takes.
std::optional<DecodeError> check_arguments(const Shape& shape, const Request& r) noexcept {
    if ((r.flags & ~shape.flags) != 0 || (shape.arg0_max == 0 && r.arg0 != 0) ||
        (shape.arg1_max == 0 && r.arg1 != 0))
        return DecodeError::reserved_set;
    if (r.arg0 > shape.arg0_max || r.arg1 > shape.arg1_max) return DecodeError::bad_argument;
    return std::nullopt;
}

// The lengths against the frame and the op: paths within their limits, then as much data as the op
// takes, and exactly the paths it takes.
std::optional<DecodeError> check_lengths(const Shape& shape, std::size_t len0, std::size_t len1,
                                         std::size_t frame_size) noexcept {
    if (len0 > kMaxPath || len1 > (shape.xattr_name ? kMaxXattrName : kMaxPath))
        return DecodeError::bad_length;
    if (kRequestHeaderSize + len0 + len1 > frame_size) return DecodeError::bad_length;
    const std::size_t data = frame_size - kRequestHeaderSize - len0 - len1;
    if (data < shape.min_data || data > shape.max_data) return DecodeError::bad_length;
    // A path an op does not take must be absent, a path it does take must be present.
    if ((shape.paths < 1 && len0 != 0) || (shape.paths < 2 && len1 != 0)) return DecodeError::bad_length;
    if ((shape.paths >= 1 && len0 == 0) || (shape.paths >= 2 && len1 == 0)) return DecodeError::bad_path;
    return std::nullopt;
}

// An open_many request's entries: exactly `count` of them fill `data`, each with a path of 1 to
// kMaxPath bytes and no NUL.
std::optional<DecodeError> check_batch(std::uint32_t count, std::span<const std::byte> data) noexcept {
    if (count == 0) return DecodeError::bad_argument;
    for (std::uint32_t i = 0; i < count; ++i) {
        if (data.size() < kBatchEntryHeaderSize) return DecodeError::bad_length;
        const std::size_t len = get16(data.data() + 8);
        if (len > kMaxPath || data.size() - kBatchEntryHeaderSize < len) return DecodeError::bad_length;
        const std::string_view path(reinterpret_cast<const char*>(data.data() + kBatchEntryHeaderSize), len);
        if (path.empty() || has_nul(path)) return DecodeError::bad_path;
        data = data.subspan(kBatchEntryHeaderSize + len);
    }
    if (!data.empty()) return DecodeError::bad_length;
    return std::nullopt;
}

}  // namespace

DecodedRequest decode_request(std::span<const std::byte> frame) noexcept {
    const auto fail = [](DecodeError e) { return DecodedRequest{std::nullopt, e}; };
    // Sizes first: nothing beyond the header is looked at until the frame is known to hold it.
    if (frame.size() < kRequestHeaderSize) return fail(DecodeError::too_short);
    if (frame.size() > kMaxRequestSize) return fail(DecodeError::too_long);
    const std::byte* p = frame.data();
    if (get16(p + kReqVersion) != kVersion) return fail(DecodeError::bad_version);
    const Shape* shape = shape_of(get16(p + kReqOp));
    if (shape == nullptr) return fail(DecodeError::unknown_op);

    Request r;
    r.op = static_cast<Op>(get16(p + kReqOp));
    r.id = get32(p + kReqId);
    r.arg0 = get32(p + kReqArg0);
    r.arg1 = get32(p + kReqArg1);
    r.flags = get32(p + kReqFlags);
    if (const auto error = check_arguments(*shape, r)) return fail(*error);

    const std::size_t len0 = get16(p + kReqLen0);
    const std::size_t len1 = get16(p + kReqLen1);
    if (const auto error = check_lengths(*shape, len0, len1, frame.size())) return fail(*error);

    const char* text = reinterpret_cast<const char*>(p + kRequestHeaderSize);
    r.path = std::string_view(text, len0);
    r.path2 = std::string_view(text + len0, len1);
    if (has_nul(r.path) || has_nul(r.path2)) return fail(DecodeError::bad_path);
    r.data = frame.subspan(kRequestHeaderSize + len0 + len1);
    if (r.op == Op::open_many) {
        if (const auto error = check_batch(r.arg0, r.data)) return fail(*error);
    }
    return {r, {}};
}

std::size_t encode_request_head(const Request& r, std::span<std::byte> out) noexcept {
    if (r.path.size() > kMaxPath || r.path2.size() > kMaxPath || r.data.size() > kMaxXattrValue) return 0;
    if (has_nul(r.path) || has_nul(r.path2)) return 0;
    const std::size_t size = kRequestHeaderSize + r.path.size() + r.path2.size();
    if (out.size() < size) return 0;
    std::byte* p = out.data();
    put16(p + kReqVersion, kVersion);
    put16(p + kReqOp, static_cast<std::uint16_t>(r.op));
    put32(p + kReqId, r.id);
    put32(p + kReqArg0, r.arg0);
    put32(p + kReqArg1, r.arg1);
    put16(p + kReqLen0, static_cast<std::uint16_t>(r.path.size()));
    put16(p + kReqLen1, static_cast<std::uint16_t>(r.path2.size()));
    put32(p + kReqFlags, r.flags);
    // An absent path may be a null view, which memcpy must not be given even for zero bytes.
    if (!r.path.empty()) std::memcpy(p + kRequestHeaderSize, r.path.data(), r.path.size());
    if (!r.path2.empty()) std::memcpy(p + kRequestHeaderSize + r.path.size(), r.path2.data(), r.path2.size());
    return size;
}

std::size_t encode_request(const Request& r, std::span<std::byte> out) noexcept {
    const std::size_t head = encode_request_head(r, out);
    if (head == 0 || out.size() - head < r.data.size()) return 0;
    if (!r.data.empty()) std::memcpy(out.data() + head, r.data.data(), r.data.size());
    return head + r.data.size();
}

DecodedReply decode_reply(std::span<const std::byte> frame) noexcept {
    const auto fail = [](DecodeError e) { return DecodedReply{std::nullopt, e}; };
    if (frame.size() < kReplyHeaderSize) return fail(DecodeError::too_short);
    if (frame.size() > kMaxReplySize) return fail(DecodeError::too_long);
    const std::byte* p = frame.data();
    if (get16(p + kRepVersion) != kVersion) return fail(DecodeError::bad_version);
    const std::uint16_t raw_op = get16(p + kRepOp);
    if (!op_is_known(raw_op)) return fail(DecodeError::unknown_op);
    const std::uint16_t flags = get16(p + kRepFlags);
    if ((flags & ~(kFlagFd | kFlagFullPayload)) != 0) return fail(DecodeError::reserved_set);
    std::size_t payload_len = get16(p + kRepPayloadLen);
    if ((flags & kFlagFullPayload) != 0) {
        if (payload_len != 0) return fail(DecodeError::bad_length);
        payload_len = kMaxReplyPayload;
    }
    if (kReplyHeaderSize + payload_len != frame.size()) return fail(DecodeError::bad_length);

    Reply r;
    r.op = static_cast<Op>(raw_op);
    r.id = get32(p + kRepId);
    r.result = static_cast<std::int32_t>(get32(p + kRepResult));
    r.has_fd = (flags & kFlagFd) != 0;
    r.payload = frame.subspan(kReplyHeaderSize, payload_len);
    return {r, {}};
}

std::size_t encode_reply_head(const Reply& r, std::span<std::byte, kReplyHeaderSize> out) noexcept {
    if (r.payload.size() > kMaxReplyPayload) return 0;
    std::byte* p = out.data();
    put16(p + kRepVersion, kVersion);
    put16(p + kRepOp, static_cast<std::uint16_t>(r.op));
    put32(p + kRepId, r.id);
    put32(p + kRepResult, static_cast<std::uint32_t>(r.result));
    const bool full = r.payload.size() == kMaxReplyPayload;
    put16(p + kRepPayloadLen, full ? 0 : static_cast<std::uint16_t>(r.payload.size()));
    put16(p + kRepFlags,
          static_cast<std::uint16_t>((r.has_fd ? kFlagFd : 0) | (full ? kFlagFullPayload : 0)));
    return kReplyHeaderSize;
}

std::size_t encode_reply(const Reply& r, std::span<std::byte> out) noexcept {
    const std::size_t size = kReplyHeaderSize + r.payload.size();
    if (out.size() < size || encode_reply_head(r, out.first<kReplyHeaderSize>()) == 0) return 0;
    if (!r.payload.empty()) std::memcpy(out.data() + kReplyHeaderSize, r.payload.data(), r.payload.size());
    return size;
}

bool reply_shape_ok(const Reply& r) noexcept {
    if (r.result < 0) return r.result >= -kMaxErrno && !r.has_fd && r.payload.empty();
    switch (r.op) {
        case Op::open:
        case Op::connect:
        case Op::listen:
            return r.has_fd && r.payload.empty();
        case Op::stat:
            return !r.has_fd && r.payload.size() == kStatPayloadSize;
        case Op::readlink:
            return !r.has_fd && r.payload.size() == static_cast<std::size_t>(r.result) &&
                   r.payload.size() <= kMaxPath;
        case Op::open_many: {
            if (r.result < 1 || static_cast<std::size_t>(r.result) > kMaxBatch ||
                r.payload.size() != static_cast<std::size_t>(r.result) * kBatchResultSize)
                return false;
            std::size_t fds = 0;
            for (std::size_t i = 0; i < static_cast<std::size_t>(r.result); ++i) {
                const std::int32_t v = batch_result(r.payload, i);
                if (v > 0 || v < -kMaxErrno) return false;
                if (v == 0) ++fds;
            }
            return r.has_fd == (fds != 0);
        }
        case Op::getxattr:
        case Op::listxattr:
            // No payload when the caller asked only for the size.
            return !r.has_fd && static_cast<std::size_t>(r.result) <= kMaxXattrValue &&
                   (r.payload.empty() || r.payload.size() == static_cast<std::size_t>(r.result));
        default:
            return !r.has_fd && r.payload.empty();
    }
}

std::size_t open_entry_size(std::string_view path) noexcept {
    if (path.empty() || path.size() > kMaxPath || has_nul(path)) return 0;
    return kBatchEntryHeaderSize + path.size();
}

std::size_t encode_open_entry(const OpenEntry& entry, std::span<std::byte> out) noexcept {
    const std::size_t size = open_entry_size(entry.path);
    if (size == 0 || out.size() < size) return 0;
    std::byte* p = out.data();
    put32(p, entry.flags);
    put32(p + 4, entry.mode);
    put16(p + 8, static_cast<std::uint16_t>(entry.path.size()));
    std::memcpy(p + kBatchEntryHeaderSize, entry.path.data(), entry.path.size());
    return size;
}

std::optional<OpenEntry> next_open_entry(std::span<const std::byte>& data) noexcept {
    if (data.size() < kBatchEntryHeaderSize) return std::nullopt;
    const std::size_t len = get16(data.data() + 8);
    if (data.size() - kBatchEntryHeaderSize < len) return std::nullopt;
    OpenEntry entry;
    entry.flags = get32(data.data());
    entry.mode = get32(data.data() + 4);
    entry.path = std::string_view(reinterpret_cast<const char*>(data.data() + kBatchEntryHeaderSize), len);
    data = data.subspan(kBatchEntryHeaderSize + len);
    return entry;
}

void encode_batch_results(std::span<const std::int32_t> results, std::span<std::byte> out) noexcept {
    for (std::size_t i = 0; i < results.size() && (i + 1) * kBatchResultSize <= out.size(); ++i)
        put32(out.data() + i * kBatchResultSize, static_cast<std::uint32_t>(results[i]));
}

std::int32_t batch_result(std::span<const std::byte> payload, std::size_t i) noexcept {
    if ((i + 1) * kBatchResultSize > payload.size()) return -EPROTO;
    return static_cast<std::int32_t>(get32(payload.data() + i * kBatchResultSize));
}

std::size_t batch_descriptors(const Reply& r) noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i * kBatchResultSize < r.payload.size(); ++i)
        if (batch_result(r.payload, i) == 0) ++n;
    return n;
}

void encode_stat(const struct ::stat& st, std::span<std::byte, kStatPayloadSize> out) noexcept {
    const std::uint64_t fields[16] = {
        to_wire(st.st_dev),          to_wire(st.st_ino),          to_wire(st.st_mode),
        to_wire(st.st_nlink),        to_wire(st.st_uid),          to_wire(st.st_gid),
        to_wire(st.st_rdev),         to_wire(st.st_size),         to_wire(st.st_blksize),
        to_wire(st.st_blocks),       to_wire(st.st_atim.tv_sec),  to_wire(st.st_atim.tv_nsec),
        to_wire(st.st_mtim.tv_sec),  to_wire(st.st_mtim.tv_nsec), to_wire(st.st_ctim.tv_sec),
        to_wire(st.st_ctim.tv_nsec),
    };
    for (std::size_t i = 0; i < 16; ++i)
        put64(out.data() + 8 * i, fields[i]);
}

bool decode_stat(std::span<const std::byte> in, struct ::stat& st) noexcept {
    if (in.size() != kStatPayloadSize) return false;
    std::uint64_t f[16];
    for (std::size_t i = 0; i < 16; ++i)
        f[i] = get64(in.data() + 8 * i);
    struct ::stat s {};
    const bool ok = from_wire(f[0], s.st_dev) && from_wire(f[1], s.st_ino) && from_wire(f[2], s.st_mode) &&
                    from_wire(f[3], s.st_nlink) && from_wire(f[4], s.st_uid) && from_wire(f[5], s.st_gid) &&
                    from_wire(f[6], s.st_rdev) && from_wire(f[7], s.st_size) &&
                    from_wire(f[8], s.st_blksize) && from_wire(f[9], s.st_blocks) &&
                    from_wire(f[10], s.st_atim.tv_sec) && from_wire(f[11], s.st_atim.tv_nsec) &&
                    from_wire(f[12], s.st_mtim.tv_sec) && from_wire(f[13], s.st_mtim.tv_nsec) &&
                    from_wire(f[14], s.st_ctim.tv_sec) && from_wire(f[15], s.st_ctim.tv_nsec);
    if (!ok || !nsec_ok(s.st_atim.tv_nsec) || !nsec_ok(s.st_mtim.tv_nsec) || !nsec_ok(s.st_ctim.tv_nsec))
        return false;
    st = s;
    return true;
}

void encode_times(const struct ::timespec (&times)[2], std::span<std::byte, kTimesDataSize> out) noexcept {
    const std::uint64_t fields[4] = {to_wire(times[0].tv_sec), to_wire(times[0].tv_nsec),
                                     to_wire(times[1].tv_sec), to_wire(times[1].tv_nsec)};
    for (std::size_t i = 0; i < 4; ++i)
        put64(out.data() + 8 * i, fields[i]);
}

bool decode_times(std::span<const std::byte> in, struct ::timespec (&times)[2]) noexcept {
    if (in.size() != kTimesDataSize) return false;
    struct ::timespec t[2]{};
    if (!from_wire(get64(in.data()), t[0].tv_sec) || !from_wire(get64(in.data() + 8), t[0].tv_nsec) ||
        !from_wire(get64(in.data() + 16), t[1].tv_sec) || !from_wire(get64(in.data() + 24), t[1].tv_nsec))
        return false;
    times[0] = t[0];
    times[1] = t[1];
    return true;
}

}  // namespace fdbroker::wire
