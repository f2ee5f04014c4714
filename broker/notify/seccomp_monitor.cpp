#include "broker/notify/seccomp_monitor.hpp"

#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "broker/core/log.hpp"
#include "broker/core/process_tree.hpp"
#include "broker/core/worker_identity.hpp"
#include "broker/notify/decode_notification.hpp"
#include "broker/notify/transparent.hpp"
#include "sandbox/seccomp_filter.hpp"

namespace fdbroker::broker {

namespace {

#ifdef SECCOMP_IOCTL_NOTIF_SET_FLAGS
constexpr unsigned long kNotifSetFlags = SECCOMP_IOCTL_NOTIF_SET_FLAGS;
constexpr std::uint64_t kSyncWakeUp = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
#else
constexpr unsigned long kNotifSetFlags = SECCOMP_IOW(4, __u64);
constexpr std::uint64_t kSyncWakeUp = 1;
#endif

// The thread group a thread id belongs to, from /proc/TID/status.
pid_t thread_group_of(pid_t tid) noexcept {
    char buf[2048];
    const std::string_view status = read_proc(tid, "status", buf);
    const std::size_t at = status.find("\nTgid:\t");
    if (at == std::string_view::npos) return -1;
    pid_t tgid = -1;
    std::from_chars(status.data() + at + 7, status.data() + status.size(), tgid);
    return tgid;
}

}  // namespace

SeccompMonitor::SeccompMonitor(EventLoop& loop, unique_fd notify, const policy::Profile& profile,
                               pid_t worker, Transparency transparency)
    : loop_(loop),
      notify_(std::move(notify)),
      profile_(profile),
      worker_(worker),
      transparent_(transparency.transparent),
      tenants_(transparency.tenants),
      uid_(transparency.uid) {
    if (tenants_) limits_ = tenants_->limits(profile.quota());
}

SeccompMonitor::~SeccompMonitor() {
    if (paused_ && tenants_) tenants_->forget(*this);
    if (notify_) loop_.remove(notify_.get());
    if (req_) seccomp_notify_free(req_, resp_);
}

bool SeccompMonitor::start() noexcept {
    if (seccomp_notify_alloc(&req_, &resp_) != 0) return false;
    // The worker waits for every brokered call: ask the kernel to wake it on the CPU that answered,
    // which it can do cheaply (Linux 6.6). Older kernels refuse the flag, which changes nothing else.
    if (transparent_) [[maybe_unused]]
        int rc = ::ioctl(notify_.get(), kNotifSetFlags, kSyncWakeUp);
    return loop_.add(notify_.get(), EPOLLIN, this);
}

void SeccompMonitor::stop() noexcept {
    if (!notify_) return;
    loop_.remove(notify_.get());
    // A call still being answered on another thread replies through this descriptor: it stays open
    // until no such call can be left (EventLoop::retire), so that its number is not reused meanwhile.
    loop_.retire(std::make_unique<unique_fd>(std::move(notify_)));
}

void SeccompMonitor::on_event(std::uint32_t events) noexcept {
    if (!notify_) return;
    if (events & EPOLLIN) return receive();
    if (!(events & (EPOLLHUP | EPOLLERR))) return;
    // Every process under this filter has exited, or the listener is unusable.
    stop();
}

void SeccompMonitor::receive() noexcept {
    // In transparent mode each call is a request of the worker's user: over its quota, the listener is
    // not read until it is back under it (Waiter), and the calls wait in the kernel meanwhile.
    const bool counted = transparent_ && tenants_;
    if (counted && !tenants_->admit(uid_, limits_, profile_.name().c_str())) {
        paused_ = true;
        loop_.modify(notify_.get(), 0, this);
        tenants_->wait(*this);
        return;
    }
    // The kernel refuses (EINVAL) a receive buffer that is not zeroed.
    std::memset(req_, 0, sizeof *req_);
    // The ioctl itself rather than seccomp_notify_receive, which reports every failure as ECANCELED: a
    // caller killed between the wake-up and the read (ENOENT) must not be mistaken for a broken listener.
    const int rc = ::ioctl(notify_.get(), SECCOMP_IOCTL_NOTIF_RECV, req_);
    const int err = errno;
    if (rc == 0) answer(*req_);
    if (counted) tenants_->give_back(uid_, Resource::requests);
    if (rc == 0 || err == ENOENT || err == EINTR) return;
    log("reading seccomp notifications failed (%s): closing the listener, refused calls now fail with ENOSYS",
        std::strerror(err));
    stop();
}

bool SeccompMonitor::resume() noexcept {
    paused_ = false;
    if (notify_) loop_.modify(notify_.get(), EPOLLIN, this);
    return true;
}

void SeccompMonitor::answer(seccomp_notif& req) noexcept {
    const int nr = req.data.nr;
    // First: an i386 or x32 call's number names another call than the native one (i386's 5 is open,
    // x86-64's is fstat), so nothing below may read it as native.
    if (sandbox::is_foreign_abi(req.data.arch, nr)) return answer_foreign(req);
    if (transparent_ && is_brokered(nr)) return transparent_->answer(notify_.get(), req);
    thread_identity::as_broker();  // to signal a worker of another user, for one
    char* name = seccomp_syscall_resolve_num_arch(req.data.arch, nr);
    const char* call = name ? name : "an unknown system call";
    resp_->id = req.id;
    resp_->flags = 0;
    resp_->val = 0;
    resp_->error = 0;

    if (sandbox::is_quiet_refusal(nr)) {
        resp_->error = -EACCES;  // opening for writing: libraries expect and handle EACCES
    } else if (nr == seccomp_syscall_resolve_name("execve")) {
        log("worker pid %u (profile '%s'): exec refused: the profile has exec = false", req.pid,
            profile_.name().c_str());
        resp_->error = -EACCES;
    } else if (profile_.confinement().on_violation == policy::OnViolation::errno_eperm) {
        log("worker pid %u (profile '%s') called %s, which its profile does not allow: EPERM", req.pid,
            profile_.name().c_str(), call);
        resp_->error = -EPERM;
    } else {
        log("worker pid %u (profile '%s') called %s, which its profile does not allow: killing it", req.pid,
            profile_.name().c_str(), call);
        kill_process_of(static_cast<pid_t>(req.pid), req.id);
        resp_->error = -EPERM;  // moot once the process is dead, but never leave it hanging
    }
    std::free(name);
    [[maybe_unused]] int rc = seccomp_notify_respond(notify_.get(), resp_);
}

void SeccompMonitor::answer_foreign(const seccomp_notif& req) noexcept {
    thread_identity::as_broker();
    log("worker pid %u (profile '%s') made system call %d through a foreign ABI (%s), which no profile "
        "allows: killing it (status 159, SIGSYS)",
        req.pid, profile_.name().c_str(), req.data.nr & ~0x40000000,
        req.data.arch == SCMP_ARCH_X86      ? "i386, int 0x80"
        : req.data.arch == SCMP_ARCH_X86_64 ? "x32"
                                            : "another architecture");
    kill_process_of(static_cast<pid_t>(req.pid), req.id);
    resp_->id = req.id;
    resp_->flags = 0;
    resp_->val = 0;
    resp_->error = -EPERM;  // moot once the process is dead, but never leave it hanging
    [[maybe_unused]] int rc = seccomp_notify_respond(notify_.get(), resp_);
}

void SeccompMonitor::kill_process_of(pid_t tid, std::uint64_t id) noexcept {
    const pid_t tgid = thread_group_of(tid);
    if (tgid <= 0) return;
    unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, tgid, 0)));
    // The notification still pending proves the thread (and so tgid) has not been recycled since.
    if (!pidfd || seccomp_notify_id_valid(notify_.get(), id) != 0) return;
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0 && tgid == worker_)
        killed_worker_ = true;
}

}  // namespace fdbroker::broker
