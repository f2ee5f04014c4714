// Encoding and decoding of frames. Every field is read and written byte by byte in little-endian
// order, so the format does not depend on the host's struct layout or byte order.
#include "proto/wire.hpp"

#include <cstring>
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
constexpr std::size_t kReqReserved = 20;

// Reply header offsets (docs/protocol.md, "Reply").
constexpr std::size_t kRepVersion = 0;
constexpr std::size_t kRepOp = 2;
constexpr std::size_t kRepId = 4;
constexpr std::size_t kRepResult = 8;
constexpr std::size_t kRepPayloadLen = 12;
constexpr std::size_t kRepFlags = 14;

constexpr std::uint16_t kFlagFd = 0x0001;
// The largest errno a reply may carry (the kernel's MAX_ERRNO); also keeps -result from overflowing.
constexpr std::int32_t kMaxErrno = 4095;

static_assert(kRequestHeaderSize == kReqReserved + 4);
static_assert(kReplyHeaderSize == kRepFlags + 2);
static_assert(kMaxPath <= std::numeric_limits<std::uint16_t>::max());

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

// Which of arg0/arg1 an op gives meaning to; the others must be zero on the wire.
struct ArgUse {
    bool arg0;
    bool arg1;
};

ArgUse op_args(Op op) noexcept {
    switch (op) {
        case Op::open:
            return {true, true};
        case Op::access:
        case Op::mkdir:
        case Op::listen:
            return {true, false};
        default:
            return {false, false};
    }
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
    switch (op) {
        case Op::attach:
            return "attach";
        case Op::open:
            return "open";
        case Op::access:
            return "access";
        case Op::stat:
            return "stat";
        case Op::readlink:
            return "readlink";
        case Op::mkdir:
            return "mkdir";
        case Op::unlink:
            return "unlink";
        case Op::rmdir:
            return "rmdir";
        case Op::rename:
            return "rename";
        case Op::connect:
            return "connect";
        case Op::listen:
            return "listen";
    }
    return "unknown";
}

int op_path_count(Op op) noexcept {
    switch (op) {
        case Op::attach:
            return 0;
        case Op::open:
        case Op::access:
        case Op::stat:
        case Op::readlink:
        case Op::mkdir:
        case Op::unlink:
        case Op::rmdir:
        case Op::connect:
        case Op::listen:
            return 1;
        case Op::rename:
            return 2;
    }
    return 0;
}

bool op_is_known(std::uint16_t op) noexcept {
    return op >= static_cast<std::uint16_t>(Op::attach) && op <= static_cast<std::uint16_t>(Op::listen);
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
            return "lengths disagree with the frame size or exceed the limit";
        case DecodeError::bad_path:
            return "empty path where one is required, or NUL in a path";
        case DecodeError::reserved_set:
            return "reserved field or flag is not zero";
    }
    return "unknown decode error";
}

DecodedRequest decode_request(std::span<const std::byte> frame) noexcept {
    const auto fail = [](DecodeError e) { return DecodedRequest{std::nullopt, e}; };
    // Sizes first: nothing beyond the header is looked at until the frame is known to hold it.
    if (frame.size() < kRequestHeaderSize) return fail(DecodeError::too_short);
    if (frame.size() > kMaxRequestSize) return fail(DecodeError::too_long);
    const std::byte* p = frame.data();
    if (get16(p + kReqVersion) != kVersion) return fail(DecodeError::bad_version);
    const std::uint16_t raw_op = get16(p + kReqOp);
    if (!op_is_known(raw_op)) return fail(DecodeError::unknown_op);
    const auto op = static_cast<Op>(raw_op);

    Request r;
    r.op = op;
    r.id = get32(p + kReqId);
    r.arg0 = get32(p + kReqArg0);
    r.arg1 = get32(p + kReqArg1);
    const ArgUse use = op_args(op);
    if (get32(p + kReqReserved) != 0 || (!use.arg0 && r.arg0 != 0) || (!use.arg1 && r.arg1 != 0))
        return fail(DecodeError::reserved_set);

    const std::size_t len0 = get16(p + kReqLen0);
    const std::size_t len1 = get16(p + kReqLen1);
    if (len0 > kMaxPath || len1 > kMaxPath) return fail(DecodeError::bad_length);
    if (kRequestHeaderSize + len0 + len1 != frame.size()) return fail(DecodeError::bad_length);
    // A path an op does not take must be absent, a path it does take must be present.
    const int paths = op_path_count(op);
    if ((paths < 1 && len0 != 0) || (paths < 2 && len1 != 0)) return fail(DecodeError::bad_length);
    if ((paths >= 1 && len0 == 0) || (paths >= 2 && len1 == 0)) return fail(DecodeError::bad_path);

    const char* text = reinterpret_cast<const char*>(p + kRequestHeaderSize);
    r.path = std::string_view(text, len0);
    r.path2 = std::string_view(text + len0, len1);
    if (has_nul(r.path) || has_nul(r.path2)) return fail(DecodeError::bad_path);
    return {r, {}};
}

std::size_t encode_request(const Request& r, std::span<std::byte> out) noexcept {
    if (r.path.size() > kMaxPath || r.path2.size() > kMaxPath) return 0;
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
    put32(p + kReqReserved, 0);
    // An absent path may be a null view, which memcpy must not be given even for zero bytes.
    if (!r.path.empty()) std::memcpy(p + kRequestHeaderSize, r.path.data(), r.path.size());
    if (!r.path2.empty()) std::memcpy(p + kRequestHeaderSize + r.path.size(), r.path2.data(), r.path2.size());
    return size;
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
    if ((flags & ~kFlagFd) != 0) return fail(DecodeError::reserved_set);
    const std::size_t payload_len = get16(p + kRepPayloadLen);
    if (payload_len > kMaxPath || kReplyHeaderSize + payload_len != frame.size())
        return fail(DecodeError::bad_length);

    Reply r;
    r.op = static_cast<Op>(raw_op);
    r.id = get32(p + kRepId);
    r.result = static_cast<std::int32_t>(get32(p + kRepResult));
    r.has_fd = (flags & kFlagFd) != 0;
    r.payload = frame.subspan(kReplyHeaderSize, payload_len);
    return {r, {}};
}

std::size_t encode_reply(const Reply& r, std::span<std::byte> out) noexcept {
    if (r.payload.size() > kMaxPath) return 0;
    const std::size_t size = kReplyHeaderSize + r.payload.size();
    if (out.size() < size) return 0;
    std::byte* p = out.data();
    put16(p + kRepVersion, kVersion);
    put16(p + kRepOp, static_cast<std::uint16_t>(r.op));
    put32(p + kRepId, r.id);
    put32(p + kRepResult, static_cast<std::uint32_t>(r.result));
    put16(p + kRepPayloadLen, static_cast<std::uint16_t>(r.payload.size()));
    put16(p + kRepFlags, r.has_fd ? kFlagFd : 0);
    if (!r.payload.empty()) std::memcpy(p + kReplyHeaderSize, r.payload.data(), r.payload.size());
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
            return !r.has_fd && r.payload.size() == static_cast<std::size_t>(r.result);
        default:
            return !r.has_fd && r.payload.empty();
    }
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

}  // namespace fdbroker::wire
