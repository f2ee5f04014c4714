#include "broker/notify/seccomp_monitor.hpp"

#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/audit.hpp"
#include "broker/core/log.hpp"
#include "broker/core/process_tree.hpp"
#include "broker/core/worker_identity.hpp"
#include "broker/notify/decode_notification.hpp"
#include "broker/notify/transparent.hpp"
#include "sandbox/kernel_features.hpp"
#include "sandbox/seccomp_filter.hpp"
#include "sandbox/syscall_preset.hpp"

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

// A number field of /proc/PID/status ("\nName:\t"), or -1. With `last`, the last number on its line
// (NSpid: the id in the innermost namespace).
pid_t status_field(std::string_view status, std::string_view key, bool last = false) noexcept {
    const std::size_t at = status.find(key);
    if (at == std::string_view::npos) return -1;
    std::string_view line = status.substr(at + key.size());
    line = line.substr(0, line.find('\n'));
    if (last) line.remove_prefix(std::min(line.size(), line.find_last_of('\t') + 1));
    pid_t value = -1;
    std::from_chars(line.data(), line.data() + line.size(), value);
    return value;
}

// Whether `tgid` is the program a pid namespace's init (`init`, the worker fdbroker started) runs:
// its child that is pid 2 in the namespace (sandbox/pid_init.hpp). Orphans the init adopted are its
// children too, but never pid 2 while the program lives.
bool is_program_under_init(pid_t tgid, pid_t init) noexcept {
    char buf[2048];
    const std::string_view status = read_proc(tgid, "status", buf);
    return status_field(status, "\nPPid:\t") == init && status_field(status, "\nNSpid:\t", true) == 2;
}

// The real uid of a process, from /proc/PID/status (-1 if it is gone).
uid_t uid_of(pid_t pid) noexcept {
    char buf[2048];
    const std::string_view status = read_proc(pid, "status", buf);
    const std::size_t at = status.find("\nUid:\t");
    uid_t uid = static_cast<uid_t>(-1);
    if (at != std::string_view::npos)
        std::from_chars(status.data() + at + 6, status.data() + status.size(), uid);
    return uid;
}

bool names(const std::vector<std::string>& list, std::string_view name) noexcept {
    for (const std::string& n : list)
        if (n == name) return true;
    return false;
}

// Kills are logged each time (each ends a process), but a worker that forks in a loop could flood the
// log with them.
LogLimit kill_lines("lines about processes killed for a system call");

}  // namespace

SeccompMonitor::SeccompMonitor(EventLoop& loop, unique_fd notify, const policy::Profile& profile,
                               pid_t worker, Audit& audit, Transparency transparency, Complain complain)
    : loop_(loop),
      notify_(std::move(notify)),
      profile_(profile),
      worker_(worker),
      audit_(audit),
      transparent_(transparency.transparent),
      tenants_(transparency.tenants),
      uid_(transparency.uid),
      recorder_(complain.recorder) {
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
    if (transparent_ && !sandbox::simulated_absent(sandbox::Feature::sync_wake_up)) [[maybe_unused]]
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
    // The forms of socket and send calls transparent mode refuses outright are refusals of the preset,
    // answered (and audited) below like library mode's.
    if (transparent_ && is_brokered(nr) && !is_refused_form(nr))
        return transparent_->answer(notify_.get(), req);
    thread_identity::as_broker();  // to signal a worker of another user, for one
    char* name = seccomp_syscall_resolve_num_arch(req.data.arch, nr);
    const std::string_view call = name ? std::string_view(name) : std::string_view("an unknown system call");
    int error = 0;
    const bool exec = nr == seccomp_syscall_resolve_name("execve");
    if (recorder_ != nullptr && let_through(req, call, exec ? EACCES : 0)) {
        std::free(name);
        return;
    }
    if (exec) {
        // Once per worker: a shell's search of $PATH is refused once per directory, however slowly.
        if (first_time(nr, logged_refusals_))
            log("worker pid %u (profile '%s'): exec refused: the profile has exec = false", req.pid,
                profile_.name().c_str());
        record(req, call, EACCES, false);
        error = EACCES;
    } else if (nr == SYS_ioctl) {
        error = refuse_terminal_ioctl(req);
        if (error == 0) error = judge(req, call);
    } else {
        error = judge(req, call);
    }
    std::free(name);
    resp_->id = req.id;
    resp_->flags = 0;
    resp_->val = 0;
    resp_->error = -error;  // after a kill: moot once the process is dead, but never leave it hanging
    [[maybe_unused]] int rc = seccomp_notify_respond(notify_.get(), resp_);
}

// What the preset (and the profile's `syscalls.deny`, which makes any call a violation) says of a call
// that reached the broker; the errno to answer with.
int SeccompMonitor::judge(const seccomp_notif& req, std::string_view call) noexcept {
    const bool denied = names(profile_.confinement().syscalls.deny, call);
    const sandbox::Verdict verdict = denied ? sandbox::Verdict::fatal() : sandbox::classify(call);
    switch (verdict.treatment()) {
        case sandbox::Treatment::quiet:  // opening for writing, sockets: libraries expect EACCES
            record(req, call, EACCES, false);
            return EACCES;
        case sandbox::Treatment::fatal:
            return violation(req, call, denied);
        case sandbox::Treatment::allowed:  // but not by the filter: this libseccomp does not know the name
        case sandbox::Treatment::refused:
            break;
    }
    const int error = verdict.treatment() == sandbox::Treatment::refused ? verdict.error() : ENOSYS;
    if (first_time(req.data.nr, logged_refusals_))
        log("worker pid %u (profile '%s') called %.*s, which its profile does not allow: %s (logged once). "
            "To allow it: syscalls.allow = [\"%.*s\"] in profile '%s'",
            req.pid, profile_.name().c_str(), static_cast<int>(call.size()), call.data(),
            ::strerrorname_np(error), static_cast<int>(call.size()), call.data(), profile_.name().c_str());
    record(req, call, error, false);
    return error;
}

// The terminal ioctls the filter leaves to the broker (sandbox::refused_terminal_ioctls): EPERM, as
// an unprivileged process gets for most of them natively, logged once each and audited each time. The
// kernel reads the command as 32 bits, so the bits above do not hide one. 0 for any other command.
int SeccompMonitor::refuse_terminal_ioctl(const seccomp_notif& req) noexcept {
    const std::uint64_t cmd = req.data.args[1] & 0xffffffffULL;
    const auto refused = sandbox::refused_terminal_ioctls(profile_.confinement().terminal);
    for (std::size_t i = 0; i < refused.size(); ++i) {
        if (refused[i].cmd != cmd) continue;
        if (i < logged_terminal_ioctls_.size() && !logged_terminal_ioctls_.test(i)) {
            logged_terminal_ioctls_.set(i);
            log("worker pid %u (profile '%s'): ioctl %s refused: EPERM (logged once). A worker may not "
                "push input into, take or redirect a terminal%s",
                req.pid, profile_.name().c_str(), refused[i].name,
                std::string_view(refused[i].name) == "TIOCSPGRP"
                    ? "; terminal = \"job-control\" lets it take the foreground"
                    : "");
        }
        char call[32];
        std::snprintf(call, sizeof call, "ioctl %s", refused[i].name);
        record(req, call, EPERM, false);
        return EPERM;
    }
    return 0;
}

// A fatal call, or one the profile's `syscalls.deny` names: the process is killed, or under
// on_violation = "errno" the call fails with EPERM.
int SeccompMonitor::violation(const seccomp_notif& req, std::string_view call, bool denied) noexcept {
    const int len = static_cast<int>(call.size());
    const char* profile = profile_.name().c_str();
    char allow[128];  // how the profile would allow it (system call names are short)
    if (denied)
        std::snprintf(allow, sizeof allow, "take \"%.*s\" out of syscalls.deny", len, call.data());
    else
        std::snprintf(allow, sizeof allow, "syscalls.allow = [\"%.*s\"]", len, call.data());
    if (profile_.confinement().on_violation == policy::OnViolation::errno_eperm) {
        if (first_time(req.data.nr, logged_violations_))
            log("worker pid %u (profile '%s') called %.*s, which its profile does not allow: EPERM "
                "(on_violation = \"errno\"; logged once). To allow it: %s in profile '%s'",
                req.pid, profile, len, call.data(), allow, profile);
        record(req, call, EPERM, false);
        return EPERM;
    }
    const Killed killed = kill_process_of(static_cast<pid_t>(req.pid), req.id);
    if (killed != Killed::none)
        log_limited(kill_lines,
                    "worker pid %u (profile '%s') called %.*s, which its profile does not allow: "
                    "killed%s. To allow it: %s in profile '%s', or on_violation = \"errno\"",
                    req.pid, profile, len, call.data(), killed == Killed::worker ? " (status 159)" : "",
                    allow, profile);
    record(req, call, EPERM, killed != Killed::none);
    return EPERM;
}

bool SeccompMonitor::first_time(int nr, std::bitset<kCallSlots>& logged) noexcept {
    if (nr < 0 || static_cast<std::size_t>(nr) >= kCallSlots) return true;
    const bool first = !logged.test(static_cast<std::size_t>(nr));
    logged.set(static_cast<std::size_t>(nr));
    return first;
}

void SeccompMonitor::record(const seccomp_notif& req, std::string_view call, int error,
                            bool killed) noexcept {
    AuditRecord r;
    r.pid = static_cast<pid_t>(req.pid);
    r.uid = uid_of(static_cast<pid_t>(req.pid));
    r.profile = profile_.name();
    r.op = "syscall";
    r.syscall = call;
    r.error = killed ? 0 : error;
    r.killed = killed;
    try {
        audit_.record(r);
    } catch (const std::bad_alloc&) {
        // the line is lost; the decision stands
    }
}

bool SeccompMonitor::let_through(const seccomp_notif& req, std::string_view call, int error) noexcept {
    if (error == 0) {
        if (names(profile_.confinement().syscalls.deny, call)) return false;
        const sandbox::Verdict verdict = sandbox::classify(call);
        if (verdict.treatment() == sandbox::Treatment::refused)
            error = verdict.error();
        else if (verdict.treatment() == sandbox::Treatment::allowed)
            error = ENOSYS;
        else
            return false;  // fatal stays fatal; quiet refusals are library mode's, asked of the broker
    }
    AuditRecord r;
    r.pid = static_cast<pid_t>(req.pid);
    r.uid = uid_of(static_cast<pid_t>(req.pid));
    r.profile = profile_.name();
    r.op = "syscall";
    r.syscall = call;
    r.error = error;
    recorder_->refused(r, 0);
    r.allowed = true;
    r.error = 0;
    r.complained = true;
    try {
        audit_.record(r);
    } catch (const std::bad_alloc&) {
    }
    resp_->id = req.id;
    resp_->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    resp_->val = 0;
    resp_->error = 0;
    [[maybe_unused]] int rc = seccomp_notify_respond(notify_.get(), resp_);
    return true;
}

void SeccompMonitor::answer_foreign(const seccomp_notif& req) noexcept {
    thread_identity::as_broker();
    log("worker pid %u (profile '%s') made system call %d through a foreign ABI (%s), which no profile "
        "allows: killing it (status 159, SIGSYS)",
        req.pid, profile_.name().c_str(), req.data.nr & ~0x40000000,
        req.data.arch == SCMP_ARCH_X86      ? "i386, int 0x80"
        : req.data.arch == SCMP_ARCH_X86_64 ? "x32"
                                            : "another architecture");
    const Killed killed = kill_process_of(static_cast<pid_t>(req.pid), req.id);
    record(req, "foreign ABI", EPERM, killed != Killed::none);
    resp_->id = req.id;
    resp_->flags = 0;
    resp_->val = 0;
    resp_->error = -EPERM;  // moot once the process is dead, but never leave it hanging
    [[maybe_unused]] int rc = seccomp_notify_respond(notify_.get(), resp_);
}

SeccompMonitor::Killed SeccompMonitor::kill_process_of(pid_t tid, std::uint64_t id) noexcept {
    const pid_t tgid = thread_group_of(tid);
    if (tgid <= 0) return Killed::none;
    unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, tgid, 0)));
    // The notification still pending proves the thread (and so tgid) has not been recycled since.
    if (!pidfd || seccomp_notify_id_valid(notify_.get(), id) != 0) return Killed::none;
    // Asked before the kill: once dead, the init may reap it at once.
    const bool program = tgid == worker_ || ((profile_.confinement().namespaces & policy::ns_pid) != 0 &&
                                             is_program_under_init(tgid, worker_));
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0) return Killed::none;
    if (!program) return Killed::other;
    killed_worker_ = true;
    return Killed::worker;
}

}  // namespace fdbroker::broker
