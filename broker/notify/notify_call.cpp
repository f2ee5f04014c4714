#include "broker/notify/notify_call.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>

#include "broker/core/process_tree.hpp"

namespace fdbroker::broker {

NotifyCall::NotifyCall(int notify, const seccomp_notif& req, AddressSpaces* kept) noexcept
    : notify_(notify), req_(req), tid_(static_cast<pid_t>(req.pid)), memory_(tid_, kept) {}

SystemCall NotifyCall::system_call() const noexcept {
    SystemCall call;
    call.nr = req_.data.nr;
    for (std::size_t i = 0; i < call.args.size(); ++i)
        call.args[i] = req_.data.args[i];
    return call;
}

bool NotifyCall::valid() const noexcept {
    std::uint64_t id = req_.id;
    return ::ioctl(notify_, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

int NotifyCall::read_string(std::uint64_t addr, op::PathBuffer& out) noexcept {
    return memory_.read_string(addr, out);
}

int NotifyCall::read_bytes(std::uint64_t addr, void* buf, std::size_t size) noexcept {
    return memory_.read_bytes(addr, buf, size);
}

int NotifyCall::directory(int dirfd, op::PathBuffer& out) noexcept {
    // As /proc/TID/{cwd,fd/N} name it; the caller confirms with valid() afterwards that TID was still
    // the caller throughout.
    char proc[48];
    if (dirfd == AT_FDCWD)
        std::snprintf(proc, sizeof proc, "/proc/%d/cwd", tid_);
    else if (dirfd < 0)
        return EBADF;
    else
        std::snprintf(proc, sizeof proc, "/proc/%d/fd/%d", tid_, dirfd);
    const ssize_t n = ::readlink(proc, out.data(), op::PathBuffer::kCapacity + 1);
    if (n < 0 && errno == ENAMETOOLONG) return ENAMETOOLONG;
    if (n < 0) return dirfd == AT_FDCWD ? ENOENT : EBADF;
    // A descriptor that is not a directory in the tree (a socket, a pipe, an anonymous inode).
    if (n == 0 || out.data()[0] != '/' || static_cast<std::size_t>(n) > op::PathBuffer::kCapacity) {
        out.truncate(0);
        return ENOTDIR;
    }
    out.truncate(static_cast<std::size_t>(n));
    return 0;
}

int NotifyCall::descriptor_link(int fd, op::PathBuffer& out) noexcept {
    char proc[48];
    std::snprintf(proc, sizeof proc, "/proc/%d/fd/%d", tid_, fd);
    return out.assign(proc) ? 0 : ENAMETOOLONG;
}

mode_t NotifyCall::umask() noexcept {
    char buf[2048];
    const std::string_view status = read_proc(tid_, "status", buf);
    const std::size_t at = status.find("\nUmask:\t");
    unsigned mask = 022;
    if (at != std::string_view::npos)
        std::from_chars(status.data() + at + 8, status.data() + status.size(), mask, 8);
    return static_cast<mode_t>(mask & 0777);
}

int NotifyCall::take_fd(int fd, unique_fd& out) noexcept {
    unique_fd pidfd(open_thread_pidfd(tid_));
    if (!pidfd) pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, tid_, 0)));
    if (!pidfd) return ESRCH;
    out.reset(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
    if (!out) return errno;
    return valid() ? 0 : ESRCH;
}

int NotifyCall::write_bytes(std::uint64_t addr, const void* buf, std::size_t size) noexcept {
    return memory_.write_bytes(addr, buf, size, [this] { return valid(); });
}

void NotifyCall::reply(int error, std::int64_t value) noexcept {
    send_notify_reply(notify_, req_.id, error, value);
}

void NotifyCall::reply_fd(int fd, bool cloexec) noexcept {
    seccomp_notif_addfd addfd{};
    addfd.id = req_.id;
    addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
    addfd.srcfd = static_cast<std::uint32_t>(fd);
    addfd.newfd_flags = cloexec ? O_CLOEXEC : 0;
    if (::ioctl(notify_, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0 && errno != ENOENT) reply(errno);
}

void send_notify_reply(int notify, std::uint64_t id, int error, std::int64_t value) noexcept {
    seccomp_notif_resp resp{};
    resp.id = id;
    resp.error = error != 0 ? -error : 0;
    resp.val = error != 0 ? 0 : value;
    [[maybe_unused]] int rc = ::ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

}  // namespace fdbroker::broker
