#include "broker/ops/decode_wire.hpp"

#include <cerrno>
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

// 0 or the errno for the reply; throws what emplacing an operation may (std::bad_alloc for an address).
int decode_request(const wire::Request& r, op::Operation& out) {
    bool ok = false;
    switch (r.op) {
        case wire::Op::open:
            if (auto* o = with_path<op::Open>(out, r.path)) {
                o->flags = r.arg0;
                o->mode = static_cast<mode_t>(r.arg1);
                ok = true;
            }
            break;
        case wire::Op::access:
            if (auto* o = with_path<op::Access>(out, r.path)) ok = (o->mode = r.arg0, true);
            break;
        case wire::Op::stat:
            ok = with_path<op::Stat>(out, r.path) != nullptr;
            break;
        case wire::Op::readlink:
            if (auto* o = with_path<op::Readlink>(out, r.path)) ok = (o->size = wire::kMaxPath, true);
            break;
        case wire::Op::mkdir:
            if (auto* o = with_path<op::Mkdir>(out, r.path))
                ok = (o->mode = static_cast<mode_t>(r.arg0), true);
            break;
        case wire::Op::unlink:
            ok = with_path<op::Unlink>(out, r.path) != nullptr;
            break;
        case wire::Op::rmdir:
            ok = with_path<op::Rmdir>(out, r.path) != nullptr;
            break;
        case wire::Op::rename: {
            auto& o = out.emplace<op::Rename>();
            ok = o.from.assign(r.path) && o.to.assign(r.path2);
            break;
        }
        case wire::Op::connect:
        case wire::Op::listen:
            decode_socket(r, out);
            return 0;
        case wire::Op::attach:
            return EINVAL;  // an attach is answered by the session, never performed
    }
    if (ok) return 0;
    out.emplace<std::monostate>();
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

}  // namespace fdbroker::broker
