#include "broker/ops/decode_wire.hpp"

#include <new>

namespace fdbroker::broker {

namespace {

template <class T>
T* with_path(op::Operation& out, std::string_view path) noexcept {
    T& o = out.emplace<T>();
    return o.path.assign(path) ? &o : nullptr;
}

// The socket ops: the address is the frame's first path.
bool decode_socket(const wire::Request& r, op::Operation& out) noexcept {
    try {
        if (r.op == wire::Op::connect) {
            out.emplace<op::Connect>().address = r.path;
        } else {
            auto& listen = out.emplace<op::Listen>();
            listen.address = r.path;
            listen.backlog = static_cast<int>(r.arg0);
        }
        return true;
    } catch (const std::bad_alloc&) {
        out.emplace<std::monostate>();
        return false;
    }
}

}  // namespace

bool decode_wire(const wire::Request& r, op::Operation& out) noexcept {
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
            return decode_socket(r, out);
        case wire::Op::attach:
            break;
    }
    if (!ok) out.emplace<std::monostate>();
    return ok;
}

}  // namespace fdbroker::broker
