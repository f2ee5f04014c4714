// Frame decoders: any bytes a hostile peer sends. A frame that decodes must re-encode to the same
// bytes (the decoder accepts only the canonical form), and a reply must never claim a shape the
// receiver would then trust without checking.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "proto/wire.hpp"

using namespace fdbroker::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data), size);

    const DecodedRequest req = decode_request(frame);
    if (req.request) {
        const Request& r = *req.request;
        if (!op_is_known(static_cast<std::uint16_t>(r.op))) __builtin_trap();
        if (r.path.size() > kMaxPath || r.path2.size() > kMaxPath) __builtin_trap();
        if (r.path.find('\0') != std::string_view::npos || r.path2.find('\0') != std::string_view::npos)
            __builtin_trap();
        if (r.data.size() > kMaxXattrValue) __builtin_trap();
        if (r.op == Op::utimens) {
            struct ::timespec times[2];
            if (!decode_times(r.data, times)) __builtin_trap();  // its size was checked
        }
        if (r.op == Op::open_many) {
            // Exactly arg0 entries fill the data, each a path the op may carry.
            std::span<const std::byte> rest = r.data;
            std::uint32_t entries = 0;
            while (const auto entry = next_open_entry(rest)) {
                if (entry->path.empty() || entry->path.size() > kMaxPath ||
                    entry->path.find('\0') != std::string_view::npos)
                    __builtin_trap();
                ++entries;
            }
            if (entries != r.arg0 || entries > kMaxBatch || !rest.empty()) __builtin_trap();
        }
        std::vector<std::byte> out(kMaxRequestSize);
        const std::size_t n = encode_request(r, out);
        if (n != size || std::memcmp(out.data(), data, size) != 0) __builtin_trap();
    }

    const DecodedReply rep = decode_reply(frame);
    if (rep.reply) {
        const Reply& r = *rep.reply;
        if (r.payload.size() > kMaxReplyPayload) __builtin_trap();
        (void)reply_shape_ok(r);
        if (r.op == Op::stat && r.payload.size() == kStatPayloadSize) {
            struct ::stat st {};
            (void)decode_stat(r.payload, st);
        }
        std::vector<std::byte> out(kMaxReplySize);
        const std::size_t n = encode_reply(r, out);
        if (n != size || std::memcmp(out.data(), data, size) != 0) __builtin_trap();
    }
    return 0;
}
