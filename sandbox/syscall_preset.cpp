#include "sandbox/syscall_preset.hpp"

#include <cstring>

namespace fdbroker::sandbox {

namespace {

// What ordinary programs need on descriptors they already hold, memory, threads, time and signals,
// plus metadata reads by path. Everything here is bounded by the kernel's own rules for the worker's
// user (who holds no capability), so allowing it grants nothing the user could not do natively.
constexpr const char* kAllowed[] = {
    // memory
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    // memory protection keys: the process's own pages, as mprotect (V8 guards its JIT code with them)
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "msync",
    "mincore",
    "mlock",
    "munlock",
    "membarrier",
    // threads and processes
    "fork",
    "vfork",
    "futex",
    "futex_waitv",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "gettid",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "arch_prctl",
    "prctl",
    "getcpu",
    // time
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getitimer",
    "setitimer",
    "alarm",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    // signals
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "kill",
    "tgkill",
    "tkill",
    "pause",
    "restart_syscall",
    "signalfd",
    "signalfd4",
    // descriptors already held
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "lseek",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "pipe",
    "pipe2",
    "splice",
    "tee",
    "sendfile",
    "copy_file_range",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "flock",
    "fadvise64",
    "getdents",
    "getdents64",
    "fstat",
    "fstatfs",
    // metadata of held descriptors: the kernel's own rules for the worker's user decide
    "fchmod",
    "fchown",
    "fgetxattr",
    "flistxattr",
    "fsetxattr",
    "fremovexattr",
    // sockets already held (the broker made them; connecting or binding anew is refused below)
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "sendto",
    "recvfrom",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    "accept",
    "accept4",
    "listen",
    // identity and environment (reading only)
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "getpgrp",
    "getpgid",
    "getsid",
    "setsid",
    "setpgid",
    "getrlimit",
    "prlimit64",
    "getrusage",
    "getpriority",
    "uname",
    "sysinfo",
    "umask",
    "getcwd",
    "chdir",
    "fchdir",
    "capget",
    "getrandom",
    // metadata by path (what the worker's own uid may see anyway)
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    // Found by the corpus (tests/corpus/collect.sh) or close kin of calls above, and harmless:
    "times",   // ImageMagick's convert: the process's own CPU times
    "setuid",  // make: without CAP_SETUID the kernel only lets a process switch among
    "setgid",  //   the ids it already has, which are all the worker's
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",    // EPERM from the kernel without CAP_SETGID
    "setrlimit",    // limits can be lowered, never raised past the hard limit the profile set
    "setpriority",  // an unprivileged process may only lower its priority
    "sched_setparam",
    "sched_setscheduler",
    "sched_setattr",
    "sched_getattr",
    "sched_rr_get_interval",
    "ioprio_get",
    "ioprio_set",
    "mlock2",  // bounded by RLIMIT_MEMLOCK, like mlock
    "mlockall",
    "munlockall",
    "mseal",  // sealing the process's own mappings (glibc 2.41)
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "sync",
    "syncfs",
    "sync_file_range",
    "readahead",
    "vmsplice",
    "cachestat",
    "inotify_init",  // watching is by path and stays refused (inotify_add_watch)
    "inotify_init1",
    "inotify_rm_watch",
};

// Refused quietly with EACCES: libraries try these and cope with failure. Everything that creates,
// removes or changes a file by path, makes a socket, or creates an anonymous file or a watch; the
// only way to a new file or socket is the broker (which transparent mode's filter sends most of them
// to instead).
constexpr const char* kQuietlyRefused[] = {
    "creat",    "openat2",  "socket",    "connect",     "bind",         "mkdir",        "mkdirat",
    "rmdir",    "unlink",   "unlinkat",  "rename",      "renameat",     "renameat2",    "link",
    "linkat",   "symlink",  "symlinkat", "chmod",       "fchmodat",     "chown",        "lchown",
    "fchownat", "truncate", "utime",     "utimes",      "utimensat",    "futimesat",    "mknod",
    "mknodat",  "setxattr", "lsetxattr", "removexattr", "lremovexattr", "memfd_create", "inotify_add_watch",
    "execveat",
};

// Calls allowed in some forms only; the forms that reach the broker are refused quietly: opening
// with flags beyond reading, datagram socket pairs, sends that name an address, exec after the first.
constexpr const char* kQuietForms[] = {"open",    "openat",   "socketpair", "sendto",
                                       "sendmsg", "sendmmsg", "execve"};

// Refused with an errno: harmless, but nothing ordinary needs them, and programs cope with the
// errno. ENOSYS where libraries fall back as on a kernel without the call; EPERM where that is what
// an unprivileged process gets.
constexpr Refusal kRefused[] = {
    // NUMA policy: top, ps and libnuma fall back as on a kernel without NUMA
    {"get_mempolicy", RefusalErrno::enosys},
    {"set_mempolicy", RefusalErrno::enosys},
    {"set_mempolicy_home_node", RefusalErrno::enosys},
    {"mbind", RefusalErrno::enosys},
    {"migrate_pages", RefusalErrno::enosys},
    {"move_pages", RefusalErrno::enosys},
    {"memfd_secret", RefusalErrno::enosys},
    {"remap_file_pages", RefusalErrno::enosys},
    {"modify_ldt", RefusalErrno::enosys},
    // the C library falls back to clone, whose flags a filter can read (refused in the filter itself)
    {"clone3", RefusalErrno::enosys},
    // kernel AIO: glibc's POSIX AIO uses threads; libaio users fall back
    {"io_setup", RefusalErrno::enosys},
    {"io_destroy", RefusalErrno::enosys},
    {"io_submit", RefusalErrno::enosys},
    {"io_cancel", RefusalErrno::enosys},
    {"io_getevents", RefusalErrno::enosys},
    {"io_pgetevents", RefusalErrno::enosys},
    // System V IPC and POSIX message queues: objects shared by key or name, outside the broker
    {"shmget", RefusalErrno::enosys},
    {"shmat", RefusalErrno::enosys},
    {"shmdt", RefusalErrno::enosys},
    {"shmctl", RefusalErrno::enosys},
    {"semget", RefusalErrno::enosys},
    {"semop", RefusalErrno::enosys},
    {"semtimedop", RefusalErrno::enosys},
    {"semctl", RefusalErrno::enosys},
    {"msgget", RefusalErrno::enosys},
    {"msgsnd", RefusalErrno::enosys},
    {"msgrcv", RefusalErrno::enosys},
    {"msgctl", RefusalErrno::enosys},
    {"mq_open", RefusalErrno::enosys},
    {"mq_unlink", RefusalErrno::enosys},
    {"mq_timedsend", RefusalErrno::enosys},
    {"mq_timedreceive", RefusalErrno::enosys},
    {"mq_notify", RefusalErrno::enosys},
    {"mq_getsetattr", RefusalErrno::enosys},
    // process descriptors and comparisons: callers fall back to pids (Go's os/exec, systemd)
    {"pidfd_open", RefusalErrno::enosys},
    {"pidfd_send_signal", RefusalErrno::enosys},
    {"kcmp", RefusalErrno::enosys},
    // a program confining itself: libseccomp falls back to prctl(PR_SET_SECCOMP), which cannot make a
    // listener (a listener of the worker's own would take the broker's notifications); Landlock users
    // run unconfined by Landlock as on an older kernel
    {"seccomp", RefusalErrno::enosys},
    {"landlock_create_ruleset", RefusalErrno::enosys},
    {"landlock_add_rule", RefusalErrno::enosys},
    {"landlock_restrict_self", RefusalErrno::enosys},
    // by-path calls the broker does not offer: callers fall back (glibc to fchmodat)
    {"name_to_handle_at", RefusalErrno::enosys},
    {"fchmodat2", RefusalErrno::enosys},
    {"statmount", RefusalErrno::enosys},
    {"listmount", RefusalErrno::enosys},
    {"lsm_get_self_attr", RefusalErrno::enosys},
    {"lsm_set_self_attr", RefusalErrno::enosys},
    {"lsm_list_modules", RefusalErrno::enosys},
    // obsolete or never implemented
    {"uselib", RefusalErrno::enosys},
    {"ustat", RefusalErrno::enosys},
    {"sysfs", RefusalErrno::enosys},
    {"_sysctl", RefusalErrno::enosys},
    {"nfsservctl", RefusalErrno::enosys},
    {"lookup_dcookie", RefusalErrno::enosys},
    {"create_module", RefusalErrno::enosys},
    {"get_kernel_syms", RefusalErrno::enosys},
    {"query_module", RefusalErrno::enosys},
    {"getpmsg", RefusalErrno::enosys},
    {"putpmsg", RefusalErrno::enosys},
    {"afs_syscall", RefusalErrno::enosys},
    {"tuxcall", RefusalErrno::enosys},
    {"security", RefusalErrno::enosys},
    {"vserver", RefusalErrno::enosys},
    {"epoll_ctl_old", RefusalErrno::enosys},
    {"epoll_wait_old", RefusalErrno::enosys},
    // privileged, or acting on other processes: an unprivileged process gets EPERM natively
    {"capset", RefusalErrno::eperm},
    {"vhangup", RefusalErrno::eperm},
    {"fanotify_init", RefusalErrno::eperm},
    {"fanotify_mark", RefusalErrno::eperm},
    {"process_madvise", RefusalErrno::eperm},
    {"process_mrelease", RefusalErrno::eperm},
    // reading the clock's discipline is their harmless form (ntp_gettime), which the filter cannot tell
    // from setting it
    {"adjtimex", RefusalErrno::eperm},
    {"clock_adjtime", RefusalErrno::eperm},
};

// Refused with EPERM in the forms that reach the broker: terminal ioctls a worker may not use (refused
// in the filter itself) and commands above 32 bits; personality changes (queries are allowed).
constexpr Refusal kRefusedForms[] = {{"ioctl", RefusalErrno::eperm}, {"personality", RefusalErrno::eperm}};

// Fatal: no ordinary program makes these as an unprivileged user, and each is a way out of the
// sandbox, into another process, or against the whole system. docs/syscalls.md argues each one.
constexpr const char* kFatal[] = {
    // other processes' memory and descriptors
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    // kernel attack surface an unprivileged sandbox never needs
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    // mounts and namespaces
    "mount",
    "umount2",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    // the kernel itself
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "iopl",
    "ioperm",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    // the key rings, shared by every process of the user
    "keyctl",
    "add_key",
    "request_key",
    // the system's clock and names
    "clock_settime",
    "settimeofday",
    "sethostname",
    "setdomainname",
};

// clone with namespace flags: a new namespace, as unshare.
constexpr const char* kFatalForms[] = {"clone"};

template <class List>
bool listed(const List& names, std::string_view name) {
    for (const char* n : names)
        if (name == n) return true;
    return false;
}

const Refusal* find_refusal(std::span<const Refusal> refusals, std::string_view name) {
    for (const Refusal& r : refusals)
        if (name == r.name) return &r;
    return nullptr;
}

}  // namespace

Verdict classify(std::string_view name) noexcept {
    // The forms first: their other forms are allowed, so what reaches the broker is the refused form.
    if (listed(kQuietForms, name)) return Verdict::quiet();
    if (const Refusal* r = find_refusal(kRefusedForms, name)) return Verdict::refused(r->error);
    if (listed(kFatalForms, name) || listed(kFatal, name)) return Verdict::fatal();
    if (listed(kQuietlyRefused, name)) return Verdict::quiet();
    if (const Refusal* r = find_refusal(kRefused, name)) return Verdict::refused(r->error);
    if (listed(kAllowed, name)) return Verdict::allowed();
    return Verdict::refused(RefusalErrno::enosys);
}

std::span<const char* const> allowed_calls() noexcept {
    return kAllowed;
}

std::span<const char* const> quietly_refused_calls() noexcept {
    return kQuietlyRefused;
}

std::span<const Refusal> refused_calls() noexcept {
    return kRefused;
}

std::span<const char* const> fatal_calls() noexcept {
    return kFatal;
}

}  // namespace fdbroker::sandbox
