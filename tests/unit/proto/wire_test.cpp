// The wire format: round trips, and rejection (never a crash) of every kind of bad frame.
#include "proto/wire.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstring>
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

// A valid request for each op, with as many paths as it takes.
Request sample(Op op) {
    switch (op_path_count(op)) {
        case 0:
            return make(op);
        case 1:
            return make(op, "/etc/hostname");
        default:
            return make(op, "/var/a", "/var/b");
    }
}

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = std::byte(v & 0xff);
    b[at + 1] = std::byte(v >> 8);
}

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        b[at + i] = std::byte((v >> (8 * i)) & 0xff);
}

const Op kAllOps[] = {Op::attach, Op::open,  Op::access, Op::stat,    Op::readlink, Op::mkdir,
                      Op::unlink, Op::rmdir, Op::rename, Op::connect, Op::listen};

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
        ASSERT_EQ(b.size(), kRequestHeaderSize + r.path.size() + r.path2.size());
        const DecodedRequest d = decode_request(b);
        ASSERT_TRUE(d.request) << describe(d.error);
        EXPECT_EQ(d.request->op, op);
        EXPECT_EQ(d.request->id, r.id);
        EXPECT_EQ(d.request->arg0, r.arg0);
        EXPECT_EQ(d.request->arg1, r.arg1);
        EXPECT_EQ(d.request->path, r.path);
        EXPECT_EQ(d.request->path2, r.path2);
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
    ASSERT_EQ(b.size(), kMaxRequestSize);
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
    r.op = Op::readlink;
    const Bytes big(kMaxPath + 1);
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
    Bytes b = encode(make(Op::rename, std::string(kMaxPath, 'a'), std::string(kMaxPath, 'b')));
    b.push_back(std::byte{'b'});
    EXPECT_EQ(decode_request(b).error, DecodeError::too_long);
    const Bytes huge(1 << 16);
    EXPECT_EQ(decode_request(huge).error, DecodeError::too_long);
    EXPECT_EQ(decode_reply(huge).error, DecodeError::too_long);
}

TEST(Wire, BadVersionIsRejected) {
    for (std::uint16_t v : {0, 2, 0x100, 0xffff}) {
        Bytes b = encode(make(Op::stat, "/p"));
        put16(b, 0, v);
        EXPECT_EQ(decode_request(b).error, DecodeError::bad_version) << v;
    }
}

TEST(Wire, UnknownOpIsRejected) {
    for (std::uint16_t op : {0, 12, 13, 0x100, 0xffff}) {
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
        EXPECT_EQ(decode_request(encode(make(op))).error, DecodeError::bad_path) << op_name(op);
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
    for (int bit = 1; bit < 16; ++bit) {
        b = good;
        put16(b, 14, static_cast<std::uint16_t>(1u << bit));
        EXPECT_EQ(decode_reply(b).error, DecodeError::reserved_set) << bit;
    }
    // A payload length above kMaxPath in a frame of the largest legal size.
    b.assign(kMaxReplySize, std::byte{0});
    std::copy(good.begin(), good.end(), b.begin());
    put16(b, 12, static_cast<std::uint16_t>(kMaxPath + 1));
    EXPECT_EQ(decode_reply(b).error, DecodeError::bad_length);
    put16(b, 12, static_cast<std::uint16_t>(kMaxPath));
    EXPECT_TRUE(decode_reply(b).reply);
    b.push_back(std::byte{0});
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
            put16(b, 2, static_cast<std::uint16_t>(1 + rng() % 11));
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
            EXPECT_EQ(kRequestHeaderSize + d.request->path.size() + d.request->path2.size(), b.size());
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
    EXPECT_EQ(op_name(static_cast<Op>(77)), "unknown");
    EXPECT_EQ(op_path_count(static_cast<Op>(77)), 0);
    EXPECT_FALSE(describe(DecodeError::reserved_set).empty());
}

}  // namespace
}  // namespace fdbroker::wire
