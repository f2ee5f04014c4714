// The worker itself is hostile: it makes the system calls a compromised program would, bypassing the
// broker. Every attempt must fail, and the broker must name what was refused.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

class Confinement : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "data").c_str(), 0755);
        write_file(dir / "data/granted", "granted");
        write_file(dir / "data/secret", "secret",
                   0644);  // world-readable: only confinement stops a direct read
    }
    // A profile under which violations return EPERM, so one worker can try everything in turn.
    std::string policy(const std::string& extra = "") const {
        return "version = 1\n[profile.default]\nread = [\"" + dir.path() +
               "/data/granted\"]\non_violation = \"errno\"\n" + extra;
    }
    std::vector<std::string> run(const Script& script, const std::string& extra = "") {
        const Outcome o = run_worker(dir, policy(extra), script);
        last_err = o.err;
        EXPECT_EQ(o.status, 0) << o.err;
        return o.lines();
    }
    TempDir dir;
    std::string last_err;
};

TEST_F(Confinement, DirectOpensOfFilesThePolicyDoesNotGrantFail) {
    const std::string secret = dir / "data/secret";
    EXPECT_EQ(
        run({{"direct", "open", secret, "rdonly"},
             {"direct", "openat", secret, "rdonly"},
             {"direct", "openat2", secret, "rdonly"},
             {"direct", "open", dir / "data/new", "wronly|creat"},
             {"direct", "creat", dir / "data/new"},
             {"direct", "open", "/etc/hostname", "rdwr"},
             {"read", dir / "data/granted"}}),
        (std::vector<std::string>{"EACCES", "EACCES", "EACCES", "EACCES", "EACCES", "EACCES", "ok granted"}));
    EXPECT_FALSE(exists(dir / "data/new"));
}

TEST_F(Confinement, NoSocketsButUnixPairs) {
    EXPECT_EQ(run({{"direct", "socket", "inet"},
                   {"direct", "socket", "inet6"},
                   {"direct", "socket", "netlink"},
                   {"direct", "socket", "packet"},
                   {"direct", "socket", "unix"},
                   {"direct", "socketpair", "seqpacket"},
                   {"direct", "socketpair", "dgram"}}),
              (std::vector<std::string>{"EACCES", "EACCES", "EACCES", "EACCES", "EACCES", "ok", "EACCES"}))
        << "a datagram pair could send to any unix datagram socket by name (/dev/log)";
}

TEST_F(Confinement, DangerousCallsAreRefusedAndNamed) {
    const std::string broker_pid = std::to_string(::getpid());  // any root process will do as a target
    EXPECT_EQ(run({{"direct", "io_uring"},
                   {"direct", "ptrace", "1"},
                   {"direct", "process_vm_writev", "1"},
                   {"direct", "open_by_handle_at"},
                   {"direct", "setuid0"},
                   {"direct", "capset"},
                   {"direct", "unshare"},
                   {"direct", "mount"},
                   {"direct", "bpf"},
                   {"direct", "tiocsti"}}),
              (std::vector<std::string>{"EPERM", "EPERM", "EPERM", "EPERM", "EPERM", "EPERM", "EPERM",
                                        "EPERM", "EPERM", "EPERM"}));
    // setuid(0) is on the allow-list: the kernel refuses it to a process without CAP_SETUID.
    for (const char* call : {"io_uring_setup", "ptrace", "process_vm_writev", "open_by_handle_at", "capset",
                             "unshare", "mount", "bpf"})
        EXPECT_NE(last_err.find(std::string("called ") + call + ", which its profile does not allow"),
                  std::string::npos)
            << call << "\n"
            << last_err;
}

TEST_F(Confinement, AViolationKillsTheWorkerWithStatus159ByDefault) {
    std::string policy = this->policy();
    policy.replace(policy.find("on_violation = \"errno\"\n"), 23, "");
    const Outcome o =
        run_worker(dir, policy, {{"read", dir / "data/granted"}, {"direct", "ptrace", "1"}, {"pid"}});
    EXPECT_EQ(o.status, 159) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok granted"}));
    EXPECT_NE(o.err.find("called ptrace, which its profile does not allow: killed (status 159). To allow it: "
                         "syscalls.allow = [\"ptrace\"] in profile 'default', or on_violation = \"errno\""),
              std::string::npos)
        << o.err;
}

TEST_F(Confinement, AViolationInAPidNamespaceIsStatus159Too) {
    if (!is_root()) GTEST_SKIP() << "creating namespaces needs a root broker";
    // The program is the namespace init's child: killing it for a violation is still the worker's
    // death for a forbidden call, not an ordinary SIGKILL (137).
    std::string policy = this->policy() + "namespaces = [\"pid\"]\n";
    policy.replace(policy.find("on_violation = \"errno\"\n"), 23, "");
    const Outcome o = run_worker(dir, policy, {{"pid"}, {"direct", "ptrace", "1"}, {"pid"}});
    EXPECT_EQ(o.status, 159) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok 2"}));
    EXPECT_TRUE(contains(o.err, "called ptrace, which its profile does not allow: killed (status 159)"))
        << o.err;
}

// Each class of fatal call (docs/syscalls.md) still kills: another process's memory or descriptors,
// kernel attack surface, mounts and namespaces, the kernel itself, the key rings, the clock and the
// host name. Every argument is 0, which would be harmless even if a call got through.
TEST_F(Confinement, EachFatalClassKills) {
    std::string policy = this->policy();
    policy.replace(policy.find("on_violation = \"errno\"\n"), 23, "");
    for (const char* call : {"ptrace",
                             "process_vm_readv",
                             "pidfd_getfd",
                             "bpf",
                             "perf_event_open",
                             "userfaultfd",
                             "io_uring_setup",
                             "open_by_handle_at",
                             "mount",
                             "fsopen",
                             "open_tree",
                             "pivot_root",
                             "chroot",
                             "unshare",
                             "setns",
                             "kexec_load",
                             "init_module",
                             "delete_module",
                             "reboot",
                             "swapon",
                             "iopl",
                             "ioperm",
                             "acct",
                             "quotactl",
                             "syslog",
                             "keyctl",
                             "add_key",
                             "clock_settime",
                             "settimeofday",
                             "sethostname",
                             "setdomainname"}) {
        const Outcome o = run_worker(dir, policy, {{"direct", "syscall", call}, {"pid"}});
        EXPECT_EQ(o.status, 159) << call << "\n" << o.err;
        EXPECT_TRUE(o.lines().empty()) << call << ": " << o.out;
        EXPECT_TRUE(contains(
            o.err, std::string("called ") + call + ", which its profile does not allow: killed (status 159)"))
            << o.err;
    }
}

// A profile may allow a fatal call by name, and `syscalls.deny` makes an allowed call fatal.
TEST_F(Confinement, TheProfileDecidesOverThePreset) {
    std::string policy = this->policy();
    policy.replace(policy.find("on_violation = \"errno\"\n"), 23, "");
    const Outcome allowed = run_worker(dir, policy + "syscalls = { allow = [\"sethostname\"] }\n",
                                       {{"direct", "syscall", "sethostname"}});
    EXPECT_EQ(allowed.status, 0) << allowed.err;
    EXPECT_EQ(allowed.lines(), (std::vector<std::string>{"EPERM"}))
        << "the kernel's answer: no CAP_SYS_ADMIN";
    const Outcome denied = run_worker(dir, policy + "syscalls = { deny = [\"times\"] }\n",
                                      {{"direct", "syscall", "times"}, {"pid"}});
    EXPECT_EQ(denied.status, 159) << denied.err;
    EXPECT_TRUE(contains(denied.err,
                         "called times, which its profile does not allow: killed (status 159). To "
                         "allow it: take \"times\" out of syscalls.deny in profile 'default'"))
        << denied.err;
}

// Whether this kernel runs i386 system calls at all: without IA-32 emulation `int 0x80` raises
// SIGSEGV before any seccomp filter sees it.
bool kernel_runs_int80() {
    const pid_t child = ::fork();
    if (child == 0) {
        long ret = 20;  // i386 getpid
        asm volatile("int $0x80" : "+a"(ret) : : "memory");
        ::_exit(ret > 0 ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(Confinement, ForeignArchitecturesAreKilledAndNamed) {
    // Even a profile that answers violations with EPERM: a foreign ABI is how a filter written for
    // one ABI is bypassed, so it is always fatal, and the log says what happened.
    std::string kill = policy();
    kill.replace(kill.find("on_violation = \"errno\"\n"), 23, "");
    for (const std::string& p : {policy(), kill}) {
        const Outcome o = run_worker(dir, p, {{"direct", "x32"}, {"pid"}});
        EXPECT_EQ(o.status, 159) << o.err;
        EXPECT_TRUE(o.lines().empty()) << o.out;
        EXPECT_NE(o.err.find("through a foreign ABI (x32)"), std::string::npos) << o.err;
    }
    if (!kernel_runs_int80())
        GTEST_SKIP() << "this kernel has no IA-32 emulation: int 0x80 never reaches a filter";
    const Outcome o = run_worker(dir, policy(), {{"direct", "int80"}, {"pid"}});
    EXPECT_EQ(o.status, 159) << o.err;
    EXPECT_TRUE(o.lines().empty()) << o.out;
    EXPECT_NE(o.err.find("through a foreign ABI (i386, int 0x80)"), std::string::npos) << o.err;
}

TEST_F(Confinement, ExecOnlyOnceUnlessTheProfileAllowsIt) {
    EXPECT_EQ(run({{"direct", "exec", "/bin/true"}}), (std::vector<std::string>{"EACCES"}));
    EXPECT_NE(last_err.find("exec refused"), std::string::npos) << last_err;
    EXPECT_EQ(run({{"direct", "exec", "/bin/echo", "exec worked"}}, "exec = true\n"),
              (std::vector<std::string>{"exec worked"}));
}

TEST_F(Confinement, ASetuidBinaryGivesNothingBack) {
    if (!is_root()) GTEST_SKIP() << "making a setuid-root binary needs root";
    // A setuid-root copy of id(1) in a runtime path: no_new_privs keeps the worker's own ids.
    const std::string bin = dir / "bin";
    ::mkdir(bin.c_str(), 0755);
    std::filesystem::copy_file("/usr/bin/id", bin + "/id");
    ASSERT_EQ(::chmod((bin + "/id").c_str(), 04755), 0);
    EXPECT_EQ(run({{"direct", "exec", bin + "/id", "-u"}}, "exec = true\nruntime = [\"" + bin + "\"]\n"),
              (std::vector<std::string>{"65534"}));
}

TEST_F(Confinement, TheBrokerCannotBeSignalledOrRead) {
    // The worker's parent is the broker: a shell worker tries to signal it and read its memory.
    const std::string script =
        "kill -TERM $PPID 2>/dev/null && echo killed || echo refused; "
        "read -r x < /proc/$PPID/mem 2>/dev/null && echo read || echo unreadable; "
        "read -r x < /proc/$PPID/environ 2>/dev/null && echo read || echo unreadable";
    write_file(dir / "policy.toml", policy());
    const Outcome shell =
        run_command({fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--", "/bin/sh", "-c", script});
    EXPECT_EQ(shell.status, 0) << shell.err;
    EXPECT_EQ(shell.lines(), (std::vector<std::string>{"refused", "unreadable", "unreadable"}));
}

TEST_F(Confinement, InsideViewOfTheWorker) {
    if (!is_root()) GTEST_SKIP() << "the identity switch needs a root broker";
    const auto lines = run({{"status"}});
    ASSERT_EQ(lines.size(), 1u);
    for (const char* want :
         {"Uid:\t65534\t65534\t65534\t65534", "Gid:\t65534\t65534\t65534\t65534", "CapPrm:\t0000000000000000",
          "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"})
        EXPECT_NE(lines[0].find(want), std::string::npos) << want << " in " << lines[0];
}

TEST_F(Confinement, AForkedChildIsJustAsConfined) {
    EXPECT_EQ(run({{"fork", "direct", "open", dir / "data/secret", "rdonly"},
                   {"fork", "direct", "socket", "inet"},
                   {"fork", "direct", "io_uring"},
                   {"fork", "direct", "exec", "/bin/true"},
                   {"fork", "read", dir / "data/granted"}}),
              (std::vector<std::string>{"EACCES", "EACCES", "EPERM", "EACCES", "ok granted"}));
}

TEST_F(Confinement, LimitsComeFromTheProfile) {
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer reserves terabytes of shadow memory: under an address_space limit a sanitized
    // worker (and the sanitized broker's forked child that sets it) cannot even start.
    EXPECT_EQ(run({{"rlimit", "nofile"}, {"rlimit", "fsize"}, {"rlimit", "core"}},
                  "limits = { nofile = 64, file_size = \"16M\", cpu_seconds = 30 }\n"),
              (std::vector<std::string>{"ok 64 64", "ok 16777216 16777216", "ok 0 0"}));
#else
    EXPECT_EQ(
        run({{"rlimit", "nofile"}, {"rlimit", "as"}, {"rlimit", "fsize"}, {"rlimit", "core"}},
            "limits = { nofile = 64, address_space = \"4G\", file_size = \"16M\", cpu_seconds = 30 }\n"),
        (std::vector<std::string>{"ok 64 64", "ok 4294967296 4294967296", "ok 16777216 16777216", "ok 0 0"}));
#endif
}

TEST_F(Confinement, NamespacesFromTheProfile) {
    if (!is_root()) GTEST_SKIP() << "creating namespaces needs a root broker";
    const auto lines = run({{"pid"}, {"ifaces"}, {"read", dir / "data/granted"}},
                           "namespaces = [\"net\", \"ipc\", \"uts\", \"pid\"]\n");
    // pid 1 of the new namespace is its init (sandbox/pid_init.hpp); the program is its child.
    EXPECT_EQ(lines, (std::vector<std::string>{"ok 2", "ok lo", "ok granted"}));
}

TEST_F(Confinement, PythonRunsConfinedAndUsesTheBroker) {
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3 on this machine";
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "a sanitized libfdbroker.so cannot be loaded into an unsanitized python3";
#endif
    const std::string lib = std::string(shared_library_dir()) + "/libfdbroker.so";
    const std::string script =
        "import ctypes, os, json\n"
        "lib = ctypes.CDLL('" +
        lib +
        "', use_errno=True)\n"
        "fd = lib.fdbroker_open(b'" +
        dir.path() +
        "/data/granted', os.O_RDONLY)\n"
        "denied = lib.fdbroker_open(b'" +
        dir.path() +
        "/data/secret', os.O_RDONLY)\n"
        "err = ctypes.get_errno()\n"
        "try:\n    open('" +
        dir.path() +
        "/data/secret').read(); direct = 'read'\n"
        "except PermissionError:\n    direct = 'refused'\n"
        "print(json.dumps([os.read(fd, 100).decode(), denied, os.strerror(err), direct]))\n";
    write_file(dir / "policy.toml", policy("runtime = [\"" + std::string(shared_library_dir()) + "\"]\n"));
    const Outcome o = run_command(
        {fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--", "/usr/bin/python3", "-c", script});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out, "[\"granted\", -1, \"Permission denied\", \"refused\"]\n") << o.err;
}

TEST(Lockdown, AProcessCanConfineItselfWithTheWorkerFilter) {
    // No broker here: the worker runs directly and locks itself down.
    const Outcome o = run_command({worker_bin(),
                                   "lockdown",
                                   "bogus",
                                   ",",
                                   "lockdown",
                                   ",",
                                   "direct",
                                   "open",
                                   "/etc/hostname",
                                   "wronly",
                                   ",",
                                   "direct",
                                   "socket",
                                   "inet",
                                   ",",
                                   "direct",
                                   "exec",
                                   "/bin/true",
                                   ",",
                                   "direct",
                                   "open",
                                   "/etc/hostname",
                                   "rdonly",
                                   ",",
                                   "direct",
                                   "ptrace",
                                   "1",
                                   ",",
                                   "pid"});
    EXPECT_EQ(o.status, 159) << o.err;  // killed (SIGSYS) at ptrace: no broker to report to
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EINVAL", "ok", "EACCES", "EACCES", "EACCES", "ok"}));
}

}  // namespace
}  // namespace fdbroker::test
