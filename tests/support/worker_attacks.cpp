// The test worker's attack commands: system calls made directly, bypassing the broker, as a
// compromised worker would, and what the worker can see of its own confinement.
//
//   direct CALL ARGS...   one raw system call (open, openat, openat2, creat, socket FAMILY, io_uring,
//                         ptrace PID, process_vm_writev PID, open_by_handle_at, setuid0, capset,
//                         unshare, mount, bpf, kill PID, tiocsti, tiocspgrp, tiocsctty, tiocsetd,
//                         tioccons, exec PATH ARGS..., x32, int80, syscall NAME: the call of that name
//                         with every argument 0)
//   status                the worker's ids, capabilities, no_new_privs and seccomp mode
//   lockdown [PRESET]     fdbroker_lockdown()
//   rlimit NAME           soft and hard limit (nofile, as, fsize, nproc, cpu, core)
//   pid                   getpid()
//   ifaces                the network interfaces the worker sees
#include "support/worker_attacks.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "fdbroker/fdbroker.h"
#include "support/read_all.hpp"
#include "support/worker_output.hpp"

namespace fdbroker::test {

namespace {

using Args = std::vector<std::string>;

// Each direct_* function makes the call `direct CALL ...` names if CALL is one of its own, and returns
// its result (negative on failure, with errno); nothing if CALL is not one of its own.

// Opening files without the broker.
std::optional<long> direct_open(const Args& a) {
    const std::string what = arg(a, 1);
    if (what == "open") return ::open(arg(a, 2).c_str(), parse_flags(arg(a, 3)), 0644);
    if (what == "openat") return ::openat(AT_FDCWD, arg(a, 2).c_str(), parse_flags(arg(a, 3)), 0644);
    if (what == "openat2") {
        open_how how{};
        how.flags = static_cast<std::uint64_t>(parse_flags(arg(a, 3)));
        return ::syscall(SYS_openat2, AT_FDCWD, arg(a, 2).c_str(), &how, sizeof how);
    }
    if (what == "creat") return ::creat(arg(a, 2).c_str(), 0644);
    if (what == "open_by_handle_at") {
        char handle[64] = {};
        return ::syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY);
    }
    return std::nullopt;
}

// Making sockets without the broker.
std::optional<long> direct_socket(const Args& a) {
    const std::string what = arg(a, 1);
    if (what == "socket") {
        const int family = arg(a, 2) == "inet6"     ? AF_INET6
                           : arg(a, 2) == "netlink" ? AF_NETLINK
                           : arg(a, 2) == "packet"  ? AF_PACKET
                           : arg(a, 2) == "unix"    ? AF_UNIX
                                                    : AF_INET;
        return ::socket(family, arg(a, 2) == "packet" ? SOCK_RAW : SOCK_STREAM, 0);
    }
    if (what == "socketpair") {
        int pair[2];
        const int rc = ::socketpair(
            AF_UNIX, (arg(a, 2) == "dgram" ? SOCK_DGRAM : SOCK_SEQPACKET) | SOCK_CLOEXEC, 0, pair);
        if (rc == 0) ::close(pair[0]), ::close(pair[1]);
        return rc;
    }
    return std::nullopt;
}

// Reaching other processes, gaining privileges, and kernel interfaces a worker has no business with.
std::optional<long> direct_privileged(const Args& a) {
    const std::string what = arg(a, 1);
    if (what == "io_uring") {
        char params[120] = {};
        return ::syscall(SYS_io_uring_setup, 8, params);
    }
    if (what == "ptrace") return ::ptrace(PTRACE_ATTACH, std::atoi(arg(a, 2).c_str()), nullptr, nullptr);
    if (what == "process_vm_writev") {
        char byte = 0;
        iovec local{&byte, 1}, remote{reinterpret_cast<void*>(0x400000), 1};
        return ::process_vm_writev(std::atoi(arg(a, 2).c_str()), &local, 1, &remote, 1, 0);
    }
    if (what == "setuid0") return ::setuid(0);
    if (what == "capset") {
        std::uint32_t header[2] = {0x20080522, 0};
        std::uint32_t data[6] = {~0U, ~0U, 0, ~0U, ~0U, 0};
        return ::syscall(SYS_capset, header, data);
    }
    if (what == "unshare") return ::syscall(SYS_unshare, CLONE_NEWUSER);
    if (what == "mount") return ::syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, nullptr);
    if (what == "bpf") return ::syscall(SYS_bpf, 0, nullptr, 0);
    if (what == "kill") return ::kill(std::atoi(arg(a, 2).c_str()), SIGTERM);
    if (what == "syscall") {
        // Zero arguments: harmless even where the filter let a call through (the worker has no
        // capability, and reboot, kexec_load or swapon need one).
        const int nr = seccomp_syscall_resolve_name(arg(a, 2).c_str());
        if (nr == __NR_SCMP_ERROR) return std::nullopt;
        return ::syscall(nr, 0, 0, 0, 0, 0, 0);
    }
    return std::nullopt;
}

// Terminal ioctls on standard input.
std::optional<long> direct_terminal(const Args& a) {
    const std::string what = arg(a, 1);
    if (what == "tiocsti") {
        char c = 'x';
        return ::ioctl(0, TIOCSTI, &c);
    }
    if (what == "tiocspgrp") {
        const pid_t group = ::getpgrp();
        return ::ioctl(0, TIOCSPGRP, &group);
    }
    if (what == "tiocsctty") return ::ioctl(0, TIOCSCTTY, 0);
    if (what == "tiocsetd") {
        const int discipline = 0;
        return ::ioctl(0, TIOCSETD, &discipline);
    }
    if (what == "tioccons") return ::ioctl(0, TIOCCONS);
    return std::nullopt;
}

// exec, and system calls through the other ABIs' entry points.
std::optional<long> direct_escape(const Args& a) {
    const std::string what = arg(a, 1);
    if (what == "exec") {
        std::vector<char*> argv;
        for (std::size_t i = 2; i < a.size(); ++i)
            argv.push_back(const_cast<char*>(a[i].c_str()));
        argv.push_back(nullptr);
        std::fflush(stdout);
        return ::execv(argv[0], argv.data());
    }
    if (what == "x32") return ::syscall(0x40000000 | SYS_getpid);  // the x32 ABI's getpid
    if (what == "int80") {
        long ret = 20;  // i386 getpid through the legacy gate
        asm volatile("int $0x80" : "+a"(ret) : : "memory");
        return ret;
    }
    return std::nullopt;
}

// Direct system calls, bypassing the broker: what a compromised worker would try.
void direct(const Args& a) {
    errno = 0;
    std::optional<long> rc = direct_open(a);
    if (!rc) rc = direct_socket(a);
    if (!rc) rc = direct_privileged(a);
    if (!rc) rc = direct_terminal(a);
    if (!rc) rc = direct_escape(a);
    if (!rc) {
        std::printf("unknown direct call %s\n", arg(a, 1).c_str());
        return;
    }
    if (*rc >= 0) {
        std::printf("ok\n");
    } else {
        print_errno(errno);
    }
}

// Lines of /proc/self/status the confinement tests look at.
void status() {
    const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return print_errno(errno);
    const std::string text = read_all(fd);
    ::close(fd);
    std::string out;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        const std::string line = text.substr(start, end - start);
        for (const char* key : {"Uid:", "Gid:", "CapPrm:", "CapEff:", "CapBnd:", "NoNewPrivs:", "Seccomp:"})
            if (line.starts_with(key)) out += line + ";";
        if (end == std::string::npos) break;
        start = end + 1;
    }
    std::printf("ok %s\n", out.c_str());
}

}  // namespace

bool run_attack_command(const Args& a) {
    const std::string& cmd = a[0];
    if (cmd == "direct") {
        direct(a);
    } else if (cmd == "status") {
        status();
    } else if (cmd == "lockdown") {
        report(fdbroker_lockdown(arg(a, 1).empty() ? nullptr : arg(a, 1).c_str()));
    } else if (cmd == "rlimit") {
        const int resource = arg(a, 1) == "nofile"  ? RLIMIT_NOFILE
                             : arg(a, 1) == "as"    ? RLIMIT_AS
                             : arg(a, 1) == "fsize" ? RLIMIT_FSIZE
                             : arg(a, 1) == "nproc" ? RLIMIT_NPROC
                             : arg(a, 1) == "cpu"   ? RLIMIT_CPU
                                                    : RLIMIT_CORE;
        rlimit limit{};
        ::getrlimit(resource, &limit);
        report(0, std::to_string(limit.rlim_cur) + " " + std::to_string(limit.rlim_max));
    } else if (cmd == "pid") {
        report(0, std::to_string(::getpid()));
    } else if (cmd == "ifaces") {  // network interfaces this process sees, from its own /proc entry
        const int fd = ::open("/proc/self/net/dev", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            print_errno(errno);
            return true;
        }
        const std::string text = read_all(fd);
        ::close(fd);
        std::string names;
        std::size_t start = text.find('\n', text.find('\n') + 1);  // past the two header lines
        while (start != std::string::npos && start + 1 < text.size()) {
            const std::size_t colon = text.find(':', start);
            std::string name = text.substr(start + 1, colon - start - 1);
            name.erase(0, name.find_first_not_of(' '));
            names += (names.empty() ? "" : ",") + name;
            start = text.find('\n', colon);
        }
        report(0, names);
    } else {
        return false;
    }
    return true;
}

}  // namespace fdbroker::test
