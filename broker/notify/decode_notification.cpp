#include "broker/notify/decode_notification.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <sys/stat.h>
#include <sys/time.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "broker/ops/proc_self.hpp"
#include "broker/ops/socket_ops.hpp"
#include "policy/path.hpp"

namespace fdbroker::broker {

namespace {

using op::PathBuffer;

int int_arg(const SystemCall& c, int i) noexcept {
    return static_cast<int>(static_cast<std::int32_t>(c.args[static_cast<std::size_t>(i)]));
}
std::uint64_t arg(const SystemCall& c, int i) noexcept {
    return c.args[static_cast<std::size_t>(i)];
}

// The absolute, lexically normal form of `path` as the caller meant it: a relative path starts at
// the caller's cwd (dirfd AT_FDCWD) or at the directory dirfd refers to.
int absolute(CallerView& caller, int dirfd, std::string_view path, PathBuffer& out) noexcept {
    if (path.empty()) return ENOENT;
    PathBuffer base;
    if (path.front() != '/')
        if (const int err = caller.directory(dirfd, base); err != 0) return err;
    return policy::join_lexically(base.view(), path, out) ? 0 : ENAMETOOLONG;
}

// A trailing "/", "." or ".." asks for a directory (path_resolution(7)); normalising drops it, so it
// is noted.
PathEnd ends_in_slash(std::string_view raw) noexcept {
    PathEnd end;
    end.directory = raw.size() > 1 && raw.back() == '/';
    while (raw.size() > 1 && raw.back() == '/')
        raw.remove_suffix(1);
    const std::size_t slash = raw.rfind('/');
    const std::string_view last = slash == std::string_view::npos ? raw : raw.substr(slash + 1);
    if (last == "." || last == "..") {
        end.dots = static_cast<std::uint8_t>(last.size());
        end.directory = true;
    }
    return end;
}

// Whether `raw` has a ".." right after a name it would cancel.
bool dotdot_after_name(std::string_view raw) noexcept {
    bool name = false;
    for (std::size_t start = 0; start <= raw.size();) {
        std::size_t end = raw.find('/', start);
        if (end == std::string_view::npos) end = raw.size();
        const std::string_view c = raw.substr(start, end - start);
        if (c == ".." && name) return true;
        if (!c.empty() && c != "." && c != "..") name = true;
        start = end + 1;
    }
    return false;
}

// absolute(), noting how the path ends (ends_in_slash) and whether it must be walked for real.
int absolute_noting(CallerView& caller, int dirfd, std::string_view raw, PathBuffer& out,
                    PathEnd& end) noexcept {
    end = ends_in_slash(raw);
    if (const int err = absolute(caller, dirfd, raw, out); err != 0) return err;
    if (!dotdot_after_name(raw)) return 0;
    PathBuffer base;
    if (raw.front() != '/' && caller.directory(dirfd, base) != 0) return 0;
    end.walk = end.unresolved.assign(base.view()) && end.unresolved.append("/") && end.unresolved.append(raw);
    return 0;
}

// Reads the path argument at `addr` and makes it absolute: 0 or errno.
int read_path(CallerView& caller, int dirfd, std::uint64_t addr, PathBuffer& out, PathEnd& slash) noexcept {
    PathBuffer raw;
    if (const int err = caller.read_string(addr, raw); err != 0) return err;
    return absolute_noting(caller, dirfd, raw.view(), out, slash);
}

// Where a call's path arguments are: the dirfd argument (-1: none, AT_FDCWD) and the path argument.
struct PathAt {
    int dirfd_arg;
    int path_arg;
    [[nodiscard]] int dirfd(const SystemCall& c) const noexcept {
        return dirfd_arg < 0 ? AT_FDCWD : int_arg(c, dirfd_arg);
    }
    int read(const SystemCall& c, CallerView& caller, PathBuffer& out, PathEnd& slash) const noexcept {
        return read_path(caller, dirfd(c), arg(c, path_arg), out, slash);
    }
};

// The rule text of a socket address the caller passed, for a stream socket of `domain`: 0, or the errno
// connect(2) or bind(2) would give for a malformed address.
int address_text(CallerView& caller, int domain, const sockaddr_storage& sa, socklen_t len,
                 std::string& out) {
    char text[INET6_ADDRSTRLEN];
    if (len < sizeof(sa_family_t)) return EINVAL;
    if (sa.ss_family != domain) return EAFNOSUPPORT;
    switch (sa.ss_family) {
        case AF_INET: {
            if (len < sizeof(sockaddr_in)) return EINVAL;
            const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
            ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
            out = std::string("tcp:") + text + ":" + std::to_string(ntohs(in->sin_port));
            return 0;
        }
        case AF_INET6: {
            if (len < sizeof(sockaddr_in6)) return EINVAL;
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
            ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
            out = std::string("tcp:[") + text + "]:" + std::to_string(ntohs(in6->sin6_port));
            return 0;
        }
        case AF_UNIX: {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&sa);
            if (len <= offsetof(sockaddr_un, sun_path)) return EINVAL;
            const std::size_t size = len - offsetof(sockaddr_un, sun_path);
            if (un->sun_path[0] == '\0') {
                out = "unix:@" + std::string(un->sun_path + 1, size - 1);
                return 0;
            }
            const std::string_view name(un->sun_path, strnlen(un->sun_path, size));
            PathBuffer abs;
            if (const int err = absolute(caller, AT_FDCWD, name, abs); err != 0) return err;
            out = "unix:" + std::string(abs.view());
            return 0;
        }
        default:
            return EAFNOSUPPORT;
    }
}

void open_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at, std::uint64_t flags,
               std::uint64_t mode) {
    auto& o = d.operation.emplace<op::Open>();
    if ((d.error = at.read(c, caller, o.path, d.trailing_slash[0])) != 0) return;
    o.flags = flags;
    // The kernel applies the caller's umask to a creation mode: the broker does it for the caller.
    o.mode = static_cast<mode_t>(mode) & 07777;
    if (flags & O_CREAT) o.mode &= ~caller.umask();
    o.exact_mode = true;
    d.cloexec = (flags & O_CLOEXEC) != 0;
}

void open_plain(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at) {
    // flags is an int for open(2) and openat(2)
    open_call(c, caller, d, at, arg(c, at.path_arg + 1) & 0xffffffffU, arg(c, at.path_arg + 2));
}

// What openat2(2) refuses before looking at the path: a larger struct whose tail is not zero (E2BIG),
// unknown flags or resolve bits, and a mode without O_CREAT or O_TMPFILE (EINVAL).
int openat2_invalid(const SystemCall& c, CallerView& caller, const open_how& how) {
    constexpr std::size_t kMaxTail = 4096;  // the kernel's limit on the struct is a page
    const std::uint64_t size = arg(c, 3);
    if (size > kMaxTail) return E2BIG;
    for (std::uint64_t at = sizeof how; at < size; at += 8) {
        std::uint64_t word = 0;
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(8, size - at));
        if (const int err = caller.read_bytes(arg(c, 2) + at, &word, n); err != 0) return err;
        if (word != 0) return E2BIG;
    }
    constexpr std::uint64_t kResolve = RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS |
                                       RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_CACHED;
    constexpr std::uint64_t kFlags = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND |
                                     O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
                                     O_PATH | (O_TMPFILE & ~O_DIRECTORY) | O_DIRECT | O_NOATIME | O_ASYNC |
                                     0100000 /* O_LARGEFILE */;
    if ((how.resolve & ~kResolve) || (how.flags & ~kFlags)) return EINVAL;
    const bool takes_mode = (how.flags & O_CREAT) || (how.flags & O_TMPFILE) == O_TMPFILE;
    return how.mode != 0 && !takes_mode ? EINVAL : 0;
}

void openat2_call(const SystemCall& c, CallerView& caller, Decoded& d) {
    open_how how{};
    if (arg(c, 3) < sizeof how) return static_cast<void>(d.error = EINVAL);
    if ((d.error = caller.read_bytes(arg(c, 2), &how, sizeof how)) != 0) return;
    if (const int err = openat2_invalid(c, caller, how); err != 0) return static_cast<void>(d.error = err);
    // The scoping flags are walked before the open (path_form.hpp), from the directory dirfd names.
    // The broker follows no magic link but the caller's own fd/N ones (proc_self.hpp), which
    // RESOLVE_NO_MAGICLINKS refuses as the kernel does.
    // RESOLVE_CACHED asks never to block, which a broker cannot promise: EAGAIN, as the kernel says.
    if (how.resolve & RESOLVE_CACHED) return static_cast<void>(d.error = EAGAIN);
    open_call(c, caller, d, {0, 1}, how.flags, how.mode);
    const bool opens_link = (how.flags & O_PATH) && (how.flags & O_NOFOLLOW);
    if (d.error == 0 && (how.resolve & RESOLVE_NO_MAGICLINKS) &&
        through_magic_link(std::get<op::Open>(d.operation).path.view(), !opens_link))
        return static_cast<void>(d.error = ELOOP);
    d.scope = how.resolve & kScoping;
    if (d.error != 0 || d.scope == 0) return;
    PathBuffer& raw = d.trailing_slash[0].unresolved;
    if ((d.error = caller.read_string(arg(c, 1), raw)) != 0) return;
    d.trailing_slash[0].walk = false;  // the scoped walk takes its place
    if (raw.size() == 0) return static_cast<void>(d.error = ENOENT);
    d.error = caller.directory(PathAt{0, 1}.dirfd(c), d.scope_root);
}

// stat, lstat, newfstatat and statx: `flags` are the call's AT_ flags, `buf` its result buffer.
void stat_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at, int flags, bool statx,
               std::uint64_t buf) {
    d.result_buffer = buf;
    const int dirfd = at.dirfd(c);
    PathBuffer raw;
    // A null path with AT_EMPTY_PATH is accepted too (Linux 6.11).
    if (!(at.dirfd_arg >= 0 && arg(c, at.path_arg) == 0 && (flags & AT_EMPTY_PATH)))
        if ((d.error = caller.read_string(arg(c, at.path_arg), raw)) != 0) return;
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | (statx ? AT_STATX_SYNC_TYPE : 0)))
        return static_cast<void>(d.error = EINVAL);
    const bool on_fd = raw.size() == 0 && (flags & AT_EMPTY_PATH);
    const auto mask = static_cast<unsigned>(arg(c, 3));
    if (on_fd && dirfd != AT_FDCWD) {
        auto& o = d.operation.emplace<op::StatHeld>();
        o.statx = statx;
        o.flags = flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        o.mask = mask;
        d.error = caller.descriptor_link(dirfd, o.link);
        return;
    }
    PathBuffer path;
    d.error = on_fd ? absolute(caller, AT_FDCWD, ".", path)
                    : absolute_noting(caller, dirfd, raw.view(), path, d.trailing_slash[0]);
    if (d.error != 0) return;
    if (statx) {
        auto& o = d.operation.emplace<op::Statx>();
        static_cast<void>(o.path.assign(path.view()));
        o.flags = flags & ~AT_EMPTY_PATH;
        o.mask = mask;
    } else {
        auto& o = d.operation.emplace<op::Stat>();
        static_cast<void>(o.path.assign(path.view()));
        o.follow = !(flags & AT_SYMLINK_NOFOLLOW);
    }
}

// access, faccessat and faccessat2 (`flags`: AT_EACCESS, which changes nothing for a worker whose real
// and effective ids are the same, and AT_SYMLINK_NOFOLLOW).
void access_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at, int flags) {
    if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
        return static_cast<void>(d.error = EINVAL);
    auto& o = d.operation.emplace<op::Access>();
    o.mode = static_cast<std::uint32_t>(arg(c, at.path_arg + 1));
    o.follow = !(flags & AT_SYMLINK_NOFOLLOW);
    PathBuffer raw;
    if ((d.error = caller.read_string(arg(c, at.path_arg), raw)) != 0) return;
    // An empty path with AT_EMPTY_PATH asks about the directory (or file) dirfd refers to.
    if (raw.size() == 0 && (flags & AT_EMPTY_PATH)) {
        d.error = caller.directory(at.dirfd(c), o.path);
        return;
    }
    d.error = absolute_noting(caller, at.dirfd(c), raw.view(), o.path, d.trailing_slash[0]);
}

void readlink_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at) {
    const int size = static_cast<int>(arg(c, at.path_arg + 2));
    if (size <= 0) return static_cast<void>(d.error = EINVAL);
    auto& o = d.operation.emplace<op::Readlink>();
    if ((d.error = at.read(c, caller, o.path, d.trailing_slash[0])) != 0) return;
    o.size = static_cast<std::size_t>(size);
    d.result_buffer = arg(c, at.path_arg + 1);
}

void mkdir_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at) {
    auto& o = d.operation.emplace<op::Mkdir>();
    if ((d.error = at.read(c, caller, o.path, d.trailing_slash[0])) != 0) return;
    o.mode = static_cast<mode_t>(arg(c, at.path_arg + 1) & 07777 & ~caller.umask());
    o.exact_mode = true;
}

// unlink, rmdir and unlinkat: `flags` decide which (AT_REMOVEDIR).
void unlink_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at, int flags) {
    if (flags & ~AT_REMOVEDIR) return static_cast<void>(d.error = EINVAL);
    PathBuffer& path = (flags & AT_REMOVEDIR) ? d.operation.emplace<op::Rmdir>().path
                                              : d.operation.emplace<op::Unlink>().path;
    d.error = at.read(c, caller, path, d.trailing_slash[0]);
}

void rename_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt from, PathAt to,
                 unsigned flags) {
    auto& o = d.operation.emplace<op::Rename>();
    if ((d.error = from.read(c, caller, o.from, d.trailing_slash[0])) != 0) return;
    if ((d.error = to.read(c, caller, o.to, d.trailing_slash[1])) != 0) return;
    o.flags = flags;
}

void symlink_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at) {
    auto& o = d.operation.emplace<op::Symlink>();
    // The link's text stays as written; only where the link is made is made absolute.
    if ((d.error = caller.read_string(arg(c, 0), o.target)) != 0) return;
    d.error = at.read(c, caller, o.path, d.trailing_slash[0]);
}

// The path argument of a call that takes AT_EMPTY_PATH: the object is then the caller's descriptor
// `dirfd` itself when the path is empty. 0 or errno; `held` is set for the descriptor form.
int path_or_held(const SystemCall& c, CallerView& caller, PathAt at, int flags, PathBuffer& path,
                 unique_fd& held, PathEnd& slash) {
    PathBuffer raw;
    if (const int err = caller.read_string(arg(c, at.path_arg), raw); err != 0) return err;
    if (raw.size() == 0 && (flags & AT_EMPTY_PATH)) return caller.take_fd(at.dirfd(c), held);
    return absolute_noting(caller, at.dirfd(c), raw.view(), path, slash);
}

void chmod_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at, int flags) {
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return static_cast<void>(d.error = EINVAL);
    auto& o = d.operation.emplace<op::Chmod>();
    o.mode = static_cast<mode_t>(arg(c, at.path_arg + 1));
    o.follow = !(flags & AT_SYMLINK_NOFOLLOW);
    d.error = path_or_held(c, caller, at, flags, o.path, o.held, d.trailing_slash[0]);
}

void chown_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at, int flags) {
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return static_cast<void>(d.error = EINVAL);
    auto& o = d.operation.emplace<op::Chown>();
    o.uid = static_cast<uid_t>(arg(c, at.path_arg + 1));
    o.gid = static_cast<gid_t>(arg(c, at.path_arg + 2));
    o.follow = !(flags & AT_SYMLINK_NOFOLLOW);
    d.error = path_or_held(c, caller, at, flags, o.path, o.held, d.trailing_slash[0]);
}

void truncate_call(const SystemCall& c, CallerView& caller, Decoded& d) {
    auto& o = d.operation.emplace<op::Truncate>();
    o.length = static_cast<off_t>(arg(c, 1));
    d.error = PathAt{-1, 0}.read(c, caller, o.path, d.trailing_slash[0]);
}

// utimensat with a path (the filter allows futimens, a null path, itself), and the older forms whose
// times are microseconds (utimes, futimesat) or seconds (utime); a null times pointer means now.
enum class TimeForm : std::uint8_t { timespec, timeval, utimbuf };

int read_times(CallerView& caller, std::uint64_t addr, TimeForm form, op::Utimens& o) {
    o.now = addr == 0;
    if (o.now) return 0;
    if (form == TimeForm::timespec) return caller.read_bytes(addr, o.times, sizeof o.times);
    if (form == TimeForm::utimbuf) {
        std::int64_t seconds[2]{};  // struct utimbuf: actime, modtime
        if (const int err = caller.read_bytes(addr, seconds, sizeof seconds); err != 0) return err;
        o.times[0] = {seconds[0], 0};
        o.times[1] = {seconds[1], 0};
        return 0;
    }
    struct ::timeval tv[2]{};
    if (const int err = caller.read_bytes(addr, tv, sizeof tv); err != 0) return err;
    for (int i = 0; i < 2; ++i) {
        // utimes(2) refuses microseconds out of range, which as nanoseconds could read as UTIME_NOW.
        if (tv[i].tv_usec < 0 || tv[i].tv_usec >= 1'000'000) return EINVAL;
        o.times[i] = {tv[i].tv_sec, tv[i].tv_usec * 1000};
    }
    return 0;
}

void utimes_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at, TimeForm form, int flags) {
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return static_cast<void>(d.error = EINVAL);
    auto& o = d.operation.emplace<op::Utimens>();
    o.follow = !(flags & AT_SYMLINK_NOFOLLOW);
    if ((d.error = read_times(caller, arg(c, at.path_arg + 1), form, o)) != 0) return;
    d.error = path_or_held(c, caller, at, flags, o.path, o.held, d.trailing_slash[0]);
}

void link_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt from, PathAt to, int flags) {
    if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return static_cast<void>(d.error = EINVAL);
    auto& o = d.operation.emplace<op::Link>();
    o.follow = (flags & AT_SYMLINK_FOLLOW) != 0;
    PathBuffer raw;
    if ((d.error = caller.read_string(arg(c, from.path_arg), raw)) != 0) return;
    if (raw.size() == 0 && (flags & AT_EMPTY_PATH)) {
        // The descriptor itself: linked as through its /proc link, judged on the file it names.
        o.follow = true;
        if ((d.error = caller.descriptor_link(from.dirfd(c), o.from)) != 0) return;
    } else {
        if ((d.error = absolute_noting(caller, from.dirfd(c), raw.view(), o.from, d.trailing_slash[0])) != 0)
            return;
    }
    d.error = to.read(c, caller, o.to, d.trailing_slash[1]);
}

void mknod_call(const SystemCall& c, CallerView& caller, Decoded& d, PathAt at) {
    auto& o = d.operation.emplace<op::Mknod>();
    if ((d.error = at.read(c, caller, o.path, d.trailing_slash[0])) != 0) return;
    const auto mode = static_cast<mode_t>(arg(c, at.path_arg + 1));
    // As mknod(2): the permission bits lose the umask, the type stays (none means a regular file).
    o.mode = (mode & S_IFMT) | (mode & 07777 & ~caller.umask());
    o.dev = static_cast<dev_t>(arg(c, at.path_arg + 2));
    o.exact_mode = true;
}

// The xattr calls by path: get (path, name, value, size), list (path, list, size), set (path, name,
// value, size, flags), remove (path, name). `follow` is false for the l- forms.
void xattr_call(const SystemCall& c, CallerView& caller, Decoded& d, op::Xattr::Kind kind, bool follow) {
    using Kind = op::Xattr::Kind;
    auto& o = d.operation.emplace<op::Xattr>();
    o.kind = kind;
    o.follow = follow;
    if ((d.error = PathAt{-1, 0}.read(c, caller, o.path, d.trailing_slash[0])) != 0) return;
    if (kind == Kind::list) {
        o.size = static_cast<std::size_t>(arg(c, 2));
        d.result_buffer = arg(c, 1);
        return;
    }
    PathBuffer name;
    // A name longer than XATTR_NAME_MAX is ERANGE, as the kernel says.
    if ((d.error = caller.read_string(arg(c, 1), name)) != 0) return;
    if (name.size() == 0 || name.size() > 255) return static_cast<void>(d.error = ERANGE);
    o.name.assign(name.view());
    if (kind == Kind::get) {
        o.size = static_cast<std::size_t>(arg(c, 3));
        d.result_buffer = arg(c, 2);
    } else if (kind == Kind::set) {
        const auto size = static_cast<std::size_t>(arg(c, 3));
        if (size > op::Xattr::kMaxValue) return static_cast<void>(d.error = E2BIG);
        o.value.resize(size);
        o.flags = int_arg(c, 4);
        if (size > 0) d.error = caller.read_bytes(arg(c, 2), o.value.data(), size);
    }
}

// The caller's socket (argument 0) and its domain and type: 0 or errno.
int take_socket(const SystemCall& c, CallerView& caller, unique_fd& sock, int& domain, int& type) {
    if (const int err = caller.take_fd(int_arg(c, 0), sock); err != 0) return err;
    socklen_t len = sizeof domain;
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return ENOTSOCK;
    len = sizeof type;
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) return ENOTSOCK;
    return 0;
}

// connect and bind: the address the caller passed, on a stream socket of its own.
template <class Op>
void address_call(const SystemCall& c, CallerView& caller, Decoded& d) {
    unique_fd sock;
    int domain = 0, type = 0;
    if ((d.error = take_socket(c, caller, sock, domain, type)) != 0) return;
    if (type != SOCK_STREAM) return static_cast<void>(d.error = EACCES);
    sockaddr_storage sa{};
    const auto len = static_cast<socklen_t>(arg(c, 2));
    if (len > sizeof sa) return static_cast<void>(d.error = EINVAL);
    if ((d.error = caller.read_bytes(arg(c, 1), &sa, len)) != 0) return;
    try {
        auto& o = d.operation.emplace<Op>();
        if ((d.error = address_text(caller, domain, sa, len, o.address)) != 0) return;
        o.socket = std::move(sock);
        if constexpr (std::is_same_v<Op, op::Bind>) o.umask = caller.umask();
    } catch (const std::bad_alloc&) {
        d.error = ENOMEM;
    }
}

// Whether a socket of `domain` has no address of its own yet.
bool unbound(int domain, const sockaddr_storage& local, socklen_t len) {
    return (domain == AF_UNIX && len <= sizeof(sa_family_t)) ||
           (domain == AF_INET && reinterpret_cast<const sockaddr_in*>(&local)->sin_port == 0) ||
           (domain == AF_INET6 && reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port == 0);
}

void listen_call(const SystemCall& c, CallerView& caller, Decoded& d) {
    unique_fd sock;
    int domain = 0, type = 0;
    if ((d.error = take_socket(c, caller, sock, domain, type)) != 0) return;
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0)
        return static_cast<void>(d.error = errno);
    // An unbound socket would be bound by listen(2) itself, to an address no rule granted. Bound by
    // the broker under a listen rule, or implicitly (a unix socket's autobind, a connected TCP socket's
    // port): the address it has must be one a rule grants.
    if (unbound(domain, local, len)) return static_cast<void>(d.error = EACCES);
    try {
        auto& o = d.operation.emplace<op::Listen>();
        // A unix socket named relative to its directory (bound so by the broker, its path being too
        // long for sun_path) is judged at the path it was bound to; the caller's working directory now
        // says nothing of where that is.
        const auto* un = reinterpret_cast<const sockaddr_un*>(&local);
        if (domain == AF_UNIX && len > offsetof(sockaddr_un, sun_path) && un->sun_path[0] != '\0' &&
            un->sun_path[0] != '/') {
            const std::optional<std::string> bound = SocketOps::bound_path(sock.get());
            if (!bound) return static_cast<void>(d.error = EACCES);
            o.address = "unix:" + *bound;
        } else if (address_text(caller, domain, local, len, o.address) != 0) {
            return static_cast<void>(d.error = EACCES);
        }
        o.backlog = int_arg(c, 1);
        o.socket = std::move(sock);
    } catch (const std::bad_alloc&) {
        d.error = ENOMEM;
    }
}

// Forms the filter did not allow itself (seccomp_filter.cpp): datagram sockets, sends that name an
// address. Refused like the filter's own quiet refusals.
void refused(const SystemCall&, CallerView&, Decoded& d) {
    d.error = EACCES;
}

// A decoder may throw std::bad_alloc (an address as text): decode_notification() answers ENOMEM.
using Decoder = void (*)(const SystemCall&, CallerView&, Decoded&);

struct BrokeredCall {
    const char* name;
    Decoder decode;
    // The filter sends every instance of the call here; false: only the forms its rules do not allow.
    bool whole = true;
};

// clang-format off
constexpr BrokeredCall kCalls[] = {
    {"open",       [](auto& c, auto& m, auto& d) { open_plain(c, m, d, {-1, 0}); }},
    {"openat",     [](auto& c, auto& m, auto& d) { open_plain(c, m, d, {0, 1}); }},
    {"openat2",    [](auto& c, auto& m, auto& d) { openat2_call(c, m, d); }},
    {"creat",      [](auto& c, auto& m, auto& d) {
                       open_call(c, m, d, {-1, 0}, O_CREAT | O_WRONLY | O_TRUNC, arg(c, 1)); }},
    {"stat",       [](auto& c, auto& m, auto& d) { stat_call(c, m, d, {-1, 0}, 0, false, arg(c, 1)); }},
    {"lstat",      [](auto& c, auto& m, auto& d) {
                       stat_call(c, m, d, {-1, 0}, AT_SYMLINK_NOFOLLOW, false, arg(c, 1)); }},
    {"newfstatat", [](auto& c, auto& m, auto& d) {
                       stat_call(c, m, d, {0, 1}, int_arg(c, 3), false, arg(c, 2)); }},
    {"statx",      [](auto& c, auto& m, auto& d) {
                       stat_call(c, m, d, {0, 1}, int_arg(c, 2), true, arg(c, 4)); }},
    {"access",     [](auto& c, auto& m, auto& d) { access_call(c, m, d, {-1, 0}, 0); }},
    {"faccessat",  [](auto& c, auto& m, auto& d) { access_call(c, m, d, {0, 1}, 0); }},
    {"faccessat2", [](auto& c, auto& m, auto& d) { access_call(c, m, d, {0, 1}, int_arg(c, 3)); }},
    {"readlink",   [](auto& c, auto& m, auto& d) { readlink_call(c, m, d, {-1, 0}); }},
    {"readlinkat", [](auto& c, auto& m, auto& d) { readlink_call(c, m, d, {0, 1}); }},
    {"mkdir",      [](auto& c, auto& m, auto& d) { mkdir_call(c, m, d, {-1, 0}); }},
    {"mkdirat",    [](auto& c, auto& m, auto& d) { mkdir_call(c, m, d, {0, 1}); }},
    {"unlink",     [](auto& c, auto& m, auto& d) { unlink_call(c, m, d, {-1, 0}, 0); }},
    {"unlinkat",   [](auto& c, auto& m, auto& d) { unlink_call(c, m, d, {0, 1}, int_arg(c, 2)); }},
    {"rmdir",      [](auto& c, auto& m, auto& d) { unlink_call(c, m, d, {-1, 0}, AT_REMOVEDIR); }},
    {"rename",     [](auto& c, auto& m, auto& d) { rename_call(c, m, d, {-1, 0}, {-1, 1}, 0); }},
    {"renameat",   [](auto& c, auto& m, auto& d) { rename_call(c, m, d, {0, 1}, {2, 3}, 0); }},
    {"renameat2",  [](auto& c, auto& m, auto& d) {
                       rename_call(c, m, d, {0, 1}, {2, 3}, static_cast<unsigned>(arg(c, 4))); }},
    {"symlink",    [](auto& c, auto& m, auto& d) { symlink_call(c, m, d, {-1, 1}); }},
    {"symlinkat",  [](auto& c, auto& m, auto& d) { symlink_call(c, m, d, {1, 2}); }},
    {"chmod",      [](auto& c, auto& m, auto& d) { chmod_call(c, m, d, {-1, 0}, 0); }},
    {"fchmodat",   [](auto& c, auto& m, auto& d) { chmod_call(c, m, d, {0, 1}, 0); }},
    {"fchmodat2",  [](auto& c, auto& m, auto& d) { chmod_call(c, m, d, {0, 1}, int_arg(c, 3)); }},
    {"chown",      [](auto& c, auto& m, auto& d) { chown_call(c, m, d, {-1, 0}, 0); }},
    {"lchown",     [](auto& c, auto& m, auto& d) { chown_call(c, m, d, {-1, 0}, AT_SYMLINK_NOFOLLOW); }},
    {"fchownat",   [](auto& c, auto& m, auto& d) { chown_call(c, m, d, {0, 1}, int_arg(c, 4)); }},
    {"truncate",   [](auto& c, auto& m, auto& d) { truncate_call(c, m, d); }},
    {"utime",      [](auto& c, auto& m, auto& d) { utimes_call(c, m, d, {-1, 0}, TimeForm::utimbuf, 0); }},
    {"utimes",     [](auto& c, auto& m, auto& d) { utimes_call(c, m, d, {-1, 0}, TimeForm::timeval, 0); }},
    {"futimesat",  [](auto& c, auto& m, auto& d) { utimes_call(c, m, d, {0, 1}, TimeForm::timeval, 0); }},
    {"utimensat",  [](auto& c, auto& m, auto& d) {
                       utimes_call(c, m, d, {0, 1}, TimeForm::timespec, int_arg(c, 3)); }, false},
    {"link",       [](auto& c, auto& m, auto& d) { link_call(c, m, d, {-1, 0}, {-1, 1}, 0); }},
    {"linkat",     [](auto& c, auto& m, auto& d) { link_call(c, m, d, {0, 1}, {2, 3}, int_arg(c, 4)); }},
    {"mknod",      [](auto& c, auto& m, auto& d) { mknod_call(c, m, d, {-1, 0}); }},
    {"mknodat",    [](auto& c, auto& m, auto& d) { mknod_call(c, m, d, {0, 1}); }},
    {"getxattr",   [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::get, true); }},
    {"lgetxattr",  [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::get, false); }},
    {"listxattr",  [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::list, true); }},
    {"llistxattr", [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::list, false); }},
    {"setxattr",   [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::set, true); }},
    {"lsetxattr",  [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::set, false); }},
    {"removexattr",  [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::remove, true); }},
    {"lremovexattr", [](auto& c, auto& m, auto& d) { xattr_call(c, m, d, op::Xattr::Kind::remove, false); }},
    {"connect",    address_call<op::Connect>},
    {"bind",       address_call<op::Bind>},
    {"listen",     listen_call},
    {"socket",     refused, false},
    {"socketpair", refused, false},
    {"sendto",     refused, false},
    {"sendmsg",    refused, false},
    {"sendmmsg",   refused, false},
};
// clang-format on

constexpr std::size_t kCallCount = std::size(kCalls);

// The table's system call numbers, resolved once (-1 where this system lacks the call).
const std::array<int, kCallCount>& numbers() noexcept {
    static const std::array<int, kCallCount> nrs = [] {
        std::array<int, kCallCount> out{};
        for (std::size_t i = 0; i < kCallCount; ++i)
            out[i] = seccomp_syscall_resolve_name(kCalls[i].name);
        return out;
    }();
    return nrs;
}

const BrokeredCall* find(int nr) noexcept {
    if (nr < 0) return nullptr;
    const auto& nrs = numbers();
    for (std::size_t i = 0; i < kCallCount; ++i)
        if (nrs[i] == nr) return &kCalls[i];
    return nullptr;
}

}  // namespace

bool is_brokered(int nr) noexcept {
    return find(nr) != nullptr;
}

bool is_refused_form(int nr) noexcept {
    const BrokeredCall* entry = find(nr);
    return entry != nullptr && entry->decode == refused;
}

void decode_notification(const SystemCall& call, CallerView& caller, Decoded& out) noexcept {
    const BrokeredCall* entry = find(call.nr);
    if (entry == nullptr) {
        out.error = ENOSYS;
        return;
    }
    try {
        entry->decode(call, caller, out);
        if (out.error != 0) out.operation.emplace<op::None>();
    } catch (...) {
        out.error = ENOMEM;  // what the operation holds is never performed: decoding failed
    }
}

std::span<const char* const> brokered_call_names() noexcept {
    static const auto names = [] {
        std::array<const char*, kCallCount> out{};
        std::size_t n = 0;
        for (const BrokeredCall& call : kCalls)
            if (call.whole) out[n++] = call.name;
        return std::pair(out, n);
    }();
    return {names.first.data(), names.second};
}

}  // namespace fdbroker::broker
