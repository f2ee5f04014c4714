// The attack suite: a worker (or someone it colludes with) trying to get what the policy refuses, or
// to disturb the broker. Each test states the attack and asserts that it fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/harness.hpp"
#include "support/serve_broker.hpp"

namespace fdbroker::test {
namespace {

class Attack : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "ok").c_str(), 0755);
        ::mkdir((dir / "ok/sub").c_str(), 0755);
        ::mkdir((dir / "secret").c_str(), 0755);
        write_file(dir / "ok/sub/file", "allowed");
        write_file(dir / "secret/file", "SECRET");
    }
    std::string policy(const std::string& extra_read = "") const {
        return "version = 1\n[profile.default]\nread = [\"" + dir.path() + "/ok/**\"" + extra_read + "]\n";
    }
    TempDir dir;
};

TEST_F(Attack, ProcMagicLinksAreRefused) {
    // Even with /proc granted, a path through a /proc magic link never reaches the file behind it.
    const Outcome o = run_worker(dir, policy(", \"/proc/**\""),
                                 {{"read", "/proc/self/root" + dir.path() + "/secret/file"},
                                  {"read", "/proc/1/root" + dir.path() + "/secret/file"},
                                  {"read", "/proc/self/cwd" + dir.path() + "/secret/file"},
                                  {"stat", "/proc/self/root" + dir.path() + "/secret/file"},
                                  {"read", "/proc/self/root" + dir.path() + "/ok/sub/file"}});
    ASSERT_EQ(o.status, 0) << o.err;
    for (const auto& line : o.lines())
        EXPECT_EQ(line, "EACCES");
    EXPECT_EQ(o.lines().size(), 5u);
}

TEST_F(Attack, ASymlinkIntoProcIsOpenedWithTheWorkersStandingOnly) {
    if (!is_root()) GTEST_SKIP() << "needs a root broker and a process of another user";
    // A rule for other processes' /proc entries is read with the worker's user's standing, even when
    // a symlink in a granted tree leads there: a root process's environ (0400, root) stays refused.
    const pid_t root_process = ::fork();
    ASSERT_GE(root_process, 0);
    if (root_process == 0) {
        ::pause();
        ::_exit(1);
    }
    const std::string environ = "/proc/" + std::to_string(root_process) + "/environ";
    ASSERT_EQ(::symlink(environ.c_str(), (dir / "ok/env").c_str()), 0);
    const Outcome o =
        run_worker(dir, policy(", \"/proc/*/environ\""), {{"read", dir / "ok/env"}, {"read", environ}});
    ::kill(root_process, SIGKILL);
    ::waitpid(root_process, nullptr, 0);
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EACCES", "EACCES"})) << o.err;
}

TEST_F(Attack, ASymlinkToAnotherProcesssCwdIsWalkedWithTheWorkersStandingOnly) {
    if (!is_root()) GTEST_SKIP() << "needs a root broker and a process of another user";
    // A root process whose working directory is granted: its /proc/PID/cwd link is the kernel's to
    // refuse the worker's user (EACCES), even though where it leads is readable, and even when a
    // symlink in a granted tree leads there.
    const pid_t root_process = ::fork();
    ASSERT_GE(root_process, 0);
    if (root_process == 0) {
        if (::chdir((dir / "ok/sub").c_str()) == 0) ::pause();
        ::_exit(1);
    }
    const std::string cwd = "/proc/" + std::to_string(root_process) + "/cwd";
    ASSERT_EQ(::symlink(cwd.c_str(), (dir / "ok/cwd").c_str()), 0);
    const Outcome o =
        run_worker(dir, policy(", \"/proc/**\""),
                   {{"read", dir / "ok/cwd/file"}, {"read", cwd + "/file"}, {"read", dir / "ok/sub/file"}});
    ::kill(root_process, SIGKILL);
    ::waitpid(root_process, nullptr, 0);
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EACCES", "EACCES", "ok allowed"})) << o.err;
}

TEST_F(Attack, ProcPathsAreRefusedWithoutAGrant) {
    // Its own /proc entries are the worker's to read, as natively; /proc/self names the worker, not the
    // broker; another process's entries, and magic links out of its own, need a rule.
    const Outcome o = run_worker(dir, policy(),
                                 {{"read", "/proc/self/root" + dir.path() + "/ok/sub/file"},
                                  {"read", "/proc/1/environ"},
                                  {"read", "/proc/self/status"}});
    const std::vector<std::string> lines = o.lines();
    ASSERT_GE(lines.size(), 3u) << o.err;
    EXPECT_EQ(lines[0], "EACCES");
    EXPECT_EQ(lines[1], "EACCES");
    EXPECT_TRUE(lines[2].starts_with("ok Name:")) << lines[2];
    EXPECT_TRUE(contains(o.out, "Uid:\t65534")) << "the worker's own status, not the broker's: " << o.out;
}

// Another process keeps swapping a granted directory for a symlink to a denied one while the worker
// opens a file inside it 10 000 times: no open may ever yield the denied file.
void race(Attack& t, const TempDir& dir, const std::string& policy, const std::string& link_target) {
    std::atomic<bool> stop{false};
    std::thread attacker([&] { swap_with_symlink(dir / "ok/sub", link_target, stop); });
    const Outcome o =
        run_worker(dir, policy, {{"race-reader", dir / "ok/sub/file", dir / "secret/file", "10000"}});
    stop = true;
    attacker.join();
    ASSERT_EQ(o.status, 0) << o.err;
    ASSERT_EQ(o.lines().size(), 1u) << o.out;
    EXPECT_TRUE(o.lines()[0].starts_with("ok ")) << o.lines()[0];
    EXPECT_NE(o.lines()[0].find("leaked=0"), std::string::npos) << o.lines()[0];
    std::printf("[ race     ] %s\n", o.lines()[0].c_str());
    (void)t;
}

TEST_F(Attack, RenameRaceWithAnAbsoluteSymlinkNeverYieldsADeniedFile) {
    race(*this, dir, policy(), dir / "secret");
}

TEST_F(Attack, RenameRaceWithARelativeSymlinkNeverYieldsADeniedFile) {
    race(*this, dir, policy(), "../secret");
}

// The worker hands its bootstrap channel to a process outside its tree, which tries to attach.
class Handoff : public Attack {
  protected:
    // Receives the channel the worker sends to `sock`, then tries to attach from a forked process
    // running as `uid`; returns what the attach produced: "refused" (channel ended) or "attached".
    static std::string steal_and_attach(int listener, uid_t uid) {
        const int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) return "accept failed";
        std::array<std::byte, 16> buf;
        proto::Received got = proto::receive(conn, buf, 0, 1);
        if (got.status != proto::RecvStatus::ok || !got.fd) return "no channel received";
        const int stolen = got.fd.get();
        const pid_t child = ::fork();
        if (child == 0) {
            if (::geteuid() == 0 && uid != 0 &&
                (::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0))
                ::_exit(3);
            int pair[2];
            ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair);
            wire::Request req;
            req.op = wire::Op::attach;
            req.id = 7;
            std::array<std::byte, wire::kRequestHeaderSize> frame;
            const std::size_t n = wire::encode_request(req, frame);
            const proto::Credentials me = proto::own_credentials();
            proto::SendOptions options;
            options.fd = pair[1];
            options.credentials = &me;
            if (proto::send(stolen, std::span(frame.data(), n), options) != 0) ::_exit(4);
            ::close(pair[1]);
            std::array<std::byte, wire::kMaxReplySize + 1> reply;
            const proto::Received r = proto::receive(pair[0], reply, 0, 0);
            ::_exit(r.status == proto::RecvStatus::eof ? 0 : 1);
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        const char done = 'x';
        [[maybe_unused]] auto w = ::write(conn, &done, 1);
        ::close(conn);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0
                   ? "refused"
                   : "attached or failed: " + std::to_string(status);
    }

    void attempt(uid_t uid) {
        const std::string sock = dir / "handoff.sock";
        const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
        ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ::chmod(sock.c_str(), 0777);
        ASSERT_EQ(::listen(listener, 1), 0);
        std::string verdict;
        std::thread thief([&] { verdict = steal_and_attach(listener, uid); });
        // After the handoff the worker's own tree has lost its bootstrap channel too: the broker ends a
        // channel that was used by an outsider, so a new process of the tree cannot attach any more.
        // The worker colludes: its profile lets it make the unix socket it leaks the channel through.
        const std::string colluding = policy() + "syscalls = { allow = [\"socket\", \"connect\"] }\n";
        const Outcome o = run_worker(dir, colluding,
                                     {{"read", dir / "ok/sub/file"},
                                      {"handoff", sock},
                                      {"fork", "read", dir / "ok/sub/file"},
                                      {"read", dir / "ok/sub/file"}});
        thief.join();
        ::close(listener);
        EXPECT_EQ(verdict, "refused");
        EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok allowed", "ok", "ECONNRESET", "ok allowed"}))
            << o.err;
        EXPECT_NE(o.err.find("closing a bootstrap channel"), std::string::npos) << o.err;
    }
};

TEST_F(Handoff, AnUnrelatedProcessOfTheSameUserIsRefused) {
    attempt(is_root() ? 65534 : ::geteuid());
}

TEST_F(Handoff, AnUnrelatedProcessOfAnotherUserIsRefused) {
    if (!is_root()) GTEST_SKIP() << "needs a root broker so that the worker and the thief differ in uid";
    attempt(0);
}

TEST_F(Attack, AProcessUsingAnotherProcesssPrivateChannelIsRefused) {
    const Outcome o =
        run_worker(dir, policy(), {{"steal-private", dir / "ok/sub/file"}, {"read", dir / "ok/sub/file"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"child closed", "parent closed", "ok allowed"}));
    EXPECT_NE(o.err.find("does not own the channel"), std::string::npos) << o.err;
}

TEST_F(Attack, AttachingChannelsWithoutEndCannotExhaustTheBroker) {
    // The library's own channel takes one of the process's four; the flood gets the other three.
    const Outcome o = run_worker(dir, policy(),
                                 {{"read", dir / "ok/sub/file"},
                                  {"attach-flood", "50"},
                                  {"read", dir / "ok/sub/file"},
                                  {"fork", "read", dir / "ok/sub/file"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok allowed", "ok 3 refused=47 (EMFILE)", "ok allowed",
                                                   "ok allowed"}));
}

TEST_F(Attack, ChannelsAProcessClosedCountNoLongerAgainstItsCap) {
    // attach-flood closes the channels it got when it returns; the round trip on the library's channel
    // in between lets the broker see those closes before the next flood's attaches.
    const Outcome o = run_worker(dir, policy(),
                                 {{"read", dir / "ok/sub/file"},
                                  {"attach-flood", "10"},
                                  {"read", dir / "ok/sub/file"},
                                  {"attach-flood", "10"},
                                  {"read", dir / "ok/sub/file"},
                                  {"attach-flood", "10"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(),
              (std::vector<std::string>{"ok allowed", "ok 3 refused=7 (EMFILE)", "ok allowed",
                                        "ok 3 refused=7 (EMFILE)", "ok allowed", "ok 3 refused=7 (EMFILE)"}));
}

TEST_F(Attack, ABrokerOutOfDescriptorsDeclinesAttachesAndKeepsServing) {
    if (::access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "needs prlimit(1) to limit the broker";
#if defined(__SANITIZE_ADDRESS__)
    // The limit is counted to the descriptor for this broker; the sanitizer runtime's own change it.
    GTEST_SKIP() << "the descriptor budget does not hold under AddressSanitizer";
#endif
    write_file(dir / "policy.toml", policy());
    std::vector<std::string> argv{"/usr/bin/prlimit",  "--nofile=20", fdbroker_bin(), "run", "--policy",
                                  dir / "policy.toml", "--"};
    const auto w =
        worker_argv({{"read", dir / "ok/sub/file"}, {"attach-flood", "8"}, {"read", dir / "ok/sub/file"}});
    argv.insert(argv.end(), w.begin(), w.end());
    const Outcome o = run_command(argv);
    ASSERT_EQ(o.status, 0) << o.err;
    ASSERT_EQ(o.lines().size(), 3u) << o.out;
    EXPECT_EQ(o.lines()[0], "ok allowed");
    // Some attaches were declined (an EMFILE answer, or the attach lost because the broker could not
    // even receive its descriptor), none was treated as an attack.
    EXPECT_TRUE(o.lines()[1].starts_with("ok ")) << o.lines()[1];
    EXPECT_EQ(o.lines()[1].find("refused=0 "), std::string::npos) << o.lines()[1];
    EXPECT_EQ(o.lines()[2], "ok allowed");
    EXPECT_EQ(o.err.find("closing"), std::string::npos) << o.err;  // no channel was ended for it
}

TEST_F(Attack, GarbageAndOversizedFramesEndOnlyThatChannel) {
    const Outcome o = run_worker(dir, policy(), {{"garbage"}, {"oversized"}, {"read", dir / "ok/sub/file"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"closed", "closed", "ok allowed"}));
    EXPECT_NE(o.err.find("closing a worker channel"), std::string::npos) << o.err;
}

TEST_F(Attack, MalformedFramesAreLoggedAtALimitedRateAndSummarised) {
    // Each garbage frame ends a fresh channel; 300 of them may not flood the log with 300 lines.
    const Script script(300, {"garbage"});
    const Outcome o = run_worker(dir, policy(), script);
    ASSERT_EQ(o.status, 0) << o.err;
    std::size_t closings = 0;
    for (std::size_t at = o.err.find("closing a worker channel"); at != std::string::npos;
         at = o.err.find("closing a worker channel", at + 1))
        ++closings;
    EXPECT_GE(closings, 1u);
    EXPECT_LE(closings, 10u) << o.err;
    EXPECT_NE(o.err.find("more lines like the last (closing a channel a worker misused) were left out"),
              std::string::npos)
        << o.err;
}

TEST_F(Attack, AMalformedFrameFromOneWorkerDoesNotDisturbAnother) {
    const Outcome o = run_worker(dir, policy(), {{"garbage-while-busy", dir / "ok/sub/file", "3000"}});
    ASSERT_EQ(o.status, 0) << o.err;
    const auto lines = o.lines();
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "closed"), 20) << o.out;
    EXPECT_NE(std::find(lines.begin(), lines.end(), "child ok failures=0"), lines.end()) << o.out;
}

TEST_F(Attack, BrokerKilledMeansECONNRESETNotSIGPIPE) {
    // A serve-mode client outlives its broker (a run-mode worker does not: it is killed with it).
    if (!is_root() || ::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs root and setpriv";
    ::chmod(dir.path().c_str(), 0755);
    ServeBroker broker(dir,
                       "[profile.p]\nclients = { users = [65534] }\nread = [\"" + dir.path() + "/ok/**\"]\n");
    ASSERT_TRUE(broker.ready());
    Process client(broker.client(65534, 65534,
                                 {{"read", dir / "ok/sub/file"},
                                  {"wait-line"},
                                  {"read", dir / "ok/sub/file"},
                                  {"stat", dir / "ok/sub/file"}}));
    EXPECT_EQ(client.read_line(), "ok allowed");
    EXPECT_EQ(client.read_line(), "waiting");
    ::kill(broker.pid(), SIGKILL);
    client.write("go\n");
    EXPECT_EQ(client.read_line(), "ECONNRESET");
    EXPECT_EQ(client.read_line(), "ECONNRESET");
}

}  // namespace
}  // namespace fdbroker::test
