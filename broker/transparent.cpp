#include "broker/transparent.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "broker/path_buffer.hpp"
#include "broker/process_tree.hpp"
#include "broker/worker_memory.hpp"

namespace fdbroker::broker {

#ifndef PIDFD_THREAD
constexpr unsigned kPidfdThread = O_EXCL;  // Linux 6.9: a pidfd for a thread rather than a process
#else
constexpr unsigned kPidfdThread = PIDFD_THREAD;
#endif

// One notification being answered: the caller's thread id, its memory, and the reply.
class NotifyCall {
  public:
    // The notification is copied: the supervisor's buffer receives the next one while this call may
    // still be waiting for a file system.
    NotifyCall(int notify, const seccomp_notif& req)
        : notify_(notify), req_(req), tid_(static_cast<pid_t>(req.pid)), memory_(tid_) {}
    [[nodiscard]] const seccomp_notif& request() const noexcept { return req_; }

    [[nodiscard]] pid_t tid() const noexcept { return tid_; }
    [[nodiscard]] int notify() const noexcept { return notify_; }
    [[nodiscard]] std::uint64_t arg(int i) const noexcept { return req_.data.args[i]; }
    [[nodiscard]] int int_arg(int i) const noexcept {
        return static_cast<int>(static_cast<std::int32_t>(arg(i)));
    }

    // Whether the notification is still pending: the thread id still names the thread that made it,
    // so what was read through /proc/TID is the caller's.
    [[nodiscard]] bool valid() const noexcept {
        std::uint64_t id = req_.id;
        return ::ioctl(notify_, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
    }
    int read_string(std::uint64_t addr, PathBuffer& out) const noexcept {
        return memory_.read_string(addr, out);
    }
    int read_bytes(std::uint64_t addr, void* buf, std::size_t size) const noexcept {
        return memory_.read_bytes(addr, buf, size);
    }
    // Writes a result into the caller's buffer: EFAULT where the caller could not write itself.
    int write_bytes(std::uint64_t addr, const void* buf, std::size_t size) noexcept {
        return memory_.write_bytes(addr, buf, size, [this] { return valid(); });
    }

    // The caller's descriptor `fd`, duplicated into the broker (pidfd_getfd): 0 or errno.
    int take_fd(int fd, unique_fd& out) noexcept {
        unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, tid_, kPidfdThread)));
        if (!pidfd) pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, tid_, 0)));
        if (!pidfd) return ESRCH;
        out.reset(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
        if (!out) return errno;
        return valid() ? 0 : ESRCH;
    }

    // The worker's umask, which the kernel would have applied to a creation mode.
    [[nodiscard]] mode_t umask() const noexcept {
        char buf[2048];
        const std::string_view status = read_proc(tid_, "status", buf);
        const std::size_t at = status.find("\nUmask:\t");
        unsigned mask = 022;
        if (at != std::string_view::npos)
            std::from_chars(status.data() + at + 8, status.data() + status.size(), mask, 8);
        return static_cast<mode_t>(mask & 0777);
    }

    void reply(int error, std::int64_t value = 0) noexcept {
        seccomp_notif_resp resp{};
        resp.id = req_.id;
        resp.error = error != 0 ? -error : 0;
        resp.val = error != 0 ? 0 : value;
        [[maybe_unused]] int rc = ::ioctl(notify_, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    // Installs fd in the caller and answers with its number, atomically: if the caller is gone the
    // descriptor is never installed.
    void reply_fd(int fd, bool cloexec) noexcept {
        seccomp_notif_addfd addfd{};
        addfd.id = req_.id;
        addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
        addfd.srcfd = static_cast<std::uint32_t>(fd);
        addfd.newfd_flags = cloexec ? O_CLOEXEC : 0;
        if (::ioctl(notify_, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0 && errno != ENOENT) reply(errno);
    }

  private:
    int notify_;
    const seccomp_notif req_;
    pid_t tid_;
    WorkerMemory memory_;
};

namespace {

// Appends the components of `path` to out (which holds a normal absolute path), lexically: "." and
// empty components vanish, ".." removes the last component ("/.." is "/"). False if too long.
bool append_normalised(std::string_view path, PathBuffer& out) noexcept {
    while (!path.empty()) {
        const std::size_t slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            const std::size_t last = out.view().rfind('/');
            out.truncate(last == 0 ? 1 : last);
            continue;
        }
        if (out.size() > 1 && !out.append("/")) return false;
        if (!out.append(part)) return false;
    }
    return true;
}

// The absolute, lexically normal form of `path` as the caller meant it: relative paths start at its
// cwd (dirfd AT_FDCWD) or at the directory dirfd refers to, as /proc/TID/{cwd,fd/N} names them.
// The caller confirms with NotifyCall::valid() afterwards that TID was still the caller throughout.
int absolute(const NotifyCall& call, int dirfd, std::string_view path, PathBuffer& out) noexcept {
    if (path.empty()) return ENOENT;
    out.truncate(0);
    static_cast<void>(out.append("/"));
    if (path.front() != '/') {
        char proc[48];
        if (dirfd == AT_FDCWD)
            std::snprintf(proc, sizeof proc, "/proc/%d/cwd", call.tid());
        else if (dirfd < 0)
            return EBADF;
        else
            std::snprintf(proc, sizeof proc, "/proc/%d/fd/%d", call.tid(), dirfd);
        char base[PATH_MAX];
        const ssize_t n = ::readlink(proc, base, sizeof base);
        if (n < 0) return dirfd == AT_FDCWD ? ENOENT : EBADF;
        // A descriptor that is not a directory in the tree (a socket, a pipe, an anonymous inode).
        if (n == 0 || base[0] != '/' || static_cast<std::size_t>(n) >= sizeof base) return ENOTDIR;
        if (!append_normalised({base, static_cast<std::size_t>(n)}, out)) return ENAMETOOLONG;
    }
    return append_normalised(path, out) ? 0 : ENAMETOOLONG;
}

// Reads the path argument at `addr` and makes it absolute: 0 or errno.
int path_arg(NotifyCall& call, int dirfd, std::uint64_t addr, PathBuffer& out) noexcept {
    PathBuffer raw;
    if (const int err = call.read_string(addr, raw); err != 0) return err;
    return absolute(call, dirfd, raw.view(), out);
}

// Sets the broker's umask to 0 for one creation, whose mode already carries the worker's umask; does
// nothing for a call that creates nothing (two system calls fewer per open).
class NoUmask {
  public:
    explicit NoUmask(bool creates = true) noexcept : active_(creates), old_(creates ? ::umask(0) : 0) {}
    ~NoUmask() {
        if (active_) ::umask(old_);
    }
    NoUmask(const NoUmask&) = delete;
    NoUmask& operator=(const NoUmask&) = delete;

  private:
    bool active_;
    mode_t old_;
};

// The text of a rule address for a socket address the worker passed, for a stream socket of `domain`:
// 0, or the errno connect(2) or bind(2) would give for a malformed address.
int address_text(NotifyCall& call, int domain, const sockaddr_storage& sa, socklen_t len, std::string& out) {
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
            const std::size_t size = len - offsetof(sockaddr_un, sun_path);
            if (len <= offsetof(sockaddr_un, sun_path)) return EINVAL;
            if (un->sun_path[0] == '\0') {
                out = "unix:@" + std::string(un->sun_path + 1, size - 1);
                return 0;
            }
            const std::string_view name(un->sun_path, strnlen(un->sun_path, size));
            PathBuffer abs;
            if (const int err = absolute(call, AT_FDCWD, name, abs); err != 0) return err;
            out = "unix:" + std::string(abs.view());
            return 0;
        }
        default:
            return EAFNOSUPPORT;
    }
}

struct Names {
    int open, openat, openat2, creat, stat, lstat, newfstatat, statx, access, faccessat, faccessat2, readlink,
        readlinkat, mkdir, mkdirat, unlink, unlinkat, rmdir, rename, renameat, renameat2, symlink, symlinkat,
        connect, bind, listen, socket, socketpair, sendto, sendmsg, sendmmsg, utimensat;
};

const Names& names() {
    auto nr = [](const char* name) { return seccomp_syscall_resolve_name(name); };
    static const Names n{nr("open"),       nr("openat"),     nr("openat2"),    nr("creat"),   nr("stat"),
                         nr("lstat"),      nr("newfstatat"), nr("statx"),      nr("access"),  nr("faccessat"),
                         nr("faccessat2"), nr("readlink"),   nr("readlinkat"), nr("mkdir"),   nr("mkdirat"),
                         nr("unlink"),     nr("unlinkat"),   nr("rmdir"),      nr("rename"),  nr("renameat"),
                         nr("renameat2"),  nr("symlink"),    nr("symlinkat"),  nr("connect"), nr("bind"),
                         nr("listen"),     nr("socket"),     nr("socketpair"), nr("sendto"),  nr("sendmsg"),
                         nr("sendmmsg"),   nr("utimensat")};
    return n;
}

// What the audit line names for a connect or bind: the address reached (a connect to 0.0.0.0 reaches
// 127.0.0.1), which is the one asked for unless the kernel would have read it otherwise.
std::string_view reached(const SocketVerdict& verdict, const std::string& asked) noexcept {
    return verdict.reached ? verdict.reached->view() : std::string_view(asked);
}

void send_reply(int notify, std::uint64_t id, int error) noexcept {
    seccomp_notif_resp resp{};
    resp.id = id;
    resp.error = error != 0 ? -error : 0;
    [[maybe_unused]] int rc = ::ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

}  // namespace

// A connect on the worker's blocking socket that is still in progress: the event loop watches the
// socket (writable = finished) and a timerfd armed with connect_timeout, and the notification is
// answered from whichever fires first, so other workers and calls are served meanwhile.
class Transparent::Connecting final : public EventHandler {
  public:
    Connecting(EventLoop& loop, Audit& audit, AuditRecord record, std::string address, int notify,
               std::uint64_t id, unique_fd sock, int flags) noexcept
        : loop_(loop),
          audit_(audit),
          record_(record),
          address_(std::move(address)),
          // Its own reference to the listener: the answer may come after the supervisor let go of it.
          notify_(::fcntl(notify, F_DUPFD_CLOEXEC, 0)),
          id_(id),
          sock_(std::move(sock)),
          flags_(flags) {
        timer_.owner = this;
    }
    ~Connecting() { unwatch(); }
    Connecting(const Connecting&) = delete;
    Connecting& operator=(const Connecting&) = delete;

    bool start(std::chrono::milliseconds timeout) noexcept {
        if (!notify_) return false;
        timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (!timer_fd_) return false;
        itimerspec when{};
        when.it_value.tv_sec = static_cast<time_t>(timeout.count() / 1000);
        when.it_value.tv_nsec = static_cast<long>(timeout.count() % 1000) * 1000000L;
        if (when.it_value.tv_sec == 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
        if (::timerfd_settime(timer_fd_.get(), 0, &when, nullptr) != 0) return false;
        if (!loop_.add(sock_.get(), EPOLLOUT, this)) return false;
        if (!loop_.add(timer_fd_.get(), EPOLLIN, &timer_)) {
            loop_.remove(sock_.get());
            return false;
        }
        watched_ = true;
        return true;
    }
    void on_event(std::uint32_t) noexcept override {
        const int error = SocketOps::connect_outcome(sock_.get());
        if (error != EINPROGRESS) finish(error);
    }
    [[nodiscard]] bool finished() const noexcept { return finished_; }

  private:
    struct Timer final : EventHandler {
        Connecting* owner = nullptr;
        void on_event(std::uint32_t) noexcept override { owner->finish(ETIMEDOUT); }
    };
    void unwatch() noexcept {
        if (!watched_) return;
        loop_.remove(sock_.get());
        loop_.remove(timer_fd_.get());
        watched_ = false;
    }
    void finish(int error) noexcept {
        if (finished_) return;
        unwatch();
        ::fcntl(sock_.get(), F_SETFL, flags_);
        record_.path = address_;
        record_.error = error;
        audit_.record(record_);
        send_reply(notify_.get(), id_, error);
        finished_ = true;
    }

    EventLoop& loop_;
    Audit& audit_;
    AuditRecord record_;
    std::string address_;
    unique_fd notify_;
    std::uint64_t id_;
    unique_fd sock_;
    int flags_;
    unique_fd timer_fd_;
    Timer timer_;
    bool watched_ = false;
    bool finished_ = false;
};

Transparent::Transparent(EventLoop& loop, const policy::Profile& profile, std::optional<Owner> owner,
                         Audit& audit, uid_t worker_uid)
    : loop_(loop),
      profile_(profile),
      files_(profile, owner),
      sockets_(profile, owner),
      audit_(audit),
      uid_(worker_uid) {}

Transparent::~Transparent() = default;

bool Transparent::wait_for_connect(int notify, const seccomp_notif& req, unique_fd& sock, int flags,
                                   std::string_view address, const SocketVerdict& verdict) noexcept {
    try {
        AuditRecord record{static_cast<pid_t>(req.pid), uid_, profile_.name(), "connect", {}, {}, 0};
        record.allowed = verdict.allowed;
        record.address_rule = verdict.rule;
        auto connect = std::make_unique<Connecting>(loop_, audit_, record, std::string(address), notify,
                                                    req.id, std::move(sock), flags);
        if (!connect->start(profile_.connect_timeout())) return false;
        connecting_.push_back(std::move(connect));
        return true;
    } catch (const std::bad_alloc&) {
        return false;
    }
}

bool Transparent::handles(int nr) noexcept {
    const Names& n = names();
    for (const int candidate :
         {n.open,    n.openat,    n.openat2,   n.creat,      n.stat,     n.lstat,      n.newfstatat,
          n.statx,   n.access,    n.faccessat, n.faccessat2, n.readlink, n.readlinkat, n.mkdir,
          n.mkdirat, n.unlink,    n.unlinkat,  n.rmdir,      n.rename,   n.renameat,   n.renameat2,
          n.symlink, n.symlinkat, n.connect,   n.bind,       n.listen,   n.socket,     n.socketpair,
          n.sendto,  n.sendmsg,   n.sendmmsg,  n.utimensat})
        if (candidate == nr && candidate >= 0) return true;
    return false;
}

void Transparent::end_turn() noexcept {
    std::erase_if(connecting_, [](const std::unique_ptr<Connecting>& c) { return c->finished(); });
}

void Transparent::answer(int notify, const seccomp_notif& req) noexcept {
    NotifyCall call(notify, req);
    // Everything from reading the caller's memory (which a file system may back) to performing the
    // call may wait: done with the loop released; what touches shared state takes it back (record()).
    loop_.blocking([&] { answer_call(call); });
}

void Transparent::record(const AuditRecord& audit) noexcept {
    loop_.locked([&] { audit_.record(audit); });
}

void Transparent::answer_call(NotifyCall& call) noexcept {
    const Names& n = names();
    const seccomp_notif& req = call.request();
    const int notify = call.notify();
    const int nr = req.data.nr;
    if (nr == n.socket || nr == n.socketpair || nr == n.sendto || nr == n.sendmsg || nr == n.sendmmsg ||
        nr == n.utimensat)
        return call.reply(EACCES);  // the forms the filter did not allow: see seccomp_filter.cpp

    AuditRecord audit{static_cast<pid_t>(req.pid), uid_, profile_.name(), "", {}, {}, 0};
    PathBuffer path, path2;
    OpResult result;
    int error = 0;
    auto record = [&] {
        audit.path = path.view();
        audit.path2 = path2.view();
        audit.allowed = result.verdict.allowed;
        audit.rule = result.verdict.rule;
        audit.error = result.verdict.error;
        this->record(audit);
    };
    // Arguments read: confirm the caller before deciding on them.
    auto confirmed = [&] { return call.valid(); };

    if (nr == n.open || nr == n.openat || nr == n.openat2 || nr == n.creat) {
        const bool at = nr == n.openat || nr == n.openat2;
        const int dirfd = at ? call.int_arg(0) : AT_FDCWD;
        std::uint64_t flags = 0, mode = 0;
        if (nr == n.creat) {
            flags = O_CREAT | O_WRONLY | O_TRUNC;
            mode = call.arg(1);
        } else if (nr == n.openat2) {
            open_how how{};
            const std::uint64_t size = call.arg(3);
            if (size < sizeof how) return call.reply(EINVAL);
            if (const int err = call.read_bytes(call.arg(2), &how, sizeof how); err != 0)
                return call.reply(err);
            // The broker's own resolution is stricter than any RESOLVE_ flag except the scoping ones,
            // which lexical normalisation cannot honour.
            if (how.resolve & ~static_cast<std::uint64_t>(RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV))
                return call.reply(EACCES);
            flags = how.flags;
            mode = how.mode;
        } else {
            flags = call.arg(at ? 2 : 1) & 0xffffffffU;  // an int for open(2) and openat(2)
            mode = call.arg(at ? 3 : 2);
        }
        error = path_arg(call, dirfd, call.arg(at ? 1 : 0), path);
        if (error != 0) return call.reply(error);
        if (!confirmed()) return;
        audit.op = "open";
        audit.flags = static_cast<std::uint32_t>(flags);
        if (flags >> 32) {
            result.verdict = {false, nullptr, EACCES};
        } else {
            mode_t create_mode = static_cast<mode_t>(mode) & 07777;
            if (flags & O_CREAT) create_mode &= ~call.umask();
            const NoUmask no_umask((flags & O_CREAT) != 0);
            result = files_.open(path.view(), static_cast<std::uint32_t>(flags), create_mode);
        }
        record();
        if (result.verdict.error != 0 || !result.fd)
            return call.reply(result.verdict.error ? result.verdict.error : EIO);
        return call.reply_fd(result.fd.get(), flags & O_CLOEXEC);
    }

    if (nr == n.stat || nr == n.lstat || nr == n.newfstatat || nr == n.statx) {
        const bool at = nr == n.newfstatat || nr == n.statx;
        const int dirfd = at ? call.int_arg(0) : AT_FDCWD;
        const int flags = nr == n.newfstatat ? call.int_arg(3)
                          : nr == n.statx    ? call.int_arg(2)
                          : nr == n.lstat    ? AT_SYMLINK_NOFOLLOW
                                             : 0;
        const std::uint64_t buf = nr == n.statx ? call.arg(4) : at ? call.arg(2) : call.arg(1);
        PathBuffer raw;
        // A null path with AT_EMPTY_PATH is accepted too (Linux 6.11).
        if (!(at && call.arg(1) == 0 && (flags & AT_EMPTY_PATH)))
            if (const int err = call.read_string(call.arg(at ? 1 : 0), raw); err != 0) return call.reply(err);
        const bool on_fd = raw.size() == 0 && (flags & AT_EMPTY_PATH);
        struct ::stat st {};
        struct ::statx stx {};
        const bool want_statx = nr == n.statx;
        const int stat_flags = flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        if (on_fd && dirfd != AT_FDCWD) {
            // A descriptor the worker holds: no policy question, as fstat(2) on it is allowed. Its
            // /proc link names the open file itself (even a socket or a deleted file).
            char proc[48];
            std::snprintf(proc, sizeof proc, "/proc/%d/fd/%d", call.tid(), dirfd);
            const int rc = want_statx
                               ? ::statx(AT_FDCWD, proc, stat_flags, static_cast<unsigned>(call.arg(3)), &stx)
                               : ::stat(proc, &st);
            error = rc == 0 ? 0 : (errno == ENOENT ? EBADF : errno);
            if (!confirmed()) return;
        } else {
            error = on_fd ? absolute(call, AT_FDCWD, ".", path) : absolute(call, dirfd, raw.view(), path);
            if (error != 0) return call.reply(error);
            if (!confirmed()) return;
            audit.op = "stat";
            if (want_statx)
                result = files_.statx(path.view(), flags & ~AT_EMPTY_PATH, static_cast<unsigned>(call.arg(3)),
                                      stx);
            else
                result = files_.stat(path.view(), st, !(flags & AT_SYMLINK_NOFOLLOW));
            record();
            error = result.verdict.error;
        }
        if (error == 0)
            error =
                want_statx ? call.write_bytes(buf, &stx, sizeof stx) : call.write_bytes(buf, &st, sizeof st);
        return call.reply(error);
    }

    if (nr == n.access || nr == n.faccessat || nr == n.faccessat2) {
        const bool at = nr != n.access;
        error = path_arg(call, at ? call.int_arg(0) : AT_FDCWD, call.arg(at ? 1 : 0), path);
        if (error != 0) return call.reply(error);
        if (!confirmed()) return;
        audit.op = "access";
        audit.flags = static_cast<std::uint32_t>(call.arg(at ? 2 : 1));
        result = files_.access(path.view(), audit.flags);
        record();
        return call.reply(result.verdict.error);
    }

    if (nr == n.readlink || nr == n.readlinkat) {
        const bool at = nr == n.readlinkat;
        const std::uint64_t buf = call.arg(at ? 2 : 1);
        const auto size = static_cast<std::int64_t>(call.arg(at ? 3 : 2));
        if (static_cast<int>(size) <= 0) return call.reply(EINVAL);
        error = path_arg(call, at ? call.int_arg(0) : AT_FDCWD, call.arg(at ? 1 : 0), path);
        if (error != 0) return call.reply(error);
        if (!confirmed()) return;
        audit.op = "readlink";
        char link[PATH_MAX];
        result = files_.readlink(
            path.view(), std::span(link, std::min<std::size_t>(
                                             sizeof link, static_cast<std::size_t>(static_cast<int>(size)))));
        record();
        if (result.verdict.error != 0) return call.reply(result.verdict.error);
        if (const int err = call.write_bytes(buf, link, static_cast<std::size_t>(result.value)); err != 0)
            return call.reply(err);
        return call.reply(0, result.value);
    }

    if (nr == n.mkdir || nr == n.mkdirat) {
        const bool at = nr == n.mkdirat;
        error = path_arg(call, at ? call.int_arg(0) : AT_FDCWD, call.arg(at ? 1 : 0), path);
        if (error != 0) return call.reply(error);
        if (!confirmed()) return;
        audit.op = "mkdir";
        const auto mode = static_cast<mode_t>(call.arg(at ? 2 : 1) & 07777 & ~call.umask());
        audit.flags = mode;
        const NoUmask no_umask;
        result = files_.mkdir(path.view(), mode);
        record();
        return call.reply(result.verdict.error);
    }

    if (nr == n.unlink || nr == n.unlinkat || nr == n.rmdir) {
        const bool at = nr == n.unlinkat;
        const int flags = at ? call.int_arg(2) : 0;
        if (flags & ~AT_REMOVEDIR) return call.reply(EINVAL);
        error = path_arg(call, at ? call.int_arg(0) : AT_FDCWD, call.arg(at ? 1 : 0), path);
        if (error != 0) return call.reply(error);
        if (!confirmed()) return;
        const bool dir = nr == n.rmdir || (flags & AT_REMOVEDIR);
        audit.op = dir ? "rmdir" : "unlink";
        result = dir ? files_.rmdir(path.view()) : files_.unlink(path.view());
        record();
        return call.reply(result.verdict.error);
    }

    if (nr == n.rename || nr == n.renameat || nr == n.renameat2) {
        const bool at = nr != n.rename;
        error = path_arg(call, at ? call.int_arg(0) : AT_FDCWD, call.arg(at ? 1 : 0), path);
        if (error == 0) error = path_arg(call, at ? call.int_arg(2) : AT_FDCWD, call.arg(at ? 3 : 1), path2);
        if (error != 0) return call.reply(error);
        if (!confirmed()) return;
        audit.op = "rename";
        const auto flags = nr == n.renameat2 ? static_cast<unsigned>(call.arg(4)) : 0U;
        result = files_.rename(path.view(), path2.view(), flags);
        record();
        return call.reply(result.verdict.error);
    }

    if (nr == n.symlink || nr == n.symlinkat) {
        const bool at = nr == n.symlinkat;
        // path2: the link's text, which stays as written; path: where the link is made.
        if (const int err = call.read_string(call.arg(0), path2); err != 0) return call.reply(err);
        error = path_arg(call, at ? call.int_arg(1) : AT_FDCWD, call.arg(at ? 2 : 1), path);
        if (error != 0) return call.reply(error);
        if (!confirmed()) return;
        audit.op = "symlink";
        result = files_.symlink(path2.view(), path.view());
        record();
        return call.reply(result.verdict.error);
    }

    if (nr == n.connect || nr == n.bind || nr == n.listen) {
        unique_fd sock;
        if (const int err = call.take_fd(call.int_arg(0), sock); err != 0)
            return call.reply(err == EBADF ? EBADF : err);
        int domain = 0, type = 0;
        socklen_t optlen = sizeof domain;
        if (::getsockopt(sock.get(), SOL_SOCKET, SO_DOMAIN, &domain, &optlen) != 0)
            return call.reply(ENOTSOCK);
        optlen = sizeof type;
        if (::getsockopt(sock.get(), SOL_SOCKET, SO_TYPE, &type, &optlen) != 0) return call.reply(ENOTSOCK);
        if (nr == n.listen) {
            // An unbound socket would be bound by listen(2) itself, to an address no rule granted.
            sockaddr_storage local{};
            socklen_t local_len = sizeof local;
            if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&local), &local_len) != 0)
                return call.reply(errno);
            const bool unbound =
                (domain == AF_UNIX && local_len <= sizeof(sa_family_t)) ||
                (domain == AF_INET && reinterpret_cast<const sockaddr_in*>(&local)->sin_port == 0) ||
                (domain == AF_INET6 && reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port == 0);
            if (unbound) return call.reply(EACCES);
            // Bound by the broker under a listen rule, or implicitly (a unix socket's autobind, a
            // connected TCP socket's port): the address it has must be one a rule grants.
            std::string text;
            try {
                if (address_text(call, domain, local, local_len, text) != 0) return call.reply(EACCES);
            } catch (const std::bad_alloc&) {
                return call.reply(ENOMEM);
            }
            const SocketVerdict verdict = sockets_.listen_socket(text, sock.get(), call.int_arg(1));
            AuditRecord listen_audit{
                static_cast<pid_t>(req.pid), uid_, profile_.name(), "listen", text, {}, 0};
            listen_audit.allowed = verdict.allowed;
            listen_audit.rule = verdict.deny;
            listen_audit.address_rule = verdict.rule;
            listen_audit.error = verdict.error;
            this->record(listen_audit);
            return call.reply(listen_audit.error);
        }
        if (type != SOCK_STREAM) return call.reply(EACCES);
        sockaddr_storage sa{};
        const auto len = static_cast<socklen_t>(call.arg(2));
        if (len > sizeof sa) return call.reply(EINVAL);
        if (const int err = call.read_bytes(call.arg(1), &sa, len); err != 0) return call.reply(err);
        std::string text;
        try {
            error = address_text(call, domain, sa, len, text);
        } catch (const std::bad_alloc&) {
            error = ENOMEM;
        }
        if (error != 0) return call.reply(error);
        if (!call.valid()) return;
        SocketVerdict verdict;
        if (nr == n.bind) {
            verdict = sockets_.bind_socket(text, sock.get());
        } else {
            // A blocking socket is connected non-blocking and waited for here (up to the profile's
            // connect_timeout): the file description is shared, so its flags are put back after.
            const int fl = ::fcntl(sock.get(), F_GETFL);
            const bool blocking = fl >= 0 && !(fl & O_NONBLOCK);
            if (blocking) ::fcntl(sock.get(), F_SETFL, fl | O_NONBLOCK);
            verdict = sockets_.connect_socket(text, sock.get());
            if (blocking && verdict.error == EINPROGRESS) {
                unique_fd kept(::fcntl(sock.get(), F_DUPFD_CLOEXEC, 0));
                if (kept && loop_.locked([&] {
                        return wait_for_connect(notify, req, kept, fl, reached(verdict, text), verdict);
                    }))
                    return;
                verdict.error = errno == EMFILE || errno == ENFILE ? EAGAIN : ENOMEM;
            }
            if (blocking) ::fcntl(sock.get(), F_SETFL, fl);
        }
        AuditRecord sock_audit{static_cast<pid_t>(req.pid),
                               uid_,
                               profile_.name(),
                               nr == n.bind ? "bind" : "connect",
                               reached(verdict, text),
                               {},
                               0};
        sock_audit.allowed = verdict.allowed;
        sock_audit.rule = verdict.deny;
        sock_audit.address_rule = verdict.rule;
        sock_audit.error = verdict.error;
        this->record(sock_audit);
        return call.reply(verdict.error);
    }

    call.reply(ENOSYS);
}

}  // namespace fdbroker::broker
