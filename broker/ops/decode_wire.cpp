#include "broker/ops/decode_wire.hpp"

#include <cerrno>
#include <cstdint>
#include <new>

namespace fdbroker::broker {

namespace {

template <class T>
T* with_path(op::Operation& out, std::string_view path) {
    T& o = out.emplace<T>();
    return o.path.assign(path) ? &o : nullptr;
}

// The socket ops: the address is the frame's first path.
void decode_socket(const wire::Request& r, op::Operation& out) {
    if (r.op == wire::Op::connect) {
        out.emplace<op::Connect>().address = r.path;
    } else {
        auto& listen = out.emplace<op::Listen>();
        listen.address = r.path;
        listen.backlog = static_cast<int>(r.arg0);
    }
}

static_assert(op::Xattr::kMaxValue == wire::kMaxXattrValue);

bool follows(const wire::Request& r) noexcept {
    return (r.flags & wire::kNoFollow) == 0;
}

// The metadata ops with one path (link, with two, is decoded by the caller): 0, or the errno for the
// reply (ENAMETOOLONG: a path that does not fit; EOVERFLOW: times this system cannot hold).
int decode_metadata(const wire::Request& r, op::Operation& out) {
    switch (r.op) {
        case wire::Op::chmod:
            if (auto* o = with_path<op::Chmod>(out, r.path)) {
                o->mode = static_cast<mode_t>(r.arg0);
                o->follow = follows(r);
                return 0;
            }
            break;
        case wire::Op::chown:
            if (auto* o = with_path<op::Chown>(out, r.path)) {
                o->uid = static_cast<uid_t>(r.arg0);
                o->gid = static_cast<gid_t>(r.arg1);
                o->follow = follows(r);
                return 0;
            }
            break;
        case wire::Op::truncate:
            if (auto* o = with_path<op::Truncate>(out, r.path)) {
                // Two's complement across the two halves: a negative length is refused as truncate(2) does.
                o->length = static_cast<off_t>((std::uint64_t{r.arg1} << 32U) | r.arg0);
                return 0;
            }
            break;
        case wire::Op::utimens:
            if (auto* o = with_path<op::Utimens>(out, r.path)) {
                o->now = false;
                o->follow = follows(r);
                // The size was checked with the frame; only a time_t narrower than 64 bits can fail here.
                return wire::decode_times(r.data, o->times) ? 0 : EOVERFLOW;
            }
            break;
        case wire::Op::mknod:
            if (auto* o = with_path<op::Mknod>(out, r.path)) {
                o->mode = static_cast<mode_t>(r.arg0);
                o->dev = static_cast<dev_t>(r.arg1);
                return 0;
            }
            break;
        default:
            return EINVAL;
    }
    return ENAMETOOLONG;
}

// The extended-attribute ops: the name travels as the second path, a value as the data.
bool decode_xattr(const wire::Request& r, op::Operation& out) {
    using Kind = op::Xattr::Kind;
    auto* o = with_path<op::Xattr>(out, r.path);
    if (!o) return false;
    o->follow = follows(r);
    o->name = r.path2;
    switch (r.op) {
        case wire::Op::getxattr:
            o->kind = Kind::get;
            o->size = r.arg0;
            break;
        case wire::Op::listxattr:
            o->kind = Kind::list;
            o->size = r.arg0;
            break;
        case wire::Op::setxattr: {
            o->kind = Kind::set;
            o->flags = static_cast<int>(r.arg0);
            const auto* value = reinterpret_cast<const char*>(r.data.data());
            o->value.assign(value, value + r.data.size());
            break;
        }
        default:
            o->kind = Kind::remove;
            break;
    }
    return true;
}

// The path operations library mode has had from the start: false when a path does not fit.
bool decode_path_op(const wire::Request& r, op::Operation& out) {
    switch (r.op) {
        case wire::Op::open:
            if (auto* o = with_path<op::Open>(out, r.path)) {
                o->flags = r.arg0;
                o->mode = static_cast<mode_t>(r.arg1);
                return true;
            }
            return false;
        case wire::Op::access:
            if (auto* o = with_path<op::Access>(out, r.path)) return (o->mode = r.arg0, true);
            return false;
        case wire::Op::stat:
            return with_path<op::Stat>(out, r.path) != nullptr;
        case wire::Op::readlink:
            if (auto* o = with_path<op::Readlink>(out, r.path)) return (o->size = wire::kMaxPath, true);
            return false;
        case wire::Op::mkdir:
            if (auto* o = with_path<op::Mkdir>(out, r.path))
                return (o->mode = static_cast<mode_t>(r.arg0), true);
            return false;
        case wire::Op::unlink:
            return with_path<op::Unlink>(out, r.path) != nullptr;
        case wire::Op::rmdir:
            return with_path<op::Rmdir>(out, r.path) != nullptr;
        case wire::Op::rename: {
            auto& o = out.emplace<op::Rename>();
            return o.from.assign(r.path) && o.to.assign(r.path2);
        }
        case wire::Op::link: {
            auto& o = out.emplace<op::Link>();
            o.follow = (r.flags & wire::kFollow) != 0;
            return o.from.assign(r.path) && o.to.assign(r.path2);
        }
        default:
            return false;  // not a path operation: decode_request sends none here
    }
}

// 0 or the errno for the reply; throws what emplacing an operation may (std::bad_alloc for an address).
int decode_request(const wire::Request& r, op::Operation& out) {
    bool ok = false;
    switch (r.op) {
        case wire::Op::open:
        case wire::Op::access:
        case wire::Op::stat:
        case wire::Op::readlink:
        case wire::Op::mkdir:
        case wire::Op::unlink:
        case wire::Op::rmdir:
        case wire::Op::rename:
        case wire::Op::link:
            ok = decode_path_op(r, out);
            break;
        case wire::Op::chmod:
        case wire::Op::chown:
        case wire::Op::truncate:
        case wire::Op::utimens:
        case wire::Op::mknod:
            if (const int err = decode_metadata(r, out); err != 0) {
                out.emplace<op::None>();
                return err;
            }
            return 0;
        case wire::Op::getxattr:
        case wire::Op::listxattr:
        case wire::Op::setxattr:
        case wire::Op::removexattr:
            ok = decode_xattr(r, out);
            break;
        case wire::Op::connect:
        case wire::Op::listen:
            decode_socket(r, out);
            return 0;
        case wire::Op::attach:     // answered by the session, never performed
        case wire::Op::open_many:  // decoded entry by entry (decode_open_entry)
            return EINVAL;
    }
    if (ok) return 0;
    out.emplace<op::None>();
    return ENAMETOOLONG;
}

}  // namespace

int decode_wire(const wire::Request& r, op::Operation& out) noexcept {
    try {
        return decode_request(r, out);
    } catch (...) {
        return ENOMEM;
    }
}

int decode_open_entry(const wire::OpenEntry& entry, op::Operation& out) noexcept {
    // Exactly what decode_path_op makes of an open request with these flags, mode and path.
    wire::Request request;
    request.op = wire::Op::open;
    request.arg0 = entry.flags;
    request.arg1 = entry.mode;
    request.path = entry.path;
    return decode_wire(request, out);
}

}  // namespace fdbroker::broker
