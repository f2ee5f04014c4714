// The wire format: round trips, and rejection (never a crash) of every kind of bad frame.
#include "proto/wire.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace fdbroker::wire {
namespace {

using Bytes = std::vector<std::byte>;

Bytes encode(const Request& r) {
    Bytes out(kMaxRequestSize);
    const std::size_t n = encode_request(r, out);
    out.resize(n);
    return out;
}

Bytes encode(const Reply& r) {
    Bytes out(kMaxReplySize);
    const std::size_t n = encode_reply(r, out);
    out.resize(n);
    return out;
}

Request make(Op op, std::string_view path = {}, std::string_view path2 = {}) {
    Request r;
    r.op = op;
    r.id = 0x01020304;
    r.path = path;
    r.path2 = path2;
    return r;
}

// Data of the size utimens takes (any 32 bytes decode; the kernel judges the times).
const std::array<std::byte, kTimesDataSize> kSomeTimes{};

bool takes_a_name(Op op) {
    return op == Op::getxattr || op == Op::setxattr || op == Op::removexattr;
}

// A valid request for each op, with as many paths (or a path and a name) as it takes, and the data
// it must carry.
Request sample(Op op) {
    Request r;
    switch (op_path_count(op)) {
        case 0:
            r = make(op);
            break;
        case 1:
            r = make(op, "/etc/hostname");
            break;
        default:
            r = takes_a_name(op) ? make(op, "/var/a", "user.mime_type") : make(op, "/var/a", "/var/b");
            break;
    }
    if (op == Op::utimens) r.data = kSomeTimes;
    return r;
}

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = std::byte(v & 0xff);
    b[at + 1] = std::byte(v >> 8);
}

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        b[at + i] = std::byte((v >> (8 * i)) & 0xff);
}

const Op kAllOps[] = {Op::attach,    Op::open,     Op::access,     Op::stat,    Op::readlink, Op::mkdir,
                      Op::unlink,    Op::rmdir,    Op::rename,     Op::connect, Op::listen,   Op::chmod,
                      Op::chown,     Op::truncate, Op::utimens,    Op::link,    Op::mknod,    Op::getxattr,
                      Op::listxattr, Op::setxattr, Op::removexattr};

// The ops that take the request flag kNoFollow.
const Op kNoFollowOps[] = {Op::chmod,     Op::chown,    Op::utimens,    Op::getxattr,
                           Op::listxattr, Op::setxattr, Op::removexattr};

TEST(Wire, RequestLayoutIsLittleEndian) {
    Request r = make(Op::open, "/ab");
    r.id = 0x11223344;
    r.arg0 = 0x55667788;
    r.arg1 = 0x01a4;
    const Bytes b = encode(r);
    const std::array<unsigned char, 27> expected = {0x01, 0x00, 0x02, 0x00, 0x44, 0x33, 0x22, 0x11, 0x88,
                                                    0x77, 0x66, 0x55, 0xa4, 0x01, 0x00, 0x00, 0x03, 0x00,
                                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, '/',  'a',  'b'};
    ASSERT_EQ(b.size(), expected.size());
    EXPECT_EQ(std::memcmp(b.data(), expected.data(), expected.size()), 0);
}

TEST(Wire, ReplyLayoutIsLittleEndian) {
    Reply r;
    r.op = Op::stat;
    r.id = 7;
    r.result = -13;
    r.has_fd = true;
    const Bytes b = encode(r);
    const std::array<unsigned char, 16> expected = {0x01, 0x00, 0x04, 0x00, 0x07, 0x00, 0x00, 0x00,
                                                    0xf3, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00};
    ASSERT_EQ(b.size(), expected.size());
    EXPECT_EQ(std::memcmp(b.data(), expected.data(), expected.size()), 0);
}

TEST(Wire, EveryRequestOpRoundTrips) {
    for (Op op : kAllOps) {
        SCOPED_TRACE(std::string(op_name(op)));
        Request r = sample(op);
        if (op == Op::open) {
            r.arg0 = 0x80241;
            r.arg1 = 0640;
        } else if (op == Op::access || op == Op::mkdir) {
            r.arg0 = 0755;
        } else if (op == Op::listen) {
            r.arg0 = static_cast<std::uint32_t>(-1);  // a backlog is an int; listen(2) caps it
        }
        const Bytes b = encode(r);
        ASSERT_EQ(b.size(), kRequestHeaderSize + r.path.size() + r.path2.size() + r.data.size());
        const DecodedRequest d = decode_request(b);
        ASSERT_TRUE(d.request) << describe(d.error);
        EXPECT_EQ(d.request->op, op);
        EXPECT_EQ(d.request->id, r.id);
        EXPECT_EQ(d.request->arg0, r.arg0);
        EXPECT_EQ(d.request->arg1, r.arg1);
        EXPECT_EQ(d.request->path, r.path);
        EXPECT_EQ(d.request->path2, r.path2);
        EXPECT_EQ(d.request->data.size(), r.data.size());
        EXPECT_EQ(d.request->flags, 0u);
    }
}

TEST(Wire, DecodedPathsViewTheFrame) {
    const Bytes b = encode(make(Op::rename, "/x/from", "/x/to"));
    const DecodedRequest d = decode_request(b);
    ASSERT_TRUE(d.request);
    EXPECT_EQ(static_cast<const void*>(d.request->path.data()), static_cast<const void*>(b.data() + 24));
    EXPECT_EQ(static_cast<const void*>(d.request->path2.data()), static_cast<const void*>(b.data() + 31));
}

TEST(Wire, LongestPathsRoundTrip) {
    const std::string a(kMaxPath, 'a');
    const std::string z(kMaxPath, 'z');
    const Bytes b = encode(make(Op::rename, a, z));
    ASSERT_EQ(b.size(), kMaxRequestHeadSize);
    const DecodedRequest d = decode_request(b);
    ASSERT_TRUE(d.request) << describe(d.error);
    EXPECT_EQ(d.request->path, a);
    EXPECT_EQ(d.request->path2, z);
}

TEST(Wire, EncodeRefusesWhatCannotBeExpressed) {
    Bytes out(kMaxRequestSize + 10);
    const std::string too_long(kMaxPath + 1, 'a');
    EXPECT_EQ(encode_request(make(Op::open, too_long), out), 0u);
    EXPECT_EQ(encode_request(make(Op::rename, "/a", too_long), out), 0u);
    const std::string with_nul("/a\0b", 4);
    EXPECT_EQ(encode_request(make(Op::open, with_nul), out), 0u);
    EXPECT_EQ(encode_request(make(Op::rename, "/a", with_nul), out), 0u);
    Bytes small(kRequestHeaderSize + 2);
    EXPECT_EQ(encode_request(make(Op::open, "/abc"), small), 0u);

    Reply r;
    r.op = Op::getxattr;
    const Bytes big(kMaxReplyPayload + 1);
    r.payload = big;
    Bytes reply_out(kMaxReplySize + 10);
    EXPECT_EQ(encode_reply(r, reply_out), 0u);
}

TEST(Wire, EveryTruncationIsRejected) {
    const Bytes b = encode(make(Op::rename, "/some/path", "/other"));
    for (std::size_t n = 0; n < b.size(); ++n) {
        const DecodedRequest d = decode_request(std::span(b).first(n));
        EXPECT_FALSE(d.request) << n;
        EXPECT_EQ(d.error, n < kRequestHeaderSize ? DecodeError::too_short : DecodeError::bad_length) << n;
    }
}

TEST(Wire, ExtraBytesAreRejected) {
    Bytes b = encode(make(Op::stat, "/p"));
    b.push_back(std::byte{'x'});
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_length);
}

TEST(Wire, OversizedFramesAreRejected) {
    // The largest request: the longest path and name, and a value of 64 KiB.
    const std::string path(kMaxPath, 'a');
    const std::string name(kMaxXattrName, 'n');
    const Bytes value(kMaxXattrValue, std::byte{'v'});
    Request r = make(Op::setxattr, path, name);
    r.data = value;
    Bytes b = encode(r);
    ASSERT_EQ(b.size(), kMaxRequestSize);
    EXPECT_TRUE(decode_request(b).request);
    b.push_back(std::byte{'v'});
    EXPECT_EQ(decode_request(b).error, DecodeError::too_long);
    b = encode(make(Op::rename, std::string(kMaxPath, 'a'), std::string(kMaxPath, 'b')));
    b.push_back(std::byte{'b'});
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_length);
    const Bytes huge_request(kMaxRequestSize + 1);
    EXPECT_EQ(decode_request(huge_request).error, DecodeError::too_long);
    const Bytes huge_reply(kMaxReplySize + 1);
    EXPECT_EQ(decode_reply(huge_reply).error, DecodeError::too_long);
}

TEST(Wire, BadVersionIsRejected) {
    for (std::uint16_t v : {0, 2, 0x100, 0xffff}) {
        Bytes b = encode(make(Op::stat, "/p"));
        put16(b, 0, v);
        EXPECT_EQ(decode_request(b).error, DecodeError::bad_version) << v;
    }
}

TEST(Wire, UnknownOpIsRejected) {
    for (std::uint16_t op : {0, 23, 24, 0x100, 0xffff}) {
        Bytes b = encode(make(Op::stat, "/p"));
        put16(b, 2, op);
        EXPECT_EQ(decode_request(b).error, DecodeError::unknown_op) << op;
        EXPECT_FALSE(op_is_known(op));
    }
}

TEST(Wire, ReservedFieldMustBeZero) {
    for (std::size_t bit = 0; bit < 32; ++bit) {
        Bytes b = encode(make(Op::stat, "/p"));
        put32(b, 20, 1u << bit);
        EXPECT_EQ(decode_request(b).error, DecodeError::reserved_set) << bit;
    }
}

TEST(Wire, ArgumentsAnOpDoesNotTakeMustBeZero) {
    Bytes b = encode(make(Op::stat, "/p"));
    put32(b, 8, 1);
    EXPECT_EQ(decode_request(b).error, DecodeError::reserved_set);
    b = encode(make(Op::access, "/p"));
    put32(b, 12, 1);
    EXPECT_EQ(decode_request(b).error, DecodeError::reserved_set);
    b = encode(make(Op::attach));
    put32(b, 8, 4);
    EXPECT_EQ(decode_request(b).error, DecodeError::reserved_set);
    b = encode(make(Op::connect, "tcp:127.0.0.1:80"));
    put32(b, 8, 128);  // connect takes no backlog
    EXPECT_EQ(decode_request(b).error, DecodeError::reserved_set);
    b = encode(make(Op::listen, "tcp:127.0.0.1:80"));
    put32(b, 12, 1);
    EXPECT_EQ(decode_request(b).error, DecodeError::reserved_set);
    b = encode(make(Op::listen, "tcp:127.0.0.1:80"));
    put32(b, 8, 128);
    ASSERT_TRUE(decode_request(b).request);
    EXPECT_EQ(decode_request(b).request->arg0, 128u);
}

TEST(Wire, MetadataRequestsCarryTheirArgumentsFlagsAndData) {
    Request chown = make(Op::chown, "/srv/f");
    chown.arg0 = 65534;
    chown.arg1 = 0xffffffff;  // the group unchanged
    chown.flags = kNoFollow;
    const Bytes b = encode(chown);
    DecodedRequest d = decode_request(b);
    ASSERT_TRUE(d.request) << describe(d.error);
    EXPECT_EQ(d.request->arg0, 65534u);
    EXPECT_EQ(d.request->arg1, 0xffffffffu);
    EXPECT_EQ(d.request->flags, kNoFollow);
    EXPECT_EQ(b[20], std::byte{1});  // the header's flags word

    Request link = make(Op::link, "/srv/a", "/srv/b");
    link.flags = kFollow;
    const Bytes link_frame = encode(link);  // the decoded paths view it
    d = decode_request(link_frame);
    ASSERT_TRUE(d.request) << describe(d.error);
    EXPECT_EQ(d.request->flags, kFollow);
    EXPECT_EQ(d.request->path2, "/srv/b");

    const std::string value = "text/plain";
    Request set = make(Op::setxattr, "/srv/f", "user.mime_type");
    set.arg0 = 2;  // XATTR_REPLACE
    set.data = std::as_bytes(std::span(value));
    const Bytes frame = encode(set);
    d = decode_request(frame);
    ASSERT_TRUE(d.request) << describe(d.error);
    EXPECT_EQ(d.request->path2, "user.mime_type");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.request->data.data()), d.request->data.size()),
              value);
    EXPECT_EQ(static_cast<const void*>(d.request->data.data()),
              static_cast<const void*>(frame.data() + 24 + 6 + 14));
    // An empty value is a value.
    set.data = {};
    EXPECT_TRUE(decode_request(encode(set)).request);
}

TEST(Wire, TheHeadAndTheDataMakeTheWholeFrame) {
    const Bytes value(1000, std::byte{'v'});
    Request r = make(Op::setxattr, "/srv/f", "user.x");
    r.data = value;
    const Bytes whole = encode(r);
    std::array<std::byte, kMaxRequestHeadSize> head{};
    const std::size_t n = encode_request_head(r, head);
    ASSERT_EQ(n, whole.size() - value.size());
    EXPECT_EQ(std::memcmp(head.data(), whole.data(), n), 0);
    EXPECT_EQ(std::memcmp(whole.data() + n, value.data(), value.size()), 0);
    // Data no op can carry is not expressed; a buffer without room for it is refused.
    const Bytes too_much(kMaxXattrValue + 1);
    r.data = too_much;
    EXPECT_EQ(encode_request_head(r, head), 0u);
    r.data = value;
    Bytes small(n + value.size() - 1);
    EXPECT_EQ(encode_request(r, small), 0u);
}

TEST(Wire, FlagsOnlyWhereTheOpTakesThem) {
    for (Op op : kAllOps) {
        SCOPED_TRACE(std::string(op_name(op)));
        const bool takes_nofollow =
            std::find(std::begin(kNoFollowOps), std::end(kNoFollowOps), op) != std::end(kNoFollowOps);
        Request r = sample(op);
        r.flags = kNoFollow;
        const DecodedRequest nofollow = decode_request(encode(r));
        EXPECT_EQ(static_cast<bool>(nofollow.request), takes_nofollow);
        if (!takes_nofollow) {
            EXPECT_EQ(nofollow.error, DecodeError::reserved_set);
        }
        r.flags = kFollow;
        const DecodedRequest follow = decode_request(encode(r));
        EXPECT_EQ(static_cast<bool>(follow.request), op == Op::link);
        for (std::uint32_t bit = 2; bit < 32; ++bit) {
            r.flags = 1u << bit;
            EXPECT_EQ(decode_request(encode(r)).error, DecodeError::reserved_set) << bit;
        }
    }
}

TEST(Wire, ArgumentsWithinWhatTheOpAllows) {
    const auto error_with = [](Op op, std::uint32_t arg0, std::uint32_t arg1) {
        Request r = sample(op);
        r.arg0 = arg0;
        r.arg1 = arg1;
        const DecodedRequest d = decode_request(encode(r));
        return d.request ? std::optional<DecodeError>() : std::optional<DecodeError>(d.error);
    };
    const auto size = static_cast<std::uint32_t>(kMaxXattrValue);
    for (Op op : {Op::getxattr, Op::listxattr}) {
        EXPECT_EQ(error_with(op, 0, 0), std::nullopt);     // the size only
        EXPECT_EQ(error_with(op, size, 0), std::nullopt);  // the largest buffer
        EXPECT_EQ(error_with(op, size + 1, 0), DecodeError::bad_argument);
        EXPECT_EQ(error_with(op, 1, 1), DecodeError::reserved_set);
    }
    EXPECT_EQ(error_with(Op::setxattr, 3, 0), std::nullopt);  // XATTR_CREATE | XATTR_REPLACE
    EXPECT_EQ(error_with(Op::setxattr, 4, 0), DecodeError::bad_argument);
    EXPECT_EQ(error_with(Op::chown, 0xffffffff, 0xffffffff), std::nullopt);
    EXPECT_EQ(error_with(Op::truncate, 0xffffffff, 0x7fffffff), std::nullopt);
    EXPECT_EQ(error_with(Op::mknod, 010644, 0x0801), std::nullopt);
    EXPECT_EQ(error_with(Op::chmod, 04755, 1), DecodeError::reserved_set);
    for (Op op : {Op::utimens, Op::link, Op::removexattr}) {
        EXPECT_EQ(error_with(op, 1, 0), DecodeError::reserved_set) << op_name(op);
        EXPECT_EQ(error_with(op, 0, 1), DecodeError::reserved_set) << op_name(op);
    }
}

TEST(Wire, DataOfExactlyTheSizeTheOpTakes) {
    const Bytes bytes(kMaxXattrValue + 1, std::byte{1});
    const auto error_with = [&](Op op, std::size_t n) {
        // The head encoded alone, and the data appended by hand: encode_request refuses more data
        // than any op takes.
        Request r = sample(op);
        r.data = {};
        Bytes b = encode(r);
        b.insert(b.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
        const DecodedRequest d = decode_request(b);
        return d.request ? std::optional<DecodeError>() : std::optional<DecodeError>(d.error);
    };
    EXPECT_EQ(error_with(Op::utimens, kTimesDataSize), std::nullopt);
    for (std::size_t n : {std::size_t{0}, kTimesDataSize - 1, kTimesDataSize + 1})
        EXPECT_EQ(error_with(Op::utimens, n), DecodeError::bad_length) << n;
    EXPECT_EQ(error_with(Op::setxattr, kMaxXattrValue), std::nullopt);
    EXPECT_EQ(error_with(Op::setxattr, kMaxXattrValue + 1), DecodeError::bad_length);
    for (Op op : kAllOps) {
        if (op == Op::utimens || op == Op::setxattr) continue;
        EXPECT_EQ(error_with(op, 1), DecodeError::bad_length) << op_name(op);
    }
}

TEST(Wire, AnAttributeNameIsAtMost255Bytes) {
    const std::string longest(kMaxXattrName, 'n');
    const std::string too_long(kMaxXattrName + 1, 'n');
    for (Op op : {Op::getxattr, Op::setxattr, Op::removexattr}) {
        SCOPED_TRACE(std::string(op_name(op)));
        EXPECT_TRUE(decode_request(encode(make(op, "/f", longest))).request);
        EXPECT_EQ(decode_request(encode(make(op, "/f", too_long))).error, DecodeError::bad_length);
        EXPECT_EQ(decode_request(encode(make(op, "/f"))).error, DecodeError::bad_path);
        Bytes with_nul = encode(make(op, "/f", "user.a-b"));
        with_nul[kRequestHeaderSize + 2 + 6] = std::byte{0};
        EXPECT_EQ(decode_request(with_nul).error, DecodeError::bad_path);
    }
    // A second path is a path: only names are held to the shorter limit.
    EXPECT_TRUE(decode_request(encode(make(Op::link, "/f", "/" + too_long))).request);
    EXPECT_EQ(decode_request(encode(make(Op::listxattr, "/f", "user.a"))).error, DecodeError::bad_length);
}

TEST(Wire, TimesRoundTrip) {
    const struct ::timespec times[2] = {{-5, 999999999}, {1700000000, UTIME_OMIT}};
    std::array<std::byte, kTimesDataSize> data;
    encode_times(times, data);
    struct ::timespec out[2] = {};
    ASSERT_TRUE(decode_times(data, out));
    EXPECT_EQ(out[0].tv_sec, -5);
    EXPECT_EQ(out[0].tv_nsec, 999999999);
    EXPECT_EQ(out[1].tv_sec, 1700000000);
    EXPECT_EQ(out[1].tv_nsec, UTIME_OMIT);
    EXPECT_EQ(data[0], std::byte{0xfb});  // atime seconds first, two's complement
    EXPECT_EQ(data[7], std::byte{0xff});
    EXPECT_FALSE(decode_times(std::span(data).first(kTimesDataSize - 1), out));
    const struct ::timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    encode_times(now, data);
    ASSERT_TRUE(decode_times(data, out));
    EXPECT_EQ(out[0].tv_nsec, UTIME_NOW);
    EXPECT_EQ(out[1].tv_nsec, UTIME_NOW);
}

TEST(Wire, AReplyOf64KiBSaysSoInItsFlags) {
    Bytes value(kMaxReplyPayload);
    for (std::size_t i = 0; i < value.size(); ++i)
        value[i] = std::byte(i * 7 & 0xff);
    Reply r;
    r.op = Op::getxattr;
    r.id = 3;
    r.result = static_cast<std::int32_t>(value.size());
    r.payload = value;
    const Bytes b = encode(r);
    ASSERT_EQ(b.size(), kMaxReplySize);
    EXPECT_EQ(b[12], std::byte{0});  // payload_len 0 ...
    EXPECT_EQ(b[13], std::byte{0});
    EXPECT_EQ(b[14], std::byte{2});  // ... and the flag that says 65536
    std::array<std::byte, kReplyHeaderSize> head{};
    ASSERT_EQ(encode_reply_head(r, head), kReplyHeaderSize);
    EXPECT_EQ(std::memcmp(head.data(), b.data(), head.size()), 0);
    const DecodedReply d = decode_reply(b);
    ASSERT_TRUE(d.reply) << describe(d.error);
    ASSERT_EQ(d.reply->payload.size(), value.size());
    EXPECT_EQ(std::memcmp(d.reply->payload.data(), value.data(), value.size()), 0);
    EXPECT_TRUE(reply_shape_ok(*d.reply));
    // One byte less fits payload_len itself.
    r.payload = std::span(value).first(kMaxReplyPayload - 1);
    r.result = static_cast<std::int32_t>(r.payload.size());
    const Bytes shorter = encode(r);
    EXPECT_EQ(shorter[14], std::byte{0});
    ASSERT_TRUE(decode_reply(shorter).reply);
    EXPECT_EQ(decode_reply(shorter).reply->payload.size(), kMaxReplyPayload - 1);
}

TEST(Wire, NulInPathIsRejected) {
    Bytes b = encode(make(Op::open, "/etc/passwd"));
    b[24 + 4] = std::byte{0};
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_path);
    b = encode(make(Op::rename, "/a", "/b/c"));
    b.back() = std::byte{0};
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_path);
}

TEST(Wire, WrongPathCountIsRejected) {
    // Paths an op does not take.
    EXPECT_EQ(decode_request(encode(make(Op::attach, "/x"))).error, DecodeError::bad_length);
    EXPECT_EQ(decode_request(encode(make(Op::attach, {}, "/x"))).error, DecodeError::bad_length);
    EXPECT_EQ(decode_request(encode(make(Op::stat, "/x", "/y"))).error, DecodeError::bad_length);
    EXPECT_EQ(decode_request(encode(make(Op::open, {}, "/y"))).error, DecodeError::bad_length);
    // Paths an op needs.
    for (Op op : kAllOps) {
        if (op_path_count(op) == 0) continue;
        Request r = sample(op);
        r.path = {};
        r.path2 = {};
        EXPECT_EQ(decode_request(encode(r)).error, DecodeError::bad_path) << op_name(op);
    }
    EXPECT_EQ(decode_request(encode(make(Op::rename, "/x"))).error, DecodeError::bad_path);
}

TEST(Wire, PathLongerThanTheLimitIsRejected) {
    // A length field above kMaxPath, with the frame really that long.
    Bytes b(kRequestHeaderSize + kMaxPath + 1, std::byte{'a'});
    const Bytes header = encode(make(Op::stat, "/"));
    std::copy(header.begin(), header.begin() + kRequestHeaderSize, b.begin());
    put16(b, 16, static_cast<std::uint16_t>(kMaxPath + 1));
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_length);
    put16(b, 16, 0xffff);
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_length);
}

TEST(Wire, ReplyRoundTrips) {
    Reply r;
    r.op = Op::open;
    r.id = 99;
    r.result = 0;
    r.has_fd = true;
    Bytes frame = encode(r);
    DecodedReply d = decode_reply(frame);
    ASSERT_TRUE(d.reply) << describe(d.error);
    EXPECT_EQ(d.reply->op, Op::open);
    EXPECT_EQ(d.reply->id, 99u);
    EXPECT_EQ(d.reply->result, 0);
    EXPECT_TRUE(d.reply->has_fd);
    EXPECT_TRUE(d.reply->payload.empty());
    EXPECT_TRUE(reply_shape_ok(*d.reply));

    for (Op op : kAllOps) {
        r.op = op;
        r.result = -2;
        r.has_fd = false;
        frame = encode(r);
        d = decode_reply(frame);
        ASSERT_TRUE(d.reply);
        EXPECT_EQ(d.reply->op, op);
        EXPECT_EQ(d.reply->result, -2);
        EXPECT_FALSE(d.reply->has_fd);
        EXPECT_TRUE(reply_shape_ok(*d.reply));
    }
}

TEST(Wire, ReadlinkReplyRoundTrips) {
    const std::string target = "../lib/libc.so.6";
    Reply r;
    r.op = Op::readlink;
    r.id = 5;
    r.result = static_cast<std::int32_t>(target.size());
    r.payload = std::as_bytes(std::span(target));
    const Bytes b = encode(r);
    ASSERT_EQ(b.size(), kReplyHeaderSize + target.size());
    const DecodedReply d = decode_reply(b);
    ASSERT_TRUE(d.reply);
    EXPECT_EQ(d.reply->result, static_cast<std::int32_t>(target.size()));
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.reply->payload.data()), d.reply->payload.size()),
              target);
    EXPECT_TRUE(reply_shape_ok(*d.reply));
}

TEST(Wire, StatReplyRoundTrips) {
    struct ::stat st {};
    st.st_dev = 0x0123456789abcdefULL;
    st.st_ino = 0xfedcba9876543210ULL;
    st.st_mode = S_IFREG | 0644;
    st.st_nlink = 3;
    st.st_uid = 65534;
    st.st_gid = 4294967294u;
    st.st_rdev = 0x801;
    st.st_size = 1234567890123;
    st.st_blksize = 4096;
    st.st_blocks = 24;
    st.st_atim = {-5, 999999999};  // before the epoch: a negative, two's complement second count
    st.st_mtim = {1700000000, 1};
    st.st_ctim = {1700000001, 0};
    std::array<std::byte, kStatPayloadSize> payload;
    encode_stat(st, payload);

    Reply r;
    r.op = Op::stat;
    r.id = 1;
    r.payload = payload;
    const Bytes frame = encode(r);  // the decoded payload views it
    const DecodedReply d = decode_reply(frame);
    ASSERT_TRUE(d.reply);
    EXPECT_TRUE(reply_shape_ok(*d.reply));
    struct ::stat out {};
    ASSERT_TRUE(decode_stat(d.reply->payload, out));
    EXPECT_EQ(out.st_dev, st.st_dev);
    EXPECT_EQ(out.st_ino, st.st_ino);
    EXPECT_EQ(out.st_mode, st.st_mode);
    EXPECT_EQ(out.st_nlink, st.st_nlink);
    EXPECT_EQ(out.st_uid, st.st_uid);
    EXPECT_EQ(out.st_gid, st.st_gid);
    EXPECT_EQ(out.st_rdev, st.st_rdev);
    EXPECT_EQ(out.st_size, st.st_size);
    EXPECT_EQ(out.st_blksize, st.st_blksize);
    EXPECT_EQ(out.st_blocks, st.st_blocks);
    EXPECT_EQ(out.st_atim.tv_sec, -5);
    EXPECT_EQ(out.st_atim.tv_nsec, 999999999);
    EXPECT_EQ(out.st_mtim.tv_sec, st.st_mtim.tv_sec);
    EXPECT_EQ(out.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
    EXPECT_EQ(out.st_ctim.tv_sec, st.st_ctim.tv_sec);
    EXPECT_EQ(out.st_ctim.tv_nsec, st.st_ctim.tv_nsec);
    // The second u64 is st_ino, little-endian; atime seconds (field 10) are two's complement.
    EXPECT_EQ(payload[8], std::byte{0x10});
    EXPECT_EQ(payload[15], std::byte{0xfe});
    const std::size_t atime_sec = 10 * sizeof(std::uint64_t);
    EXPECT_EQ(payload[atime_sec], std::byte{0xfb});
    EXPECT_EQ(payload[atime_sec + 7], std::byte{0xff});
}

TEST(Wire, StatValuesThatDoNotFitAreRejected) {
    struct ::stat st {};
    std::array<std::byte, kStatPayloadSize> payload;
    encode_stat(st, payload);
    struct ::stat out {};
    EXPECT_TRUE(decode_stat(payload, out));
    EXPECT_FALSE(decode_stat(std::span(payload).first(kStatPayloadSize - 1), out));
    auto bad = payload;
    bad[2 * 8 + 4] = std::byte{1};  // mode above 32 bits
    EXPECT_FALSE(decode_stat(bad, out));
    bad = payload;
    bad[11 * 8 + 7] = std::byte{0x80};  // negative atime nanoseconds
    EXPECT_FALSE(decode_stat(bad, out));
}

TEST(Wire, ReplyTruncationsAndExtraBytesAreRejected) {
    const std::string target = "target";
    Reply r;
    r.op = Op::readlink;
    r.result = 6;
    r.payload = std::as_bytes(std::span(target));
    Bytes b = encode(r);
    for (std::size_t n = 0; n < b.size(); ++n) {
        const DecodedReply d = decode_reply(std::span(b).first(n));
        EXPECT_FALSE(d.reply) << n;
        EXPECT_EQ(d.error, n < kReplyHeaderSize ? DecodeError::too_short : DecodeError::bad_length) << n;
    }
    b.push_back(std::byte{0});
    EXPECT_EQ(decode_reply(b).error, DecodeError::bad_length);
}

TEST(Wire, ReplyHeaderChecks) {
    Reply r;
    r.op = Op::access;
    const Bytes good = encode(r);
    Bytes b = good;
    put16(b, 0, 2);
    EXPECT_EQ(decode_reply(b).error, DecodeError::bad_version);
    b = good;
    put16(b, 2, 42);
    EXPECT_EQ(decode_reply(b).error, DecodeError::unknown_op);
    for (int bit = 2; bit < 16; ++bit) {
        b = good;
        put16(b, 14, static_cast<std::uint16_t>(1u << bit));
        EXPECT_EQ(decode_reply(b).error, DecodeError::reserved_set) << bit;
    }
    // Bit 1 says the payload is 65536 bytes, which the frame must then hold exactly.
    b = good;
    put16(b, 14, 2);
    EXPECT_EQ(decode_reply(b).error, DecodeError::bad_length);
    b.assign(kMaxReplySize, std::byte{0});
    std::copy(good.begin(), good.end(), b.begin());
    put16(b, 14, 2);
    ASSERT_TRUE(decode_reply(b).reply);
    EXPECT_EQ(decode_reply(b).reply->payload.size(), kMaxReplyPayload);
    put16(b, 12, 1);  // and payload_len must then be 0
    EXPECT_EQ(decode_reply(b).error, DecodeError::bad_length);
    // The largest payload_len, without the bit, in a frame one byte shorter.
    b.pop_back();
    put16(b, 12, 0xffff);
    put16(b, 14, 0);
    EXPECT_TRUE(decode_reply(b).reply);
    put16(b, 12, 0xfffe);
    EXPECT_EQ(decode_reply(b).error, DecodeError::bad_length);
    b.assign(kMaxReplySize + 1, std::byte{0});
    std::copy(good.begin(), good.end(), b.begin());
    EXPECT_EQ(decode_reply(b).error, DecodeError::too_long);
}

TEST(Wire, ReplyShapes) {
    const std::array<std::byte, kStatPayloadSize> stat_payload{};
    const std::array<std::byte, 3> three{};
    const auto shape = [](Op op, std::int32_t result, bool fd, std::span<const std::byte> payload) {
        Reply r;
        r.op = op;
        r.result = result;
        r.has_fd = fd;
        r.payload = payload;
        return reply_shape_ok(r);
    };
    EXPECT_TRUE(shape(Op::attach, 0, false, {}));
    EXPECT_FALSE(shape(Op::attach, 0, true, {}));
    EXPECT_FALSE(shape(Op::open, 0, false, {}));  // success without its fd
    EXPECT_TRUE(shape(Op::open, -13, false, {}));
    EXPECT_FALSE(shape(Op::open, -13, true, {}));  // an error with an fd
    EXPECT_FALSE(shape(Op::stat, 0, false, three));
    EXPECT_TRUE(shape(Op::stat, 0, false, stat_payload));
    EXPECT_FALSE(shape(Op::stat, -2, false, stat_payload));  // an error with a payload
    EXPECT_TRUE(shape(Op::readlink, 3, false, three));
    EXPECT_FALSE(shape(Op::readlink, 4, false, three));
    EXPECT_FALSE(shape(Op::unlink, 0, false, three));
    EXPECT_FALSE(shape(Op::unlink, -4096, false, {}));  // not an errno
    EXPECT_FALSE(shape(Op::unlink, INT32_MIN, false, {}));
    EXPECT_TRUE(shape(Op::unlink, -4095, false, {}));
    const Bytes long_target(kMaxPath + 1, std::byte{'t'});
    EXPECT_FALSE(shape(Op::readlink, static_cast<std::int32_t>(long_target.size()), false, long_target));
    for (Op op : {Op::getxattr, Op::listxattr}) {
        EXPECT_TRUE(shape(op, 3, false, three));
        EXPECT_TRUE(shape(op, 3, false, {}));  // the size only
        EXPECT_TRUE(shape(op, 0, false, {}));
        EXPECT_FALSE(shape(op, 2, false, three));
        EXPECT_FALSE(shape(op, 3, true, three));
        EXPECT_FALSE(shape(op, static_cast<std::int32_t>(kMaxXattrValue + 1), false, {}));
    }
    for (Op op : {Op::chmod, Op::chown, Op::truncate, Op::utimens, Op::link, Op::mknod, Op::setxattr,
                  Op::removexattr}) {
        EXPECT_TRUE(shape(op, 0, false, {})) << op_name(op);
        EXPECT_FALSE(shape(op, 0, false, three)) << op_name(op);
        EXPECT_FALSE(shape(op, 0, true, {})) << op_name(op);
    }
    for (Op op : {Op::connect, Op::listen}) {
        EXPECT_TRUE(shape(op, 0, true, {}));
        EXPECT_FALSE(shape(op, 0, false, {}));  // success without its socket
        EXPECT_FALSE(shape(op, 0, true, three));
        EXPECT_TRUE(shape(op, -ECONNREFUSED, false, {}));
        EXPECT_FALSE(shape(op, -ETIMEDOUT, true, {}));
    }
}

TEST(Wire, GarbageIsOnlyEverRejected) {
    std::mt19937 rng(12345);
    Bytes b;
    int accepted = 0;
    for (int i = 0; i < 200000; ++i) {
        b.resize(rng() % 64);
        for (auto& x : b)
            x = std::byte(rng() & 0xff);
        // Every other frame gets a plausible header, so that decoding gets past the first checks.
        if (i % 2 == 0 && b.size() >= kRequestHeaderSize) {
            put16(b, 0, kVersion);
            put16(b, 2, static_cast<std::uint16_t>(1 + rng() % std::size(kAllOps)));
            put32(b, 8, 0);
            put32(b, 12, 0);
            put32(b, 20, 0);
            const std::size_t room = b.size() - kRequestHeaderSize;
            const std::size_t len0 = rng() % (room + 1);
            put16(b, 16, static_cast<std::uint16_t>(len0));
            put16(b, 18, static_cast<std::uint16_t>(room - len0));
        }
        const DecodedRequest d = decode_request(b);
        const DecodedReply dr = decode_reply(b);
        if (d.request) {
            ++accepted;
            // Whatever is accepted is internally consistent.
            EXPECT_EQ(kRequestHeaderSize + d.request->path.size() + d.request->path2.size() +
                          d.request->data.size(),
                      b.size());
            EXPECT_EQ(d.request->path.find('\0'), std::string_view::npos);
            EXPECT_EQ(d.request->path2.find('\0'), std::string_view::npos);
            EXPECT_EQ(d.request->path.empty(), op_path_count(d.request->op) < 1);
            EXPECT_EQ(d.request->path2.empty(), op_path_count(d.request->op) < 2);
        }
        if (dr.reply) {
            EXPECT_EQ(kReplyHeaderSize + dr.reply->payload.size(), b.size());
        }
    }
    // Not a requirement, only a sign that the generator reached the deeper checks.
    EXPECT_GT(accepted, 0);
}

TEST(Wire, Names) {
    EXPECT_EQ(op_name(Op::attach), "attach");
    EXPECT_EQ(op_name(Op::rename), "rename");
    EXPECT_EQ(op_name(Op::connect), "connect");
    EXPECT_EQ(op_name(Op::listen), "listen");
    EXPECT_EQ(op_path_count(Op::connect), 1);
    EXPECT_EQ(op_path_count(Op::listen), 1);
    EXPECT_EQ(op_name(Op::chmod), "chmod");
    EXPECT_EQ(op_name(Op::removexattr), "removexattr");
    EXPECT_EQ(op_path_count(Op::link), 2);
    EXPECT_EQ(op_path_count(Op::getxattr), 2);
    EXPECT_EQ(op_path_count(Op::listxattr), 1);
    EXPECT_EQ(op_name(static_cast<Op>(77)), "unknown");
    EXPECT_EQ(op_path_count(static_cast<Op>(77)), 0);
    EXPECT_FALSE(describe(DecodeError::reserved_set).empty());
    EXPECT_FALSE(describe(DecodeError::bad_argument).empty());
}

// open_many: entries, each flags, mode and a path, fill the data exactly.
Bytes batch_data(const std::vector<OpenEntry>& entries) {
    Bytes data(kMaxBatchData);
    std::size_t at = 0;
    for (const OpenEntry& e : entries) {
        const std::size_t n = encode_open_entry(e, std::span(data).subspan(at));
        EXPECT_NE(n, 0u) << e.path;
        at += n;
    }
    data.resize(at);
    return data;
}

Bytes batch_frame(const Bytes& data, std::uint32_t count) {
    Request r = make(Op::open_many);
    r.arg0 = count;
    r.data = data;
    return encode(r);
}

TEST(WireBatch, OpenManyRoundTrips) {
    const std::vector<OpenEntry> entries = {
        {0x80000, 0, "/etc/hostname"}, {0x241, 0640, "/var/out/new"}, {0, 0, std::string_view("/x", 2)}};
    const Bytes data = batch_data(entries);
    EXPECT_EQ(data.size(), 3 * kBatchEntryHeaderSize + 13 + 12 + 2);
    const Bytes frame = batch_frame(data, 3);
    const DecodedRequest d = decode_request(frame);
    ASSERT_TRUE(d.request) << describe(d.error);
    EXPECT_EQ(d.request->op, Op::open_many);
    EXPECT_EQ(d.request->arg0, 3u);
    std::span<const std::byte> rest = d.request->data;
    for (const OpenEntry& want : entries) {
        const std::optional<OpenEntry> got = next_open_entry(rest);
        ASSERT_TRUE(got);
        EXPECT_EQ(got->flags, want.flags);
        EXPECT_EQ(got->mode, want.mode);
        EXPECT_EQ(got->path, want.path);
    }
    EXPECT_FALSE(next_open_entry(rest));
    EXPECT_EQ(op_name(Op::open_many), "open_many");
}

TEST(WireBatch, TheLargestBatchDecodes) {
    std::vector<std::string> paths;
    paths.reserve(kMaxBatch + 1);  // the entries view these strings
    for (std::size_t i = 0; i < kMaxBatch; ++i)
        paths.push_back("/srv/files/" + std::to_string(i));
    std::vector<OpenEntry> entries;
    entries.reserve(paths.size() + 1);
    for (const std::string& p : paths)
        entries.push_back({0, 0, p});
    EXPECT_TRUE(decode_request(batch_frame(batch_data(entries), kMaxBatch)).request);
    // One more entry is refused by its count alone.
    paths.emplace_back("/srv/files/extra");
    entries.push_back({0, 0, paths.back()});
    EXPECT_EQ(decode_request(batch_frame(batch_data(entries), kMaxBatch + 1)).error,
              DecodeError::bad_argument);
}

TEST(WireBatch, MalformedBatchesAreRejected) {
    const Bytes two = batch_data({{0, 0, "/a"}, {0, 0, "/bb"}});
    // The count must be 1..kMaxBatch and say exactly how many entries fill the data.
    EXPECT_EQ(decode_request(batch_frame(two, 0)).error, DecodeError::bad_argument);
    EXPECT_EQ(decode_request(batch_frame(two, 1)).error, DecodeError::bad_length);
    EXPECT_EQ(decode_request(batch_frame(two, 3)).error, DecodeError::bad_length);
    EXPECT_EQ(decode_request(batch_frame(two, 65)).error, DecodeError::bad_argument);
    // No entries at all.
    EXPECT_EQ(decode_request(batch_frame({}, 1)).error, DecodeError::bad_length);
    // An entry's length running past the frame, or beyond kMaxPath.
    Bytes b = batch_frame(two, 2);
    put16(b, kRequestHeaderSize + 8, 200);
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_length);
    b = batch_frame(two, 2);
    put16(b, kRequestHeaderSize + 8, static_cast<std::uint16_t>(kMaxPath + 1));
    EXPECT_EQ(decode_request(b).error, DecodeError::bad_length);
    // An empty path, and a path with a NUL.
    Bytes empty = two;
    put16(empty, 8, 0);
    empty.erase(empty.begin() + kBatchEntryHeaderSize, empty.begin() + kBatchEntryHeaderSize + 2);
    EXPECT_EQ(decode_request(batch_frame(empty, 2)).error, DecodeError::bad_path);
    Bytes nul = two;
    nul[kBatchEntryHeaderSize + 1] = std::byte{0};
    EXPECT_EQ(decode_request(batch_frame(nul, 2)).error, DecodeError::bad_path);
    // Paths, request flags and arg1 are not the op's.
    Request r = make(Op::open_many, "/p");
    r.arg0 = 2;
    r.data = two;
    EXPECT_EQ(decode_request(encode(r)).error, DecodeError::bad_length);
    for (const auto& [offset, field] : {std::pair{12, "arg1"}, std::pair{20, "flags"}}) {
        b = batch_frame(two, 2);
        put32(b, static_cast<std::size_t>(offset), 1);
        EXPECT_EQ(decode_request(b).error, DecodeError::reserved_set) << field;
    }
    // Entries the encoder cannot express.
    std::array<std::byte, 64> out{};
    EXPECT_EQ(encode_open_entry({0, 0, ""}, out), 0u);
    EXPECT_EQ(encode_open_entry({0, 0, std::string_view("/a\0b", 4)}, out), 0u);
    EXPECT_EQ(encode_open_entry({0, 0, std::string(kMaxPath + 1, 'a')}, out), 0u);
    EXPECT_EQ(encode_open_entry({0, 0, std::string(60, 'a')}, out), 0u);  // no room
}

Reply batch_reply(const std::vector<std::int32_t>& results, Bytes& storage, bool has_fd) {
    storage.assign(results.size() * kBatchResultSize, std::byte{0});
    encode_batch_results(results, storage);
    Reply r;
    r.op = Op::open_many;
    r.id = 7;
    r.result = static_cast<std::int32_t>(results.size());
    r.payload = storage;
    r.has_fd = has_fd;
    return r;
}

TEST(WireBatch, RepliesCarryOneResultPerEntry) {
    Bytes storage;
    const Reply r = batch_reply({0, -EACCES, 0, -ENOENT}, storage, true);
    const Bytes frame = encode(r);
    const DecodedReply d = decode_reply(frame);
    ASSERT_TRUE(d.reply);
    EXPECT_TRUE(reply_shape_ok(*d.reply));
    EXPECT_EQ(batch_descriptors(*d.reply), 2u);
    EXPECT_EQ(batch_result(d.reply->payload, 0), 0);
    EXPECT_EQ(batch_result(d.reply->payload, 1), -EACCES);
    EXPECT_EQ(batch_result(d.reply->payload, 3), -ENOENT);
    EXPECT_EQ(batch_result(d.reply->payload, 4), -EPROTO);  // beyond the end
    EXPECT_TRUE(reply_shape_ok(batch_reply({-EACCES, -ENOENT}, storage, false)));
}

TEST(WireBatch, MisshapenRepliesAreRefused) {
    Bytes storage;
    // The descriptor flag must agree with the successes.
    EXPECT_FALSE(reply_shape_ok(batch_reply({0, -EACCES}, storage, false)));
    EXPECT_FALSE(reply_shape_ok(batch_reply({-EACCES}, storage, true)));
    // A result neither 0 nor an errno.
    EXPECT_FALSE(reply_shape_ok(batch_reply({3}, storage, true)));
    EXPECT_FALSE(reply_shape_ok(batch_reply({-5000}, storage, false)));
    // The count and the payload must agree, within 1..kMaxBatch.
    Reply r = batch_reply({-EACCES, -EACCES}, storage, false);
    r.result = 3;
    EXPECT_FALSE(reply_shape_ok(r));
    r.result = 0;
    r.payload = {};
    EXPECT_FALSE(reply_shape_ok(r));
    const Reply big = batch_reply(std::vector<std::int32_t>(kMaxBatch + 1, -EACCES), storage, false);
    EXPECT_FALSE(reply_shape_ok(big));
    // A failure of the whole request is an ordinary error reply.
    Reply failed;
    failed.op = Op::open_many;
    failed.result = -ENOMEM;
    EXPECT_TRUE(reply_shape_ok(failed));
}

}  // namespace
}  // namespace fdbroker::wire
