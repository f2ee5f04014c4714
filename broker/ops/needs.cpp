#include "broker/ops/needs.hpp"

#include <unistd.h>

#include <type_traits>
#include <variant>

#include "broker/ops/file_ops.hpp"

namespace fdbroker::broker {

std::uint8_t access_needs(std::uint32_t mode) noexcept {
    std::uint8_t needs = 0;
    if (mode & R_OK) needs |= policy::need_read;
    if (mode & W_OK) needs |= policy::need_write;
    return needs == 0 ? static_cast<std::uint8_t>(policy::need_any) : needs;
}

namespace {

std::uint8_t visit_needs(const op::Operation& operation) {
    return std::visit(
        [](const auto& o) -> std::uint8_t {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, op::Open>) {
                return FileOps::open_needs(static_cast<std::uint32_t>(o.flags));
            } else if constexpr (std::is_same_v<T, op::Access>) {
                return access_needs(o.mode);
            } else if constexpr (std::is_same_v<T, op::Xattr>) {
                const bool reads = o.kind == op::Xattr::Kind::get || o.kind == op::Xattr::Kind::list;
                return static_cast<std::uint8_t>(reads ? policy::need_any : policy::need_write);
            } else if constexpr (std::is_same_v<T, op::Stat> || std::is_same_v<T, op::Statx> ||
                                 std::is_same_v<T, op::Readlink> || std::is_same_v<T, op::Lookup>) {
                return policy::need_any;
            } else if constexpr (std::is_same_v<T, op::Mkdir> || std::is_same_v<T, op::Unlink> ||
                                 std::is_same_v<T, op::Rmdir> || std::is_same_v<T, op::Rename> ||
                                 std::is_same_v<T, op::Symlink> || std::is_same_v<T, op::Mknod> ||
                                 std::is_same_v<T, op::Link>) {
                return policy::need_create;
            } else if constexpr (std::is_same_v<T, op::Chmod> || std::is_same_v<T, op::Chown> ||
                                 std::is_same_v<T, op::Truncate> || std::is_same_v<T, op::Utimens>) {
                return policy::need_write;
            } else {
                return 0;  // sockets, held descriptors, nothing
            }
        },
        operation);
}

}  // namespace

std::uint8_t needs_of(const op::Operation& operation) noexcept {
    // std::visit throws only for a variant left valueless by an exception, which asks for nothing.
    try {
        return visit_needs(operation);
    } catch (...) {
        return 0;
    }
}

}  // namespace fdbroker::broker
