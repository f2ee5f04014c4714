#include "sandbox/kernel_features.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "fdbroker/unique_fd.hpp"
#include "sandbox/landlock.hpp"
#include "sandbox/seccomp_filter.hpp"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; older headers lack it
#endif

namespace fdbroker::sandbox {

namespace {

Probe found(bool present, int error = 0, std::string detail = {}) {
    Probe p;
    p.present = present;
    p.error = present ? 0 : error;
    p.detail = std::move(detail);
    return p;
}

// Runs `body` in a child (which may change itself: a filter, a namespace) and returns the byte it
// reports; -1 if it reported nothing.
template <class Body>
int in_child(Body body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
    const unique_fd read_end(fds[0]);
    unique_fd write_end(fds[1]);
    const pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        const unsigned char result = body();
        _exit(::write(write_end.get(), &result, 1) == 1 ? 0 : 1);
    }
    unsigned char result = 0;
    write_end.reset();
    const bool got = ::read(read_end.get(), &result, 1) == 1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return got ? result : -1;
}

// Bits of what the seccomp child found.
enum : unsigned char { kNotify = 1, kWaitKillable = 2, kSyncWakeUp = 4, kAddfdSend = 8 };

// In a child: loads a filter that notifies on one call nobody makes, the way the broker loads a
// worker's (load_notify_filter), then asks the listener for the flags the broker uses.
unsigned char seccomp_child() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 0;
    NotifyProbeResult r = probe_notify_filter();
    unsigned char bits = 0;
    if (!r.listener) return 0;
    bits |= kNotify;
    if (r.wait_killable) bits |= kWaitKillable;
#ifdef SECCOMP_IOCTL_NOTIF_SET_FLAGS
    if (::ioctl(r.listener.get(), SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == 0)
        bits |= kSyncWakeUp;
#else
    if (::ioctl(r.listener.get(), SECCOMP_IOW(4, __u64), 1ULL) == 0) bits |= kSyncWakeUp;
#endif
    // The kernel checks the flags before it looks for the notification: with no notification of
    // this id, ENOENT means it knows SECCOMP_ADDFD_FLAG_SEND, EINVAL that it does not.
    seccomp_notif_addfd addfd{};
    addfd.id = 0x5eed;
    addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
    addfd.srcfd = static_cast<std::uint32_t>(r.listener.get());
    if (::ioctl(r.listener.get(), SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0 && errno == ENOENT)
        bits |= kAddfdSend;
    return bits;
}

void probe_seccomp(KernelFeatures& k) {
    const int bits = in_child(seccomp_child);
    auto& p = k.probes;
    const auto set = [&p, bits](Feature f, unsigned char bit) {
        p[static_cast<std::size_t>(f)] = found(bits > 0 && (bits & bit) != 0, EINVAL);
    };
    set(Feature::seccomp_notify, kNotify);
    set(Feature::wait_killable_recv, kWaitKillable);
    set(Feature::sync_wake_up, kSyncWakeUp);
    set(Feature::addfd_send, kAddfdSend);
}

Probe probe_landlock() {
    const int abi = landlock_abi();
    Probe p = found(abi > 0, EOPNOTSUPP, abi > 0 ? "ABI " + std::to_string(abi) : std::string());
    p.version = abi;
    return p;
}

Probe probe_pidfd_getfd() {
    const unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
    if (!pidfd) return found(false, errno);
    const unique_fd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), pidfd.get(), 0)));
    return found(static_cast<bool>(copy), errno);
}

Probe probe_openat2() {
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
    // Beneath the working directory, as the broker resolves beneath a rule's anchor.
    const unique_fd fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how)));
    return found(static_cast<bool>(fd), errno);
}

Probe probe_peerpidfd() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return found(false, errno);
    const unique_fd a(pair[0]), b(pair[1]);
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    const bool ok = ::getsockopt(a.get(), SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0;
    const int error = errno;
    const unique_fd held(ok ? pidfd : -1);
    return found(ok, error);
}

// The broker's own cgroup ("/..."), from /proc/self/cgroup's "0::" line.
std::string own_cgroup() {
    std::ifstream cgroup("/proc/self/cgroup");
    for (std::string line; std::getline(cgroup, line);)
        if (line.starts_with("0::")) return line.substr(3);
    return {};
}

Probe probe_cgroup2() {
    const std::string mount = cgroup2_mount();
    if (mount.empty()) return found(false, ENOENT);
    const std::string own = mount + own_cgroup();
    const bool writable = ::access(own.c_str(), W_OK) == 0;
    return found(true, 0,
                 "mounted at " + mount +
                     (writable ? "; this process may make cgroups in " + own
                               : "; this process may not make cgroups in " + own));
}

Probe probe_user_namespaces() {
    const int r = in_child([] { return static_cast<unsigned char>(::unshare(CLONE_NEWUSER) == 0 ? 1 : 2); });
    return found(r == 1, EPERM);
}

}  // namespace

std::string cgroup2_mount() {
    std::ifstream mountinfo("/proc/self/mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
        const std::size_t dash = line.find(" - ");
        if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
        std::istringstream fields(line.substr(0, dash));
        std::string id, parent, device, root, mountpoint;
        if (fields >> id >> parent >> device >> root >> mountpoint) return mountpoint;
    }
    return {};
}

KernelFeatures probe_kernel() {
    KernelFeatures k;
    auto& p = k.probes;
    p[static_cast<std::size_t>(Feature::landlock)] = probe_landlock();
    probe_seccomp(k);
    p[static_cast<std::size_t>(Feature::pidfd_getfd)] = probe_pidfd_getfd();
    p[static_cast<std::size_t>(Feature::openat2)] = probe_openat2();
    p[static_cast<std::size_t>(Feature::so_peerpidfd)] = probe_peerpidfd();
    p[static_cast<std::size_t>(Feature::cgroup2)] = probe_cgroup2();
    p[static_cast<std::size_t>(Feature::user_namespaces)] = probe_user_namespaces();
    for (std::size_t i = 0; i < kFeatureCount; ++i) {
        if (!simulated_absent(static_cast<Feature>(i))) continue;
        p[i] = Probe{};
        p[i].simulated = true;
        p[i].detail = "simulated absent: FDBROKER_SIMULATE_ABSENT";
    }
    return k;
}

}  // namespace fdbroker::sandbox
