#include "broker/core/process_tree.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

std::string_view read_proc(pid_t pid, const char* file, std::span<char> buf) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n == 0) errno = ESRCH;
    return n > 0 ? std::string_view(buf.data(), static_cast<std::size_t>(n)) : std::string_view();
}

pid_t parent_pid(pid_t pid) noexcept {
    char buf[512];
    const std::string_view stat = read_proc(pid, "stat", buf);
    if (stat.empty()) return -1;  // errno from the open or read
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so look after the last ')'.
    const std::size_t close = stat.rfind(')');
    if (close == std::string_view::npos || close + 4 >= stat.size()) return -1;
    const std::string_view rest = stat.substr(close + 4);  // skip ") S "
    pid_t ppid = -1;
    std::from_chars(rest.data(), rest.data() + rest.size(), ppid);
    return ppid;
}

ProcessTree::Membership ProcessTree::membership(pid_t pid) const noexcept {
    // Bounded: a chain longer than this is not a tree the broker made.
    for (int depth = 0; depth < 1024 && pid > 1; ++depth) {
        if (pid == worker_) return Membership::member;
        // Adopted orphans hang off the broker (a subreaper); the broker itself is not a worker.
        if (pid == broker_) return depth > 0 ? Membership::member : Membership::outsider;
        pid = parent_pid(pid);
        if (pid < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOMEM)) return Membership::unknown;
    }
    return Membership::outsider;
}

bool pidfd_alive(int pidfd) noexcept {
    // Signal 0 checks without sending. EPERM still means the process is there: a broker that kept no
    // CAP_KILL may not signal another user's process; only ESRCH says it has gone.
    return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0 || errno == EPERM;
}

int open_thread_pidfd(pid_t tid) noexcept {
#ifdef PIDFD_THREAD
    constexpr unsigned thread = PIDFD_THREAD;
#else
    constexpr unsigned thread = O_EXCL;  // its value in <linux/pidfd.h>
#endif
    return static_cast<int>(::syscall(SYS_pidfd_open, tid, thread));
}

}  // namespace fdbroker::broker
