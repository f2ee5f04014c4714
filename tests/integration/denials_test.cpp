// What a user sees of the policy: the runtime include (programs start, devices behave as natively),
// `denied_paths = "absent"`, the -v denial lines and the hints fdbroker run gives at a terminal.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

// Runs argv with a new pseudo-terminal as its controlling terminal and standard streams (what a user
// at a terminal has), and returns everything written to it, with the exit status.
Outcome run_on_terminal(const std::vector<std::string>& argv) {
    Outcome outcome;
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    if (pid < 0) return outcome;
    if (pid == 0) {
        std::vector<char*> args;
        args.reserve(argv.size() + 1);
        for (const std::string& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    bool exited = false;
    for (;;) {
        pollfd p{master, POLLIN, 0};
        const int ready = ::poll(&p, 1, exited ? 0 : 100);
        char buffer[4096];
        const ssize_t n = ready > 0 ? ::read(master, buffer, sizeof buffer) : 0;
        if (n > 0) {
            outcome.out.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (exited) break;  // drained, or EIO: nothing holds the terminal any more
        exited = ::waitpid(pid, &status, WNOHANG) == pid;
    }
    ::close(master);
    outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return outcome;
}

std::size_t count(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

class Visible : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
        ::mkdir((dir / "pub").c_str(), 0755);
        ::mkdir((dir / "prv").c_str(), 0755);
        write_file(dir / "pub/hello", "hello\n");
        write_file(dir / "pub/secret", "secret\n");
        write_file(dir / "prv/hello", "private\n");
    }

    // Line 5 holds the deny rule.
    std::string policy(const std::string& extra = {}, bool runtime = true) const {
        const std::string d = dir.path();
        return "version = 1\n"
               "[profile.default]\n" +
               std::string(runtime ? "include = [\"runtime\"]\n" : "\n") + "read = [\"" + d + "\", \"" + d +
               "/pub/**\"]\n"
               "deny = [\"" +
               d + "/pub/secret\"]\n" + extra + "\n[profile.other]\n";
    }

    Outcome run(const std::vector<std::string>& program, const std::string& extra = {},
                std::vector<std::string> options = {}) {
        options.insert(options.begin(), "--transparent");
        return run_broker(dir, policy(extra), program, options);
    }

    // fdbroker run on a terminal of its own.
    Outcome run_at_terminal(const std::string& policy_text, const std::vector<std::string>& options,
                            const std::vector<std::string>& program) {
        write_file(dir / "policy.toml", policy_text);
        std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml"};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.emplace_back("--");
        argv.insert(argv.end(), program.begin(), program.end());
        return run_on_terminal(argv);
    }

    TempDir dir;
};

TEST_F(Visible, RuntimeDevicesBehaveAsNatively) {
    const std::vector<std::string> script{
        "/bin/sh", "-c",
        "echo x > /dev/null && echo null-ok; head -c1 /dev/zero | od -An -tx1; head -c4 /dev/urandom | wc "
        "-c; "
        "exec 4>/dev/full && echo full-opened; echo y >&4 || echo full-refused; "
        "cat /dev/null /etc/hosts /etc/ssl/openssl.cnf > /dev/null && echo etc-ok"};
    const Outcome o = run(script, "exec = true\n");
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out, "null-ok\n 00\n4\nfull-opened\nfull-refused\netc-ok\n") << o.err;
    // Writing /dev/full fails as it does natively (ENOSPC, which the shell reports its own way).
    const Outcome native = run_command(script);
    EXPECT_EQ(o.out, native.out);
    EXPECT_EQ(o.err, native.err);
    // Still read-only: /dev/urandom's pool; never granted: the private keys.
    const Outcome urandom = run({"/bin/sh", "-c", "echo x > /dev/urandom"});
    EXPECT_TRUE(contains(urandom.err, "Permission denied")) << urandom.err;
    if (::access("/etc/ssl/private", F_OK) == 0) {
        const Outcome keys = run({"/bin/ls", "/etc/ssl/private"});
        EXPECT_NE(keys.status, 0);
        EXPECT_TRUE(contains(keys.err, "Permission denied")) << keys.err;
    }
}

TEST_F(Visible, DevNullOpensReadWriteAsGitOpensIt) {
    // git's sanitize_stdfds: open("/dev/null", O_RDWR). perl-base is essential on Debian, and its
    // @INC (/etc/perl first, then /usr) is part of the runtime.
    const Outcome o =
        run({"/usr/bin/perl", "-e",
             "use strict; sysopen(my $f, '/dev/null', 2) or die \"open: $!\\n\"; print $f 'x' or die; "
             "print \"rw-ok\\n\""});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out, "rw-ok\n");
}

TEST_F(Visible, AbsentLetsProgramsSkipOptionalFiles) {
    // A denied directory first in @INC: fatal with EACCES, skipped when it looks absent.
    const std::vector<std::string> perl{
        "/usr/bin/perl", "-e", "use lib '" + dir / "prv" + "'; use Text::ParseWords; print \"ok\\n\""};
    const Outcome eacces = run(perl);
    EXPECT_NE(eacces.status, 0);
    EXPECT_TRUE(contains(eacces.err, "Permission denied")) << eacces.err;
    const Outcome absent = run(perl, "denied_paths = \"absent\"\n");
    EXPECT_EQ(absent.status, 0) << absent.err;
    EXPECT_EQ(absent.out, "ok\n");
}

TEST_F(Visible, DevTtyIsTheCallersOwnTerminalOnly) {
    const std::string program = "echo tty-ok > /dev/tty";
    const Outcome shared = run_at_terminal(policy(), {"--transparent"}, {"/bin/sh", "-c", program});
    EXPECT_EQ(shared.status, 0) << shared.out;
    EXPECT_TRUE(contains(shared.out, "tty-ok")) << shared.out;
    // The terminal ioctls the filter refuses stay refused on the descriptor /dev/tty gives: pushing
    // input (TIOCSTI, 0x5412), taking the terminal (TIOCSCTTY, 0x540E).
    const std::string ioctls =
        "open(my $t, '+<', '/dev/tty') or die \"open: $!\\n\"; my $c = 'x'; "
        "for my $cmd (0x5412, 0x540E) { ioctl($t, $cmd, $c) and die \"allowed\\n\"; "
        "print \"refused: $!\\n\" }";
    const Outcome refused = run_at_terminal(policy(), {"--transparent"}, {"/usr/bin/perl", "-e", ioctls});
    EXPECT_EQ(refused.status, 0) << refused.out;
    EXPECT_EQ(count(refused.out, "refused: Operation not permitted"), 2u) << refused.out;
    // Detached from the terminal, the worker has none: the broker's is not handed to it.
    const Outcome detached =
        run_at_terminal(policy("terminal = \"detached\"\n"), {"--transparent"}, {"/bin/sh", "-c", program});
    EXPECT_NE(detached.status, 0) << detached.out;
    EXPECT_FALSE(contains(detached.out, "tty-ok")) << detached.out;
    EXPECT_TRUE(contains(detached.out, "No such device or address")) << detached.out;
}

TEST_F(Visible, AbsentMakesEveryDeniedPathLookMissing) {
    const std::string absent = "denied_paths = \"absent\"\n";
    // Denied by no rule, existing or not; denied by a deny rule: all alike, ENOENT.
    for (const std::string& path : {std::string("/etc/shadow"), dir / "prv/hello", dir / "prv/missing",
                                    dir / "pub/secret", std::string("/root/nothing-here")}) {
        const Outcome o = run({"/bin/cat", path}, absent);
        EXPECT_EQ(o.status, 1) << path;
        EXPECT_EQ(o.err, "/bin/cat: " + path + ": No such file or directory\n") << path;
    }
    // Granted paths are unchanged: read, or the real errno.
    EXPECT_EQ(run({"/bin/cat", dir / "pub/hello"}, absent).out, "hello\n");
    EXPECT_TRUE(contains(run({"/bin/cat", dir / "pub/missing"}, absent).err, "No such file or directory"));
    // A path the worker may see keeps EACCES for what it is not granted.
    const Outcome write = run({"/bin/sh", "-c", "echo x >> " + dir / "pub/hello"}, absent);
    EXPECT_TRUE(contains(write.err, "Permission denied")) << write.err;
    // Without the key, EACCES as ever.
    EXPECT_TRUE(contains(run({"/bin/cat", dir / "prv/hello"}).err, "Permission denied"));
}

TEST_F(Visible, AbsentInLibraryModeToo) {
    const std::string text = policy("denied_paths = \"absent\"\n");
    const Outcome o = run_worker(dir, text,
                                 {{"read", dir / "pub/hello"},
                                  {"read", dir / "prv/hello"},
                                  {"read", dir / "prv/missing"},
                                  {"read", dir / "pub/secret"}});
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok hello", "ENOENT", "ENOENT", "ENOENT"})) << o.err;
    EXPECT_EQ(run_worker(dir, policy(), {{"read", dir / "prv/hello"}}).lines(),
              (std::vector<std::string>{"EACCES"}));
}

TEST_F(Visible, VerbosePrintsEachDistinctDenialOnce) {
    const std::string secret = dir / "pub/secret";
    const std::string script = "cat /etc/shadow; cat /etc/shadow; cat /etc/shadow; cat " + secret + "; true";
    const std::string audit = dir / "audit.jsonl";
    const Outcome o = run({"/bin/sh", "-c", script}, "exec = true\n", {"-v", "--audit", audit});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(count(o.err, "fdbroker: denied read /etc/shadow (profile default): no rule grants read\n"), 1u)
        << o.err;
    EXPECT_EQ(count(o.err, "fdbroker: denied read " + secret + " (profile default): rule at " +
                               (dir / "policy.toml") + ":5:9 (deny \"" + secret + "\") denies it\n"),
              1u)
        << o.err;
    // The audit stream still has every decision.
    EXPECT_EQ(count(read_file(audit), "\"path\":\"/etc/shadow\""), 3u);
    // Without -v, and without a terminal, fdbroker adds nothing to the program's own messages.
    const Outcome quiet = run({"/bin/cat", "/etc/shadow"});
    EXPECT_EQ(quiet.err, "/bin/cat: /etc/shadow: Permission denied\n");
}

TEST_F(Visible, TerminalIoctlRefusalsAreAuditedAndShown) {
    // TIOCSTI (0x5412) twice, once with bits above 32 (the kernel reads the command as 32 bits, so they
    // must not hide it), and TIOCSCTTY (0x540E); then two that are allowed (TCGETS, FIONREAD).
    const std::string audit = dir / "audit.jsonl";
    const std::string ioctls =
        "my $c = 'x'; for my $cmd (0x5412, 0x100005412, 0x540E) { ioctl(STDIN, $cmd, $c) and die "
        "\"allowed\\n\"; print \"refused: $!\\n\" } my $t = \"\\0\" x 64; ioctl(STDIN, 0x5401, $t); "
        "print \"tcgets: $!\\n\"; my $n = \"\\0\" x 8; ioctl(STDIN, 0x541B, $n) and print \"fionread: "
        "ok\\n\"";
    const Outcome o = run({"/usr/bin/perl", "-e", ioctls}, {}, {"-v", "--audit", audit});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(count(o.out, "refused: Operation not permitted"), 3u) << o.out;
    // Reached the kernel, which says standard input is no terminal (it is a pipe here).
    EXPECT_TRUE(contains(o.out, "tcgets: Inappropriate ioctl for device")) << o.out;
    // FIONREAD (0x541B), next to TIOCLINUX (0x541C): allowed, and a pipe answers it.
    EXPECT_TRUE(contains(o.out, "fionread: ok")) << o.out;
    const std::string stream = read_file(audit);
    EXPECT_EQ(count(stream, "\"syscall\":\"ioctl TIOCSTI\""), 2u) << stream;
    EXPECT_EQ(count(stream, "\"syscall\":\"ioctl TIOCSCTTY\""), 1u) << stream;
    // One line each under -v, and one log line each.
    EXPECT_EQ(count(o.err, "fdbroker: denied syscall ioctl TIOCSTI (profile default): no worker may"), 1u)
        << o.err;
    EXPECT_EQ(count(o.err, "fdbroker: denied syscall ioctl TIOCSCTTY (profile default)"), 1u) << o.err;
    EXPECT_EQ(count(o.err, "ioctl TIOCSTI refused: EPERM (logged once)"), 1u) << o.err;
}

TEST_F(Visible, AnExecRefusalIsReportedOnceNotOncePerPathEntry) {
    // The shell tries `ls` in each directory of PATH; exec = false refuses every attempt.
    const std::vector<std::string> program{
        "/bin/sh", "-c", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; ls; echo $?"};
    const Outcome o = run_broker(dir, policy(), program, {"--transparent"});
    EXPECT_EQ(o.out, "126\n") << o.err;  // found, not executable: what an EACCES from execve means
    EXPECT_EQ(count(o.err, "exec refused"), 1u) << o.err;
}

TEST_F(Visible, AuditDashIsStandardErrorForRun) {
    const Outcome o = run({"/bin/cat", dir / "pub/hello"}, {}, {"--audit", "-"});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out, "hello\n");  // the program's output alone
    EXPECT_TRUE(contains(o.err, "\"decision\":\"allow\"")) << o.err;
}

TEST_F(Visible, UnknownProfileListsTheProfiles) {
    const Outcome o = run_broker(dir, policy(), {"/bin/true"}, {"--profile", "missing"});
    EXPECT_EQ(o.status, 125);
    EXPECT_TRUE(contains(o.err, "no profile 'missing' (its profiles are 'default' and 'other')")) << o.err;
}

TEST_F(Visible, HintsAtATerminalWhenTheProgramFails) {
    // An unmodified program without --transparent: its own open meets Landlock and never asks.
    const Outcome library = run_at_terminal(policy(), {}, {"/bin/cat", dir / "pub/hello"});
    EXPECT_EQ(library.status, 1) << library.out;
    EXPECT_TRUE(contains(library.out,
                         "never asked the broker for anything: if it does not use libfdbroker, run "
                         "it with fdbroker run --transparent"))
        << library.out;
    // Transparent without the runtime include: the loader is refused before main().
    const Outcome loader =
        run_at_terminal(policy({}, false), {"--transparent"}, {"/bin/cat", dir / "pub/hello"});
    EXPECT_EQ(loader.status, 127) << loader.out;
    EXPECT_TRUE(contains(loader.out, "add include = [\"runtime\"] to profile 'default'")) << loader.out;
    // A denial the program failed on is named once, with the way to see them all.
    const Outcome denied = run_at_terminal(policy(), {"--transparent"}, {"/bin/cat", "/etc/shadow"});
    EXPECT_EQ(denied.status, 1) << denied.out;
    EXPECT_TRUE(contains(denied.out,
                         "fdbroker: 1 request was denied, the first: denied read /etc/shadow (profile "
                         "default): no rule grants read (fdbroker run -v lists each distinct denial)"))
        << denied.out;
    // A program that succeeds gets no advice.
    const Outcome fine = run_at_terminal(policy("exec = true\n"), {"--transparent"},
                                         {"/bin/sh", "-c", "cat /etc/shadow; true"});
    EXPECT_EQ(fine.status, 0) << fine.out;
    EXPECT_FALSE(contains(fine.out, "fdbroker:")) << fine.out;
}

}  // namespace
}  // namespace fdbroker::test
