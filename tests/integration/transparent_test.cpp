// Transparent mode (fdbroker run --transparent): unmodified programs — coreutils, python3, plain C
// programs static and dynamic — get exactly what the policy grants, with their usual error messages.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/harness.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::test {
namespace {

class Transparent : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
        ::mkdir((dir / "pub").c_str(), 0755);
        ::mkdir((dir / "prv").c_str(), 0755);
        ::mkdir((dir / "out").c_str(), 0777);
        write_file(dir / "pub/hello", "hello\n");
        write_file(dir / "pub/secret", "secret\n");
        write_file(dir / "prv/hello", "private\n");
        give_to_nobody(dir / "out");
    }

    std::string policy(const std::string& extra = {}) const {
        const std::string d = dir.path();
        return "version = 1\n"
               "[profile.default]\n"
               "include = [\"runtime\"]\n"
               "read = [\"" +
               d + "\", \"" + d + "/pub\", \"" + d + "/pub/**\", \"" + d +
               "/out/**\"]\n"
               "write = [\"" +
               d +
               "/out/**\"]\n"
               "create = [\"" +
               d +
               "/out/**\"]\n"
               "deny = [\"" +
               d + "/pub/secret\"]\n" + extra;
    }

    Outcome run(const std::vector<std::string>& program, const std::string& extra = {},
                std::vector<std::string> options = {}) {
        options.insert(options.begin(), "--transparent");
        return run_broker(dir, policy(extra), program, options);
    }

    TempDir dir;
};

TEST_F(Transparent, AResultReachesTheCallerAfterItsExecLeftItsOldAddressSpaceToAVforkParent) {
    // The vfork child's fstat has the broker open (and keep) descriptors on the address space it
    // shares with its parent; after its exec the same thread id has another one. Its next result must
    // land there, not at the same address in the parent's.
    const Outcome o = run({staged(TRANSPARENT_WORKER), "vfork", dir / "pub/hello"}, "exec = true\n");
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out, "child ok\nparent ok\n") << o.err;
}

TEST_F(Transparent, CatReadsWhatThePolicyGrants) {
    const Outcome ok = run({"/bin/cat", dir / "pub/hello"});
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "hello\n");

    const Outcome shadow = run({"/bin/cat", "/etc/shadow"});
    EXPECT_EQ(shadow.status, 1);
    EXPECT_EQ(shadow.err, "/bin/cat: /etc/shadow: Permission denied\n");
    // deny beats the read rule on pub/**
    const Outcome denied = run({"/bin/cat", dir / "pub/secret"});
    EXPECT_EQ(denied.status, 1);
    EXPECT_EQ(denied.err, "/bin/cat: " + (dir / "pub/secret") + ": Permission denied\n");
    // Granted but missing: the real errno. Not granted: EACCES whether or not it exists.
    EXPECT_TRUE(contains(run({"/bin/cat", dir / "pub/missing"}).err, "No such file or directory"));
    EXPECT_TRUE(contains(run({"/bin/cat", dir / "prv/missing"}).err, "Permission denied"));
    EXPECT_TRUE(contains(run({"/bin/cat", dir / "prv/hello"}).err, "Permission denied"));
}

TEST_F(Transparent, LsListsGrantedDirectoriesOnly) {
    const Outcome ok = run({"/bin/ls", dir / "pub"});
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "hello\nsecret\n");
    const Outcome denied = run({"/bin/ls", dir / "prv"});
    EXPECT_EQ(denied.status, 2);
    EXPECT_TRUE(contains(denied.err, "Permission denied")) << denied.err;
    EXPECT_EQ(denied.out, "");
}

TEST_F(Transparent, CoreutilsChangeOnlyWhatThePolicyAllows) {
    const std::string out = dir / "out";
    EXPECT_EQ(run({"/bin/mkdir", out + "/d"}).status, 0);
    struct stat st {};
    ASSERT_EQ(::stat((out + "/d").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(run({"/bin/touch", out + "/t"}).status, 0);
    EXPECT_TRUE(exists(out + "/t"));
    EXPECT_EQ(run({"/bin/cp", dir / "pub/hello", out + "/c"}).status, 0);
    EXPECT_EQ(read_file(out + "/c"), "hello\n");
    EXPECT_EQ(run({"/bin/mv", out + "/c", out + "/m"}).status, 0);
    EXPECT_FALSE(exists(out + "/c"));
    EXPECT_EQ(read_file(out + "/m"), "hello\n");
    EXPECT_EQ(run({"/bin/ln", "-s", dir / "pub/hello", out + "/l"}).status, 0);
    const Outcome link = run({"/bin/readlink", out + "/l"});
    EXPECT_EQ(link.status, 0) << link.err;
    EXPECT_EQ(link.out, dir / "pub/hello" + "\n");
    const Outcome stat = run({"/bin/stat", "-c", "%s %F", out + "/m"});
    EXPECT_EQ(stat.status, 0) << stat.err;
    EXPECT_EQ(stat.out, "6 regular file\n");
    // Through the symlink the worker made: the target is judged where it lands.
    const Outcome through = run({"/bin/cat", out + "/l"});
    EXPECT_EQ(through.out, "hello\n") << through.err;
    EXPECT_EQ(run({"/bin/rm", out + "/m"}).status, 0);
    EXPECT_FALSE(exists(out + "/m"));
    EXPECT_EQ(run({"/bin/rm", "-r", out + "/d"}).status, 0);
    EXPECT_FALSE(exists(out + "/d"));

    // The same programs where the policy grants nothing, or only reading.
    const Outcome mkdir = run({"/bin/mkdir", dir / "prv/d"});
    EXPECT_EQ(mkdir.status, 1);
    EXPECT_TRUE(contains(mkdir.err, "Permission denied")) << mkdir.err;
    EXPECT_FALSE(exists(dir / "prv/d"));
    EXPECT_TRUE(contains(run({"/bin/touch", dir / "pub/new"}).err, "Permission denied"));
    EXPECT_FALSE(exists(dir / "pub/new"));
    EXPECT_TRUE(contains(run({"/bin/cp", dir / "prv/hello", out + "/x"}).err, "Permission denied"));
    EXPECT_FALSE(exists(out + "/x"));
    EXPECT_TRUE(contains(run({"/bin/mv", dir / "pub/hello", out + "/y"}).err, "Permission denied"));
    EXPECT_TRUE(exists(dir / "pub/hello"));
    EXPECT_TRUE(contains(run({"/bin/rm", dir / "pub/hello"}).err, "Permission denied"));
    EXPECT_TRUE(exists(dir / "pub/hello"));
    EXPECT_TRUE(contains(run({"/bin/ln", "-s", "/etc/shadow", dir / "pub/l"}).err, "Permission denied"));
    EXPECT_TRUE(contains(run({"/bin/stat", dir / "prv/hello"}).err, "Permission denied"));
    EXPECT_TRUE(contains(run({"/bin/readlink", "-v", dir / "prv/hello"}).err, "Permission denied"));
    // A link the worker may make, pointing somewhere it may not read, gives it nothing.
    EXPECT_EQ(run({"/bin/ln", "-s", "/etc/shadow", out + "/shadow"}).status, 0);
    EXPECT_TRUE(contains(run({"/bin/cat", out + "/shadow"}).err, "Permission denied"));
}

// The same script, natively as nobody in one directory and under fdbroker in another: every line of
// output (results, errno messages, the resulting modes, links, times and sizes) must agree.
TEST_F(Transparent, ProgramsSeeWhatTheKernelWouldShowThem) {
    const std::string script =
        "cd \"$1\"; touch f; chmod 640 f; ln f g; stat -c '%A %h %U %G' f g; truncate -s 10 f; "
        "touch -d 2001-01-01 f; stat -c %Y f; stat -c %s f; mkfifo p; stat -c %F p; ln -s f s; chmod 600 s; "
        "stat -c %A f; chown root f 2>&1; chgrp nogroup f && echo chgrp; stat f/ 2>&1; mkdir d/ && echo d; "
        "rm f/ 2>&1; cat f/ 2>&1; ln -s d sd; stat -c %F sd/; [ -x /bin/sh ] && echo x; [ -x f ] || echo nx; "
        "cp -a f h; stat -c '%A %Y %s' h; mv -T d e; ls; rmdir e/ && echo rmdir; "
        "python3 -c 'import os; os.setxattr(\"f\", \"user.a\", b\"v\"); print(os.getxattr(\"f\", "
        "\"user.a\"), "
        "os.listxattr(\"f\"))'";
    ::mkdir((dir / "native").c_str(), 0755);
    give_to_nobody(dir / "native");
    const Outcome native = run_command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                        "--clear-groups", "/bin/sh", "-c", script, "sh", dir / "native"});
    ASSERT_EQ(native.err, "");
    const Outcome brokered = run({"/bin/sh", "-c", script, "sh", dir / "out"}, "exec = true\n");
    EXPECT_EQ(brokered.err, "");
    EXPECT_EQ(brokered.out, native.out);
    EXPECT_TRUE(contains(native.out, "Operation not permitted")) << native.out;
}

// A process's own descriptors by their /dev and /proc names: process substitution, /dev/stdin and
// /dev/stderr, a file held open, a directory held open and a name beneath it. Natively and brokered
// alike, with no rule for any of these names.
TEST_F(Transparent, TheCallersOwnDescriptorsByTheirDevNames) {
    const std::string script =
        "cd \"$1\"; cat <(echo sub); echo in | cat /dev/stdin; { echo o > /dev/stdout; echo e > /dev/stderr; "
        "} "
        "2>&1 | cat; exec 3<\"$2\"; cat /dev/fd/3 /proc/self/fd/3; ls /dev/fd/ > /dev/null && echo listed; "
        "cat /dev/fd/3/x 2>&1; mkdir d; exec 5<d; echo made > /dev/fd/5/new; cat d/new /proc/self/fd/5/new; "
        "stat -c %s /dev/fd/5/new";
    ::mkdir((dir / "native").c_str(), 0755);
    give_to_nobody(dir / "native");
    const Outcome native =
        run_command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash",
                     "-c", script, "sh", dir / "native", dir / "pub/hello"});
    ASSERT_EQ(native.err, "");
    ASSERT_TRUE(contains(native.out, "sub\nin\no\ne\nhello\nhello\nlisted\n")) << native.out;
    const Outcome brokered =
        run({"/bin/bash", "-c", script, "sh", dir / "out", dir / "pub/hello"}, "exec = true\n");
    EXPECT_EQ(brokered.err, "");
    EXPECT_EQ(brokered.out, native.out);
}

TEST_F(Transparent, RelativePathsStartAtTheWorkersDirectory) {
    // env changes directory and execs cat (exec = true), so cat's paths are relative to DIR.
    const std::string exec = "exec = true\n";
    const Outcome ok = run({"/usr/bin/env", "-C", dir.path(), "/bin/cat", "pub/hello"}, exec);
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "hello\n");
    // ".." is resolved lexically on the absolute path, then judged like any other path.
    EXPECT_EQ(run({"/usr/bin/env", "-C", dir / "out", "/bin/cat", "../pub/hello"}, exec).out, "hello\n");
    EXPECT_TRUE(contains(run({"/usr/bin/env", "-C", dir / "pub", "/bin/cat", "../prv/hello"}, exec).err,
                         "Permission denied"));
    EXPECT_TRUE(contains(
        run({"/usr/bin/env", "-C", dir / "pub", "/bin/cat", "../../../../../../../etc/shadow"}, exec).err,
        "Permission denied"));
    // rm -r walks with openat/unlinkat relative to directory descriptors.
    ::mkdir((dir / "out/tree").c_str(), 0777);
    ::mkdir((dir / "out/tree/sub").c_str(), 0777);
    write_file(dir / "out/tree/sub/f", "f", 0666);
    give_to_nobody(dir / "out/tree");
    EXPECT_EQ(run({"/usr/bin/env", "-C", dir / "out", "/bin/rm", "-r", "tree"}, exec).status, 0);
    EXPECT_FALSE(exists(dir / "out/tree"));
}

TEST_F(Transparent, PythonScripts) {
    int allowed_port = 0, denied_port = 0;
    const unique_fd allowed = tcp_listener("127.0.0.1", 8, allowed_port);
    const unique_fd denied = tcp_listener("127.0.0.1", 8, denied_port);
    write_file(
        dir / "pub/script.py",
        "import os, socket, sys\n"
        "d = sys.argv[1]\n"
        "fd = os.open(d + '/pub/hello', os.O_RDONLY); print(os.read(fd, 100).decode().strip())\n"
        "print(os.stat(d + '/pub/hello').st_size)\n"
        "print(sorted(os.listdir(d + '/pub')))\n"
        "for p in (d + '/prv/hello', d + '/pub/secret', '/etc/shadow'):\n"
        "    try:\n"
        "        os.open(p, os.O_RDONLY)\n"
        "    except PermissionError as e:\n"
        "        print('denied', e.errno)\n"
        "try:\n"
        "    os.stat(d + '/prv/hello')\n"
        "except PermissionError as e:\n"
        "    print('stat denied', e.errno)\n"
        "fd = os.open(d + '/out/py', os.O_WRONLY | os.O_CREAT, 0o600); os.write(fd, b'py'); os.close(fd)\n"
        "for port in (int(sys.argv[2]), int(sys.argv[3])):\n"
        "    s = socket.socket()\n"
        "    try:\n"
        "        s.connect(('127.0.0.1', port)); print('connected')\n"
        "    except PermissionError as e:\n"
        "        print('connect denied', e.errno)\n");
    const Outcome r = run({"/usr/bin/python3", dir / "pub/script.py", dir.path(),
                           std::to_string(allowed_port), std::to_string(denied_port)},
                          "connect = [\"tcp:127.0.0.1:" + std::to_string(allowed_port) + "\"]\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out,
              "hello\n6\n['hello', 'script.py', 'secret']\ndenied 13\ndenied 13\ndenied 13\nstat denied 13\n"
              "connected\nconnect denied 13\n");
    EXPECT_EQ(read_file(dir / "out/py"), "py");
}

TEST_F(Transparent, SocketsOnlyAsTheRulesSay) {
    const int port = closed_port();
    const int other = closed_port() == port ? port + 1 : closed_port();
    write_file(dir / "pub/sockets.py",
               "import socket, sys\n"
               "port, other = int(sys.argv[1]), int(sys.argv[2])\n"
               "def attempt(name, f):\n"
               "    try:\n"
               "        f(); print(name, 'ok')\n"
               "    except OSError as e:\n"
               "        print(name, e.errno)\n"
               "s = socket.socket()\n"
               "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
               "attempt('bind', lambda: s.bind(('127.0.0.1', port)))\n"
               "attempt('listen', lambda: s.listen())\n"
               "c = socket.socket()\n"
               "attempt('connect-own', lambda: c.connect(('127.0.0.1', port)))\n"
               "attempt('bind-other', lambda: socket.socket().bind(('127.0.0.1', other)))\n"
               "attempt('listen-unbound', lambda: socket.socket().listen())\n"
               "attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))\n"
               "attempt('sendto', lambda: socket.socket().sendto(b'x', ('127.0.0.1', other)))\n"
               "attempt('listen-connected', lambda: c.listen())\n"
               "attempt('pair', lambda: socket.socketpair())\n"
               "attempt('dgram-pair', lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))\n");
    const std::string p = std::to_string(port);
    const Outcome r =
        run({"/usr/bin/python3", dir / "pub/sockets.py", p, std::to_string(other)},
            "listen = [\"tcp:127.0.0.1:" + p + "\"]\nconnect = [\"tcp:127.0.0.1:" + p + "\"]\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out,
              "bind ok\nlisten ok\nconnect-own ok\nbind-other 13\nlisten-unbound 13\nudp 13\nsendto 13\n"
              "listen-connected 13\npair ok\ndgram-pair 13\n");
}

TEST_F(Transparent, BindsAUnixPathWithCreateThereAndAListenRule) {
    // The socket file is the worker's, made with its umask, under the name it asked for. Binding makes a
    // file, which create grants; listening on it needs a listen rule.
    const std::string sock = dir / "out/sock", other = dir / "out/other", prv = dir / "prv/sock";
    const std::string script =
        "import os, socket\nos.umask(0o077)\ns = socket.socket(socket.AF_UNIX)\n"
        "s.bind('" +
        sock +
        "'); s.listen(1); print(s.getsockname())\n"
        "c = socket.socket(socket.AF_UNIX); c.connect('" +
        sock +
        "')\n"
        "a, _ = s.accept(); c.send(b'x'); print(a.recv(1))\n"
        "for p in ('" +
        other + "', '" + prv +
        "'):\n"
        "    t = socket.socket(socket.AF_UNIX)\n"
        "    try: t.bind(p); print('bound'); t.listen(1)\n"
        "    except OSError as e: print(e.errno)\n";
    const Outcome r =
        run({"/usr/bin/python3", "-c", script},
            "listen = [\"unix:" + sock + "\", \"unix:" + prv + "\"]\nconnect = [\"unix:" + sock + "\"]\n");
    EXPECT_EQ(r.out, sock + "\nb'x'\nbound\n13\n13\n") << r.err;
    struct ::stat st {};
    ASSERT_EQ(::lstat(sock.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_uid, 65534u);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::lstat(other.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_FALSE(exists(prv));
}

TEST_F(Transparent, AUnixPathTooLongForSunPathIsBoundFromItsDirectory) {
    // As natively, a relative name binds from the working directory however long its path; the socket
    // is named as the caller named it, and listen(2) judges where it is, not where the caller is now.
    const std::string deep = dir / ("out/" + std::string(60, 'd') + "/" + std::string(60, 'e'));
    const std::string script =
        "import os, socket\nos.makedirs('" + deep + "')\nos.chdir('" + deep +
        "')\n"
        "u = socket.socket(socket.AF_UNIX); u.bind('granted'); print(u.getsockname())\n"
        "v = socket.socket(socket.AF_UNIX); v.bind('other')\n"
        "os.chdir('/')\nu.listen(1); print('listening')\n"
        "try: v.listen(1)\nexcept OSError as e: print(e.errno)\n"
        "c = socket.socket(socket.AF_UNIX); os.chdir('" +
        deep + "'); c.connect('granted'); print('connected')\n";
    // The broker started from a directory its worker may not enter, as from root's home.
    const TempDir home;
    ASSERT_EQ(::chmod(home.path().c_str(), 0700), 0);
    const std::string before = std::filesystem::current_path();
    ASSERT_EQ(::chdir(home.path().c_str()), 0);
    const Outcome r =
        run({"/usr/bin/python3", "-c", script},
            "listen = [\"unix:" + deep + "/granted\"]\nconnect = [\"unix:" + deep + "/granted\"]\n");
    ASSERT_EQ(::chdir(before.c_str()), 0);
    EXPECT_EQ(r.out, "granted\nlistening\n13\nconnected\n") << r.err;
}

TEST_F(Transparent, ASlowConnectDoesNotHoldTheBroker) {
    // One thread connects to a peer that never answers (blocking socket, connect_timeout 2 s); the
    // other reads a file meanwhile. The file comes first: the broker waits for the connect in its
    // event loop, not in the call.
    const Unanswering peer;
    write_file(dir / "pub/slow.py",
               "import socket, sys, threading, time\n"
               "started = threading.Event()\n"
               "def slow():\n"
               "    s = socket.socket()\n"
               "    started.set()\n"
               "    try:\n"
               "        s.connect(('127.0.0.1', int(sys.argv[1])))\n"
               "    except OSError as e:\n"
               "        print('connect', e.errno, flush=True)\n"
               "t = threading.Thread(target=slow); t.start()\n"
               "started.wait(); time.sleep(0.3)\n"
               "print(open(sys.argv[2]).read().strip(), flush=True)\n"
               "t.join()\n");
    const std::string p = std::to_string(peer.port());
    const Outcome r = run({"/usr/bin/python3", dir / "pub/slow.py", p, dir / "pub/hello"},
                          "connect = [\"tcp:127.0.0.1:" + p + "\"]\nconnect_timeout = \"2s\"\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "hello\nconnect " + std::to_string(ETIMEDOUT) + "\n");
}

TEST_F(Transparent, StaticBinary) {
#ifndef TRANSPARENT_WORKER_STATIC
    GTEST_SKIP() << "no static C library (libc.a) at build time";
#else
    const Outcome ok = run({staged(TRANSPARENT_WORKER_STATIC), "cat", dir / "pub/hello"});
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "hello\n");
    const Outcome denied = run({staged(TRANSPARENT_WORKER_STATIC), "cat", "/etc/shadow"});
    EXPECT_EQ(denied.status, 1);
    EXPECT_EQ(denied.err, "/etc/shadow: Permission denied\n");
#endif
}

TEST_F(Transparent, RacingThreadNeverGetsADeniedFile) {
    // Same length: the second thread rewrites the buffer between the two names, byte by byte.
    const Outcome r =
        run({staged(TRANSPARENT_WORKER), "race", dir / "pub/hello", dir / "prv/hello", "100000"});
    ASSERT_EQ(r.status, 0) << r.err;
    long opened = -1, refused = -1, wrong = -1;
    ASSERT_EQ(std::sscanf(r.out.c_str(), "opened=%ld refused=%ld wrong=%ld", &opened, &refused, &wrong), 3)
        << r.out;
    EXPECT_EQ(opened + refused, 100000);
    EXPECT_GT(opened, 0);
    EXPECT_EQ(wrong, 0) << r.out;
}

TEST_F(Transparent, WorkersKilledMidCallLeaveTheBrokerHealthy) {
    const Outcome r = run({staged(TRANSPARENT_WORKER), "churn", dir / "pub/hello", "200"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "alive\n");
    EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(Transparent, SignalsDoNotRepeatCallsTheBrokerPerformed) {
    const Outcome r = run({staged(TRANSPARENT_WORKER), "signals", dir / "out", "3000"});
    ASSERT_EQ(r.status, 0) << r.err;
    long failures = -1, signals = -1;
    ASSERT_EQ(std::sscanf(r.out.c_str(), "failures=%ld signals=%ld", &failures, &signals), 2) << r.out;
    EXPECT_EQ(failures, 0) << r.out;
    EXPECT_GT(signals, 0) << r.out;
}

TEST_F(Transparent, CloseOnExecAsRequested) {
    const Outcome r = run({staged(TRANSPARENT_WORKER), "cloexec", dir / "pub/hello"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "cloexec=1 plain=0\n");
}

TEST_F(Transparent, DecisionsAreAudited) {
    const std::string audit = dir / "audit.jsonl";
    run({"/bin/cat", dir / "pub/hello"}, {}, {"--audit", audit});
    run({"/bin/cat", dir / "prv/hello"}, {}, {"--audit", audit});
    const std::string log = read_file(audit);
    EXPECT_TRUE(contains(log, "\"op\":\"open\",\"path\":\"" + (dir / "pub/hello") + "\"")) << log;
    EXPECT_TRUE(contains(log, "\"path\":\"" + (dir / "prv/hello") + "\",\"decision\":\"deny\"")) << log;
}

TEST_F(Transparent, WithoutTheFlagProgramsStayConfinedAsBefore) {
    // Library mode: the worker may read runtime paths itself, nothing else, and nothing is brokered.
    const Outcome r = run_broker(dir, policy(), {"/bin/cat", dir / "pub/hello"});
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(contains(r.err, "Permission denied")) << r.err;
}

TEST(TransparentPolicy, UnknownIncludeIsAnError) {
    TempDir dir;
    write_file(dir / "p.toml", "version = 1\n[profile.default]\ninclude = [\"runtime\", \"nope\"]\n");
    const Outcome r = run_command({fdbroker_bin(), "check", dir / "p.toml"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, dir / "p.toml" + ":3:23: error: unknown include 'nope'")) << r.err;
    write_file(dir / "q.toml", "version = 1\n[profile.default]\ninclude = [\"runtime\"]\n");
    EXPECT_EQ(run_command({fdbroker_bin(), "check", dir / "q.toml"}).status, 0);
}

}  // namespace
}  // namespace fdbroker::test

namespace fdbroker::test {
namespace {

TEST(TransparentCli, HelpNamesTheFlag) {
    const Outcome help = run_command({fdbroker_bin(), "run", "--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("--transparent"), std::string::npos) << help.out;
    const Outcome usage = run_command({fdbroker_bin(), "--help"});
    EXPECT_NE(usage.out.find("[--transparent]"), std::string::npos) << usage.out;
}

}  // namespace
}  // namespace fdbroker::test
