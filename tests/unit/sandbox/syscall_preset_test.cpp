// The default system call preset: which calls kill, which are refused with which errno, and that
// nothing the corpus of ordinary programs makes is fatal. The filter built from it, without a broker
// (fdbroker_lockdown's), is checked in forked children.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "sandbox/seccomp_filter.hpp"
#include "sandbox/syscall_preset.hpp"

namespace fdbroker::sandbox {
namespace {

TEST(SyscallPreset, EachAttackClassIsFatal) {
    for (const char* call : {"ptrace",
                             "process_vm_readv",
                             "process_vm_writev",
                             "pidfd_getfd",
                             "bpf",
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
                             "kexec_load",
                             "kexec_file_load",
                             "init_module",
                             "finit_module",
                             "delete_module",
                             "keyctl",
                             "add_key",
                             "request_key",
                             "unshare",
                             "setns",
                             "userfaultfd",
                             "perf_event_open",
                             "io_uring_setup",
                             "io_uring_enter",
                             "io_uring_register",
                             "reboot",
                             "swapon",
                             "swapoff",
                             "iopl",
                             "ioperm",
                             "open_by_handle_at",
                             "clock_settime",
                             "settimeofday",
                             "sethostname",
                             "setdomainname",
                             "acct",
                             "quotactl",
                             "syslog"})
        EXPECT_EQ(classify(call), Verdict::fatal()) << call;
    // clone reaches the broker only with a namespace flag, which makes it unshare.
    EXPECT_EQ(classify("clone"), Verdict::fatal());
}

TEST(SyscallPreset, HarmlessCallsGetAnErrnoTheirCallersCopeWith) {
    for (const char* call : {"get_mempolicy", "set_mempolicy", "mbind", "clone3", "io_setup", "shmget",
                             "seccomp", "landlock_create_ruleset", "fchmodat2"})
        EXPECT_EQ(classify(call), Verdict::refused(RefusalErrno::enosys)) << call;
    for (const char* call : {"capset", "adjtimex", "fanotify_init", "ioctl", "personality"})
        EXPECT_EQ(classify(call), Verdict::refused(RefusalErrno::eperm)) << call;
    // A name the preset does not know: ENOSYS, as on a kernel without it.
    EXPECT_EQ(classify("a_call_from_the_future"), Verdict::refused(RefusalErrno::enosys));
    EXPECT_EQ(classify("mbind").error(), ENOSYS);
    EXPECT_EQ(classify("capset").error(), EPERM);
}

TEST(SyscallPreset, QuietRefusalsAreWhatTheBrokerOffersInstead) {
    for (const char* call :
         {"chmod", "link", "utimes", "socket", "connect", "mkdir", "setxattr", "removexattr", "open",
          "openat", "sendto", "socketpair", "execve", "memfd_create"})
        EXPECT_EQ(classify(call), Verdict::quiet()) << call;
    EXPECT_EQ(Verdict::quiet().error(), EACCES);
}

TEST(SyscallPreset, WhatTheCorpusFoundIsAllowed) {
    for (const char* call : {"times", "getrusage", "setresuid", "setresgid", "sysinfo", "fsetxattr", "capget",
                             "sched_setaffinity", "setrlimit", "inotify_init1", "mlockall"})
        EXPECT_EQ(classify(call), Verdict::allowed()) << call;
}

TEST(SyscallPreset, EveryNameIsInOneListOnlyAndFatalNamesAreKnown) {
    std::set<std::string> seen;
    auto once = [&seen](const char* name) { EXPECT_TRUE(seen.insert(name).second) << name << " twice"; };
    for (const char* name : allowed_calls())
        once(name);
    for (const char* name : quietly_refused_calls())
        once(name);
    for (const Refusal& r : refused_calls())
        once(r.name);
    for (const char* name : fatal_calls())
        once(name);
    // A misspelt fatal name would leave the call to the ENOSYS default, silently.
    for (const char* name : fatal_calls())
        EXPECT_NE(seccomp_syscall_resolve_name(name), __NR_SCMP_ERROR) << name;
}

// Every call the corpus of ordinary programs made (tests/corpus/observed.calls, gathered by
// tests/corpus/collect.sh) is allowed, brokered in transparent mode, or refused: never fatal.
TEST(SyscallPreset, NothingTheCorpusMakesIsFatal) {
    std::ifstream in(CORPUS_CALLS);
    ASSERT_TRUE(in) << CORPUS_CALLS;
    std::string line;
    int calls = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const std::string name = line.substr(0, line.find(' '));
        ++calls;
        // clone is fatal only with a namespace flag; the corpus made it without one, which is allowed.
        if (name != "clone") {
            EXPECT_NE(classify(name).treatment(), Treatment::fatal) << name;
        }
        // Everything the corpus needs has a place of its own, but for the refusals it copes with.
        EXPECT_TRUE(classify(name) != Verdict::refused(RefusalErrno::enosys) || name == "clone3" ||
                    name == "get_mempolicy" || name == "set_mempolicy")
            << name << " falls to the ENOSYS default";
    }
    EXPECT_GT(calls, 100);
}

// Runs `body` in a child under the filter fdbroker_lockdown() installs (no broker): its exit status,
// or 128 + the signal that ended it.
template <class Body>
int under_lockdown_filter(Body body) {
    const pid_t child = ::fork();
    if (child == 0) {
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(120);
        const FilterResult f = load_worker_filter({}, {.action = FilterAction::kill});
        if (f.error != 0) ::_exit(121);
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(LockdownFilter, RefusesHarmlessCallsWithTheirErrno) {
    // Exit codes: 0 when every call got what the preset says.
    const int status = under_lockdown_filter([] {
        if (::syscall(SYS_mbind, 0, 0, 0, 0, 0, 0) != -1 || errno != ENOSYS) return 1;
        if (::syscall(SYS_get_mempolicy, 0, 0, 0, 0, 0) != -1 || errno != ENOSYS) return 2;
        if (::syscall(SYS_capset, 0, 0) != -1 || errno != EPERM) return 3;
        if (::syscall(SYS_chmod, "/", 0755) != -1 || errno != EACCES) return 4;
        if (::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) != -1 || errno != EACCES) return 5;
        if (::syscall(SYS_times, nullptr) == -1) return 6;
        return 0;
    });
    EXPECT_EQ(status, 0);
}

TEST(LockdownFilter, NoTruncationByPathGetsThrough) {
    // What filter_keeps_truncation() assumes of the default filter.
    char path[] = "/tmp/fdbroker-truncate-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "keep", 4), 4);
    ::close(fd);
    const int status = under_lockdown_filter([&path] {
        if (::truncate(path, 0) != -1 || errno != EACCES) return 1;
        if (::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_TRUNC) != -1 || errno != EACCES) return 2;
        if (::syscall(SYS_open, path, O_RDONLY | O_TRUNC) != -1 || errno != EACCES) return 3;
        if (::syscall(SYS_creat, path, 0600) != -1 || errno != EACCES) return 4;
        return 0;
    });
    struct ::stat st {};
    EXPECT_EQ(::stat(path, &st), 0);
    ::unlink(path);
    EXPECT_EQ(status, 0);
    EXPECT_EQ(st.st_size, 4);
}

TEST(TruncationFilter, KeptFromTheKernelUnlessTheProfileAllowsACallThatTruncates) {
    policy::SyscallRules rules;
    EXPECT_TRUE(filter_keeps_truncation(rules));
    rules.allow = {"ptrace", "ftruncate", "mbind"};  // ftruncate needs a descriptor open for writing
    rules.deny = {"truncate"};
    EXPECT_TRUE(filter_keeps_truncation(rules));
    for (const char* name : {"truncate", "open", "openat", "openat2", "creat", "io_uring_setup"}) {
        rules.allow = {"mbind", name};
        EXPECT_FALSE(filter_keeps_truncation(rules)) << name;
    }
}

TEST(LockdownFilter, FatalCallsKill) {
    for (const long nr :
         {static_cast<long>(SYS_ptrace), static_cast<long>(SYS_bpf), static_cast<long>(SYS_unshare),
          static_cast<long>(SYS_mount), static_cast<long>(SYS_io_uring_setup), static_cast<long>(SYS_keyctl)})
        EXPECT_EQ(under_lockdown_filter(
                      [nr] { return static_cast<int>(::syscall(nr, 0, 0, 0, 0, 0, 0)) == 0 ? 0 : 1; }),
                  128 + SIGSYS)
            << nr;
    // A new namespace through clone: as unshare.
    EXPECT_EQ(under_lockdown_filter(
                  [] { return static_cast<int>(::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)); }),
              128 + SIGSYS);
}

}  // namespace
}  // namespace fdbroker::sandbox
