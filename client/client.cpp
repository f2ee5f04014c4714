// fdbroker::Client: argument checks with the syscalls' errno, then one Connection::call per method.
#include "fdbroker/client.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <new>

#include "client/connection.hpp"

namespace fdbroker {
namespace {

void set_error(std::error_code& ec, int err) noexcept {
    ec.assign(err, std::system_category());
}

// The checks the kernel makes before looking a path up, with its errno.
int check_path(const char* path) noexcept {
    if (path == nullptr) return EFAULT;
    const std::size_t n = ::strnlen(path, wire::kMaxPath + 1);
    if (n == 0) return ENOENT;
    if (n > wire::kMaxPath) return ENAMETOOLONG;
    return 0;
}

// An extended attribute's name, with the errno getxattr(2) and its kin give.
int check_xattr_name(const char* name) noexcept {
    if (name == nullptr) return EFAULT;
    const std::size_t n = ::strnlen(name, wire::kMaxXattrName + 1);
    return n == 0 || n > wire::kMaxXattrName ? ERANGE : 0;
}

// The request flag for an *at()-style `flags` argument that may hold only `allowed`; EINVAL for other
// bits, as the system calls answer.
int at_flags(int flags, int allowed, std::uint32_t& wire_flags) noexcept {
    if ((flags & ~allowed) != 0) return EINVAL;
    wire_flags = 0;
    if ((flags & AT_SYMLINK_NOFOLLOW) != 0) wire_flags |= wire::kNoFollow;
    if ((flags & AT_SYMLINK_FOLLOW) != 0) wire_flags |= wire::kFollow;
    return 0;
}

// An address is checked by the broker, which alone knows the syntax; here only what cannot be sent.
int check_address(const char* address) noexcept {
    if (address == nullptr) return EFAULT;
    const std::size_t n = ::strnlen(address, wire::kMaxPath + 1);
    return n == 0 || n > wire::kMaxPath ? EINVAL : 0;
}

// Like glibc's __OPEN_NEEDS_MODE: only these flags give the mode argument a meaning.
bool open_needs_mode(int flags) noexcept {
    return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

int call(Connection* connection, wire::Request& request, std::span<std::byte> payload,
         CallResult& out) noexcept {
    // No Connection only if allocating the process-wide one failed.
    if (connection == nullptr) return ENOMEM;
    return connection->call(request, payload, out);
}

// The ops whose only result is success or an errno.
void simple(Connection* connection, wire::Op op, const char* path, const char* path2, std::uint32_t arg0,
            std::error_code& ec) noexcept {
    int err = check_path(path);
    if (err == 0 && op == wire::Op::rename) err = check_path(path2);
    if (err != 0) return set_error(ec, err);
    wire::Request request;
    request.op = op;
    request.arg0 = arg0;
    request.path = path;
    if (path2 != nullptr) request.path2 = path2;
    CallResult out;
    err = call(connection, request, {}, out);
    if (err != 0) return set_error(ec, err);
    ec.clear();
}

// Sends a request whose arguments were checked and waits for the reply, whose payload lands in
// `payload`: the reply's result (a length, or 0), with ec clear; 0 with ec set on failure.
std::size_t exchange(Connection* connection, wire::Request& request, std::span<std::byte> payload,
                     std::error_code& ec) noexcept {
    CallResult out;
    if (const int err = call(connection, request, payload, out); err != 0) {
        set_error(ec, err);
        return 0;
    }
    ec.clear();
    return static_cast<std::size_t>(out.result);
}

// The xattr ops but list: a path, a name, and flags of which only AT_SYMLINK_NOFOLLOW is allowed.
// False, with ec set, when one of them is not what the kernel would accept.
bool xattr_request(wire::Op op, const char* path, const char* name, int flags, wire::Request& request,
                   std::error_code& ec) noexcept {
    int err = check_path(path);
    if (err == 0) err = check_xattr_name(name);
    if (err == 0) err = at_flags(flags, AT_SYMLINK_NOFOLLOW, request.flags);
    if (err != 0) {
        set_error(ec, err);
        return false;
    }
    request.op = op;
    request.path = path;
    request.path2 = name;
    return true;
}

unique_fd socket_call(Connection* connection, wire::Op op, const char* address, std::uint32_t arg0,
                      std::error_code& ec) noexcept {
    if (const int err = check_address(address); err != 0) {
        set_error(ec, err);
        return {};
    }
    wire::Request request;
    request.op = op;
    request.arg0 = arg0;
    request.path = address;
    CallResult out;
    if (const int err = call(connection, request, {}, out); err != 0) {
        set_error(ec, err);
        return {};
    }
    // The socket arrived close-on-exec (MSG_CMSG_CLOEXEC) and stays so, as the API promises.
    ec.clear();
    return std::move(out.fd);
}

static_assert(Client::kMaxOpenMany == wire::kMaxBatch);

// A received descriptor arrives close-on-exec (MSG_CMSG_CLOEXEC) so that none is ever inheritable by
// accident; the flag comes off only when the caller's open(2) would have left it off.
int as_open_would_leave(const unique_fd& fd, int flags) noexcept {
    return (flags & O_CLOEXEC) == 0 && ::fcntl(fd.get(), F_SETFD, 0) != 0 ? errno : 0;
}

// One open_many exchange for the requests `todo` names (indexes into requests, paths checked), as
// many of them as fit one frame: returns how many were sent, their outcomes in results; 0 with the
// errno in err when the exchange failed.
std::size_t open_some(Connection* connection, std::span<const Client::OpenRequest> requests,
                      std::span<const std::size_t> todo, std::span<Client::OpenResult> results,
                      int& err) noexcept {
    std::size_t count = 0;
    std::size_t bytes = 0;
    while (count < todo.size() &&
           bytes + wire::open_entry_size(requests[todo[count]].path) <= wire::kMaxBatchData)
        bytes += wire::open_entry_size(requests[todo[count++]].path);
    std::unique_ptr<std::byte[]> data;
    try {
        data = std::make_unique_for_overwrite<std::byte[]>(bytes);
    } catch (const std::bad_alloc&) {
        err = ENOMEM;
        return 0;
    }
    std::size_t at = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const Client::OpenRequest& r = requests[todo[i]];
        const wire::OpenEntry entry{static_cast<std::uint32_t>(r.flags),
                                    open_needs_mode(r.flags) ? static_cast<std::uint32_t>(r.mode) : 0U,
                                    r.path};
        at += wire::encode_open_entry(entry, std::span(data.get() + at, bytes - at));
    }
    wire::Request request;
    request.op = wire::Op::open_many;
    request.arg0 = static_cast<std::uint32_t>(count);
    request.data = std::span(data.get(), bytes);
    std::array<std::byte, wire::kMaxBatch * wire::kBatchResultSize> payload;
    std::array<unique_fd, wire::kMaxBatch> fds;
    CallResult out;
    out.fds = std::span(fds).first(count);
    if ((err = call(connection, request, std::span(payload).first(count * wire::kBatchResultSize), out)) != 0)
        return 0;
    // The reply was checked on receipt: one result per entry, and a descriptor for each 0.
    std::size_t next_fd = 0;
    for (std::size_t i = 0; i < count; ++i) {
        Client::OpenResult& result = results[todo[i]];
        const std::int32_t value = wire::batch_result(payload, i);
        if (value < 0) {
            set_error(result.ec, -value);
            continue;
        }
        result.fd = std::move(fds[next_fd++]);
        if (const int e = as_open_would_leave(result.fd, requests[todo[i]].flags); e != 0) {
            result.fd.reset();
            set_error(result.ec, e);
        }
    }
    return count;
}

std::unique_ptr<Connection> make_global_connection() noexcept {
    unique_fd bootstrap;
    // Without a broker the Connection still exists, and its calls fail with ENOTCONN.
    static_cast<void>(open_bootstrap(BootstrapSource::from_environment(), bootstrap));
    try {
        return std::make_unique<Connection>(std::move(bootstrap));
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

}  // namespace

Client::Client(Key, std::unique_ptr<Connection> connection) noexcept : connection_(std::move(connection)) {}

Client::~Client() = default;

Client& Client::global(std::error_code& ec) noexcept {
    // Never destroyed: other threads and atexit handlers may still call in while static destructors
    // run, and the inherited bootstrap fd must stay open for them. The environment is read once.
    struct Holder {
        union {
            Client client;
        };
        Holder() noexcept : client(Key{}, make_global_connection()) {}
        ~Holder() {}
    };
    static Holder holder;
    if (holder.client.connection_ && holder.client.connection_->reachable()) {
        ec.clear();
    } else {
        set_error(ec, holder.client.connection_ ? ENOTCONN : ENOMEM);
    }
    return holder.client;
}

std::unique_ptr<Client> Client::from_channel(unique_fd channel, std::error_code& ec) noexcept {
    if (!channel) {
        set_error(ec, EBADF);
        return nullptr;
    }
    if (const int err = check_channel(channel.get()); err != 0) {
        set_error(ec, err);
        return nullptr;
    }
    try {
        auto connection = std::make_unique<Connection>(std::move(channel));
        auto client = std::make_unique<Client>(Key{}, std::move(connection));
        ec.clear();
        return client;
    } catch (const std::bad_alloc&) {
        set_error(ec, ENOMEM);
        return nullptr;
    }
}

unique_fd Client::open(const char* path, int flags, mode_t mode, std::error_code& ec) noexcept {
    if (const int err = check_path(path); err != 0) {
        set_error(ec, err);
        return {};
    }
    wire::Request request;
    request.op = wire::Op::open;
    request.arg0 = static_cast<std::uint32_t>(flags);
    request.arg1 = open_needs_mode(flags) ? static_cast<std::uint32_t>(mode) : 0;
    request.path = path;
    CallResult out;
    if (const int err = call(connection_.get(), request, {}, out); err != 0) {
        set_error(ec, err);
        return {};
    }
    if (const int err = as_open_would_leave(out.fd, flags); err != 0) {
        set_error(ec, err);
        return {};
    }
    ec.clear();
    return std::move(out.fd);
}

void Client::open_batch(std::span<const OpenRequest> requests, std::span<OpenResult> results,
                        std::error_code& ec) noexcept {
    if (requests.size() > kMaxOpenMany || results.size() != requests.size()) return set_error(ec, EINVAL);
    // The entries open() would refuse before asking anyone fail here alone; the rest go to the broker.
    std::array<std::size_t, kMaxOpenMany> todo;
    std::size_t pending = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        results[i].fd.reset();
        results[i].ec.clear();
        if (const int err = check_path(requests[i].path); err != 0) {
            set_error(results[i].ec, err);
        } else {
            todo[pending++] = i;
        }
    }
    for (std::size_t done = 0; done < pending;) {
        int err = 0;
        const std::size_t sent = open_some(connection_.get(), requests,
                                           std::span(todo).subspan(done, pending - done), results, err);
        if (err != 0) {
            for (OpenResult& r : results) {
                r.fd.reset();
                r.ec.clear();
            }
            return set_error(ec, err);
        }
        done += sent;
    }
    ec.clear();
}

std::vector<Client::OpenResult> Client::open_batch(std::span<const OpenRequest> requests,
                                                   std::error_code& ec) {
    std::vector<OpenResult> results(requests.size());
    open_batch(requests, results, ec);
    if (ec) results.clear();
    return results;
}

void Client::access(const char* path, int mode, std::error_code& ec) noexcept {
    // access(2) rejects unknown mode bits before looking at the path.
    if ((mode & ~(R_OK | W_OK | X_OK)) != 0) return set_error(ec, EINVAL);
    simple(connection_.get(), wire::Op::access, path, nullptr, static_cast<std::uint32_t>(mode), ec);
}

struct ::stat Client::stat(const char* path, std::error_code& ec) noexcept {
    struct ::stat st {};
    if (const int err = check_path(path); err != 0) {
        set_error(ec, err);
        return st;
    }
    wire::Request request;
    request.op = wire::Op::stat;
    request.path = path;
    std::array<std::byte, wire::kStatPayloadSize> payload{};
    CallResult out;
    if (const int err = call(connection_.get(), request, payload, out); err != 0) {
        set_error(ec, err);
        return st;
    }
    // The size was checked on receipt; a field that does not fit struct stat is EOVERFLOW, as for
    // stat(2) itself.
    if (!wire::decode_stat(payload, st)) {
        set_error(ec, EOVERFLOW);
        return {};
    }
    ec.clear();
    return st;
}

std::size_t Client::readlink(const char* path, std::span<char> buf, std::error_code& ec) noexcept {
    if (const int err = check_path(path); err != 0) {
        set_error(ec, err);
        return 0;
    }
    // readlink(2): a buffer size of 0 is EINVAL.
    if (buf.empty()) {
        set_error(ec, EINVAL);
        return 0;
    }
    if (buf.data() == nullptr) {
        set_error(ec, EFAULT);
        return 0;
    }
    wire::Request request;
    request.op = wire::Op::readlink;
    request.path = path;
    CallResult out;
    if (const int err = call(connection_.get(), request, std::as_writable_bytes(buf), out); err != 0) {
        set_error(ec, err);
        return 0;
    }
    ec.clear();
    return std::min(out.payload_size, buf.size());
}

std::string Client::readlink(const char* path, std::error_code& ec) {
    std::array<char, wire::kMaxPath> buf;
    const std::size_t n = readlink(path, buf, ec);
    if (ec) return {};
    return std::string(buf.data(), n);
}

void Client::mkdir(const char* path, mode_t mode, std::error_code& ec) noexcept {
    simple(connection_.get(), wire::Op::mkdir, path, nullptr, static_cast<std::uint32_t>(mode & 07777), ec);
}

void Client::unlink(const char* path, std::error_code& ec) noexcept {
    simple(connection_.get(), wire::Op::unlink, path, nullptr, 0, ec);
}

void Client::rmdir(const char* path, std::error_code& ec) noexcept {
    simple(connection_.get(), wire::Op::rmdir, path, nullptr, 0, ec);
}

void Client::rename(const char* from, const char* to, std::error_code& ec) noexcept {
    simple(connection_.get(), wire::Op::rename, from, to, 0, ec);
}

void Client::chmod(const char* path, mode_t mode, int flags, std::error_code& ec) noexcept {
    wire::Request request;
    int err = check_path(path);
    if (err == 0) err = at_flags(flags, AT_SYMLINK_NOFOLLOW, request.flags);
    if (err != 0) return set_error(ec, err);
    request.op = wire::Op::chmod;
    request.arg0 = static_cast<std::uint32_t>(mode & 07777);  // chmod(2) ignores the rest
    request.path = path;
    exchange(connection_.get(), request, {}, ec);
}

void Client::chown(const char* path, uid_t owner, gid_t group, int flags, std::error_code& ec) noexcept {
    wire::Request request;
    int err = check_path(path);
    if (err == 0) err = at_flags(flags, AT_SYMLINK_NOFOLLOW, request.flags);
    if (err != 0) return set_error(ec, err);
    request.op = wire::Op::chown;
    request.arg0 = static_cast<std::uint32_t>(owner);
    request.arg1 = static_cast<std::uint32_t>(group);
    request.path = path;
    exchange(connection_.get(), request, {}, ec);
}

void Client::truncate(const char* path, off_t length, std::error_code& ec) noexcept {
    if (const int err = check_path(path); err != 0) return set_error(ec, err);
    // truncate(2) refuses a negative length before it looks at the path.
    if (length < 0) return set_error(ec, EINVAL);
    wire::Request request;
    request.op = wire::Op::truncate;
    const auto bits = static_cast<std::uint64_t>(length);
    request.arg0 = static_cast<std::uint32_t>(bits & 0xffffffffU);
    request.arg1 = static_cast<std::uint32_t>(bits >> 32U);
    request.path = path;
    exchange(connection_.get(), request, {}, ec);
}

void Client::utimens(const char* path, const struct ::timespec times[2], int flags,
                     std::error_code& ec) noexcept {
    wire::Request request;
    int err = check_path(path);
    if (err == 0) err = at_flags(flags, AT_SYMLINK_NOFOLLOW, request.flags);
    if (err != 0) return set_error(ec, err);
    // Nothing to change: utimensat(2) does not even look the path up.
    if (times != nullptr && times[0].tv_nsec == UTIME_OMIT && times[1].tv_nsec == UTIME_OMIT)
        return ec.clear();
    // No times means now for both, which is what UTIME_NOW twice means to the kernel.
    struct ::timespec chosen[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (times != nullptr) {
        chosen[0] = times[0];
        chosen[1] = times[1];
    }
    std::array<std::byte, wire::kTimesDataSize> data;
    wire::encode_times(chosen, data);
    request.op = wire::Op::utimens;
    request.path = path;
    request.data = data;
    exchange(connection_.get(), request, {}, ec);
}

void Client::link(const char* from, const char* to, int flags, std::error_code& ec) noexcept {
    wire::Request request;
    int err = check_path(from);
    if (err == 0) err = check_path(to);
    if (err == 0) err = at_flags(flags, AT_SYMLINK_FOLLOW, request.flags);
    if (err != 0) return set_error(ec, err);
    request.op = wire::Op::link;
    request.path = from;
    request.path2 = to;
    exchange(connection_.get(), request, {}, ec);
}

void Client::mknod(const char* path, mode_t mode, dev_t dev, std::error_code& ec) noexcept {
    if (const int err = check_path(path); err != 0) return set_error(ec, err);
    // The kernel takes a 32-bit device number; glibc's mknod refuses one that does not fit.
    if (static_cast<std::uint32_t>(dev) != dev) return set_error(ec, EINVAL);
    wire::Request request;
    request.op = wire::Op::mknod;
    request.arg0 = static_cast<std::uint32_t>(mode);
    request.arg1 = static_cast<std::uint32_t>(dev);
    request.path = path;
    exchange(connection_.get(), request, {}, ec);
}

std::size_t Client::getxattr(const char* path, const char* name, std::span<char> value, int flags,
                             std::error_code& ec) noexcept {
    wire::Request request;
    if (!xattr_request(wire::Op::getxattr, path, name, flags, request, ec)) return 0;
    if (value.data() == nullptr && !value.empty()) {
        set_error(ec, EFAULT);
        return 0;
    }
    // The kernel reads no more than the largest value into a larger buffer.
    value = value.first(std::min(value.size(), wire::kMaxXattrValue));
    request.arg0 = static_cast<std::uint32_t>(value.size());
    return exchange(connection_.get(), request, std::as_writable_bytes(value), ec);
}

std::size_t Client::listxattr(const char* path, std::span<char> list, int flags,
                              std::error_code& ec) noexcept {
    wire::Request request;
    int err = check_path(path);
    if (err == 0) err = at_flags(flags, AT_SYMLINK_NOFOLLOW, request.flags);
    if (err == 0 && list.data() == nullptr && !list.empty()) err = EFAULT;
    if (err != 0) {
        set_error(ec, err);
        return 0;
    }
    list = list.first(std::min(list.size(), wire::kMaxXattrValue));
    request.op = wire::Op::listxattr;
    request.arg0 = static_cast<std::uint32_t>(list.size());
    request.path = path;
    return exchange(connection_.get(), request, std::as_writable_bytes(list), ec);
}

void Client::setxattr(const char* path, const char* name, std::span<const char> value, int xattr_flags,
                      int flags, std::error_code& ec) noexcept {
    wire::Request request;
    if (!xattr_request(wire::Op::setxattr, path, name, flags, request, ec)) return;
    // setxattr(2)'s own checks, made before it looks the path up.
    if ((xattr_flags & ~(XATTR_CREATE | XATTR_REPLACE)) != 0) return set_error(ec, EINVAL);
    if (value.size() > wire::kMaxXattrValue) return set_error(ec, E2BIG);
    if (value.data() == nullptr && !value.empty()) return set_error(ec, EFAULT);
    request.arg0 = static_cast<std::uint32_t>(xattr_flags);
    request.data = std::as_bytes(value);
    exchange(connection_.get(), request, {}, ec);
}

void Client::removexattr(const char* path, const char* name, int flags, std::error_code& ec) noexcept {
    wire::Request request;
    if (xattr_request(wire::Op::removexattr, path, name, flags, request, ec))
        exchange(connection_.get(), request, {}, ec);
}

unique_fd Client::connect(const char* address, std::error_code& ec) noexcept {
    return socket_call(connection_.get(), wire::Op::connect, address, 0, ec);
}

unique_fd Client::listen(const char* address, int backlog, std::error_code& ec) noexcept {
    // listen(2) takes any int and caps it at somaxconn; the broker gets the same int back.
    return socket_call(connection_.get(), wire::Op::listen, address, static_cast<std::uint32_t>(backlog), ec);
}

}  // namespace fdbroker
