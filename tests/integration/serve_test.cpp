// `fdbroker serve` as a service: clients of different users matched to their profiles, reload, socket
// activation, the socket's lock and stale-file handling, supervised pools, a drain that loses no
// request, and the broker's own confinement. Clients are the test worker run under other uids with
// setpriv(1); the broker's sd_notify messages arrive on a datagram socket the test owns.
#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/harness.hpp"
#include "support/serve_broker.hpp"

namespace fdbroker::test {
namespace {

using namespace std::chrono_literals;

int status_of(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The broker's children (pool workers), from /proc.
std::set<pid_t> children_of(pid_t parent) {
    std::set<pid_t> out;
    DIR* proc = ::opendir("/proc");
    if (!proc) return out;
    while (const dirent* e = ::readdir(proc)) {
        const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0) continue;
        std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
        std::string line;
        std::getline(stat, line);
        const std::size_t close = line.rfind(')');
        if (close == std::string::npos) continue;
        char state = 0;
        int ppid = 0;
        // The broker's keeper (sandbox/containment.hpp) is a child of the broker, not a pool worker.
        const bool keeper = line.find("(fdbroker-keeper)") != std::string::npos;
        if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent &&
            state != 'Z' && !keeper)
            out.insert(pid);
    }
    ::closedir(proc);
    return out;
}

class Serve : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "serve tests run clients under other uids (setpriv needs root)";
        if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
        for (const char* d : {"a", "b", "c"}) {
            ::mkdir((dir / d).c_str(), 0755);
            write_file(dir / (std::string(d) + "/file"), std::string("in ") + d);
        }
    }

    std::string socket() const { return address.empty() ? dir / "run/fdbroker.sock" : address; }

    void write_policy(const std::string& text) const {
        write_file(dir / "policy.toml", "version = 1\n" + text);
    }

    // The broker in the background, announcing readiness to `notify`.
    // `wrapper` runs before the broker (setpriv with options, say).
    // `options` are added to serve's own.
    std::unique_ptr<Process> start_broker(NotifySocket& notify, const std::vector<std::string>& wrapper = {},
                                          const std::vector<std::string>& options = {}) {
        std::vector<std::string> argv{"/usr/bin/env", "NOTIFY_SOCKET=" + notify.path()};
        argv.insert(argv.end(), wrapper.begin(), wrapper.end());
        for (const std::string& word :
             {std::string(fdbroker_bin()), std::string("serve"), std::string("--policy"), dir / "policy.toml",
              std::string("--socket"), socket(), std::string("--socket-mode"), std::string("0666")})
            argv.push_back(word);
        argv.insert(argv.end(), options.begin(), options.end());
        auto broker = std::make_unique<Process>(argv);
        EXPECT_TRUE(notify.wait_for("READY=1")) << "the broker never reported READY=1";
        return broker;
    }

    // The test worker as uid:gid, connecting to the broker's socket.
    std::vector<std::string> client(unsigned uid, unsigned gid, const Script& script) const {
        return client_argv(socket(), uid, gid, script);
    }
    Outcome run_client(unsigned uid, unsigned gid, const Script& script) const {
        return run_command(client(uid, gid, script));
    }

    static Outcome stop(Process& broker) {
        ::kill(broker.pid(), SIGTERM);
        return broker.wait();
    }

    TempDir dir;
    std::string address;  // set for an abstract socket
};

TEST_F(Serve, ClientsOfDifferentUsersGetTheirOwnProfilesAndOthersAreRefused) {
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() +
                 "/a/**\"]\n"
                 "[profile.bob]\nclients = { users = [1002] }\nread = [\"" +
                 dir.path() +
                 "/b/**\"]\n"
                 "[profile.media]\nclients = { groups = [2001] }\nread = [\"" +
                 dir.path() + "/c/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);

    const Outcome alice = run_client(1001, 1001, {{"read", dir / "a/file"}, {"read", dir / "b/file"}});
    EXPECT_EQ(alice.lines(), (std::vector<std::string>{"ok in a", "EACCES"})) << alice.err;
    const Outcome bob = run_client(1002, 1002, {{"read", dir / "b/file"}, {"read", dir / "a/file"}});
    EXPECT_EQ(bob.lines(), (std::vector<std::string>{"ok in b", "EACCES"})) << bob.err;
    const Outcome by_group = run_client(1004, 2001, {{"read", dir / "c/file"}, {"read", dir / "a/file"}});
    EXPECT_EQ(by_group.lines(), (std::vector<std::string>{"ok in c", "EACCES"})) << by_group.err;
    const Outcome stranger = run_client(1003, 1003, {{"read", dir / "a/file"}});
    ASSERT_EQ(stranger.lines().size(), 1u);
    EXPECT_FALSE(stranger.lines()[0].starts_with("ok")) << stranger.lines()[0];

    const Outcome stopped = stop(*broker);
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    EXPECT_NE(stopped.err.find("refused a client"), std::string::npos) << stopped.err;
    EXPECT_NE(stopped.err.find("uid 1003"), std::string::npos) << stopped.err;
}

TEST_F(Serve, ABootstrapChannelUsedByAProcessOfAnotherUidIsClosed) {
    write_policy("[profile.root]\nclients = { users = [0] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);

    // Connected as root; the connection then handed to a child that has become uid 1001.
    unique_fd connection(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    const sockaddr_un sa = unix_address(socket());
    ASSERT_EQ(::connect(connection.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    auto attach_on = [&](int bootstrap) {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return 2;
        unique_fd mine(pair[0]), theirs(pair[1]);
        wire::Request req;
        req.op = wire::Op::attach;
        req.id = 1;
        std::array<std::byte, wire::kRequestHeaderSize> frame{};
        const std::size_t size = wire::encode_request(req, frame);
        const proto::Credentials me = proto::own_credentials();
        proto::SendOptions options;
        options.fd = theirs.get();
        options.credentials = &me;
        if (proto::send(bootstrap, std::span(frame.data(), size), options) != 0) return 3;
        theirs.reset();
        std::array<std::byte, wire::kMaxReplySize + 1> buf;
        const proto::Received r = proto::receive(mine.get(), buf, 0, 0);
        return r.status == proto::RecvStatus::ok ? 0 : 1;  // 1: refused (the channel was dropped)
    };
    const pid_t child = ::fork();
    if (child == 0) {
        if (::setresgid(1001, 1001, 1001) != 0 || ::setresuid(1001, 1001, 1001) != 0) ::_exit(4);
        ::_exit(attach_on(connection.get()));
    }
    EXPECT_EQ(status_of(child), 1) << "the other uid's attach must be refused";
    // The broker ended the channel itself: even its rightful owner cannot use it any more.
    EXPECT_NE(attach_on(connection.get()), 0);

    const Outcome stopped = stop(*broker);
    EXPECT_NE(stopped.err.find("credentials of another user"), std::string::npos) << stopped.err;
}

TEST_F(Serve, OneUserCannotHoldMoreConnectionsThanItsQuota) {
    write_policy(
        "[profile.alice]\nclients = { users = [1001] }\nquota = { channels = 256 }\n[profile.root]\nclients "
        "= { users = [0] }\nread = "
        "[\"" +
        dir.path() + "/a/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    const sockaddr_un sa = unix_address(socket());
    int go[2], done[2];
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(done), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        if (::setresgid(1001, 1001, 1001) != 0 || ::setresuid(1001, 1001, 1001) != 0) ::_exit(255);
        std::vector<unique_fd> held;
        for (int i = 0; i < 300; ++i) {
            held.emplace_back(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
            if (::connect(held.back().get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
                ::_exit(254);
        }
        char byte = 0;
        if (::write(done[1], "c", 1) != 1 || ::read(go[0], &byte, 1) != 1) ::_exit(253);
        int refused = 0;
        for (const unique_fd& fd : held) {
            pollfd p{fd.get(), POLLIN, 0};
            refused += ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLIN)) != 0;
        }
        ::_exit(refused);
    }
    char byte = 0;
    ASSERT_EQ(::read(done[0], &byte, 1), 1);
    // Connections are accepted in order: once a later one (root's) is served, all 300 were judged.
    const Outcome root =
        run_command({"/usr/bin/env", "FDBROKER_SOCKET=" + socket(), worker_bin(), "read", dir / "a/file"});
    EXPECT_EQ(root.lines(), std::vector<std::string>{"ok in a"}) << root.err;
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    EXPECT_EQ(status_of(child), 300 - 256);
    for (const int fd : {go[0], go[1], done[0], done[1]})
        ::close(fd);
    const Outcome stopped = stop(*broker);
    EXPECT_NE(stopped.err.find("uid 1001 (profile 'alice') reached its quota of 256 channels"),
              std::string::npos)
        << stopped.err;
}

TEST_F(Serve, ReloadAppliesAGoodPolicyToConnectedClientsAndKeepsTheOldOneOverABrokenFile) {
    const std::string file = dir / "a/file";
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    Process alice(client(
        1001, 1001,
        {{"read", file}, {"wait-line"}, {"read", file}, {"wait-line"}, {"read", file}, {"stat", file}}));
    ASSERT_EQ(alice.read_line(), "ok in a");
    ASSERT_EQ(alice.read_line(), "waiting");

    // A good policy that no longer grants the file: the connected client's next request sees it.
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/b/**\"]\n");
    ::kill(broker->pid(), SIGHUP);
    ASSERT_TRUE(notify.wait_for("RELOADING=1"));
    ASSERT_TRUE(notify.wait_for("READY=1"));
    EXPECT_EQ(notify.matched(), "READY=1\nSTATUS=1 profiles, 1 worker channels, 0 pool workers");
    alice.write("\n");
    EXPECT_EQ(alice.read_line(), "EACCES");
    ASSERT_EQ(alice.read_line(), "waiting");

    // A broken file that would grant it again: rejected as a whole, the previous policy stays.
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() +
                 "/a/**\"]\nwrite = [\"relative/path\"]\n");
    ::kill(broker->pid(), SIGHUP);
    ASSERT_TRUE(notify.wait_for("READY=1"));
    alice.write("\n");
    EXPECT_EQ(alice.read_line(), "EACCES");
    EXPECT_EQ(alice.read_line(), "EACCES");
    EXPECT_EQ(alice.wait().status, 0);

    const Outcome stopped = stop(*broker);
    EXPECT_EQ(stopped.status, 0);
    EXPECT_NE(stopped.err.find("policy.toml:5:"), std::string::npos) << "the error's file:line:col\n"
                                                                     << stopped.err;
    EXPECT_NE(stopped.err.find("still serving the policy loaded before"), std::string::npos) << stopped.err;
}

TEST_F(Serve, StartsUnderSystemdSocketActivationAndServesARequest) {
    if (::access("/usr/bin/systemd-socket-activate", X_OK) != 0)
        GTEST_SKIP() << "needs systemd-socket-activate (Debian package systemd)";
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    ::mkdir((dir / "run").c_str(), 0755);
    // The socket belongs to the service manager; --socket is ignored when one is passed.
    // The activator passes on only the environment it is told to: the sanitizers' settings must reach
    // the broker too (LeakSanitizer would otherwise run at exit and need ptrace, which the broker's
    // own filter refuses).
    Process activator({"/usr/bin/systemd-socket-activate", "--seqpacket", "-E", "ASAN_OPTIONS", "-E",
                       "UBSAN_OPTIONS", "-l", socket(), fdbroker_bin(), "serve", "--policy",
                       dir / "policy.toml", "--socket", dir / "unused.sock"});
    for (int i = 0; i < 500 && !exists(socket()); ++i)
        std::this_thread::sleep_for(10ms);
    ::chmod(socket().c_str(), 0666);

    const Outcome alice = run_client(1001, 1001, {{"read", dir / "a/file"}, {"read", dir / "b/file"}});
    EXPECT_EQ(alice.lines(), (std::vector<std::string>{"ok in a", "EACCES"})) << alice.err;
    EXPECT_FALSE(exists(dir / "unused.sock"));
    const Outcome stopped = stop(activator);
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    EXPECT_NE(stopped.err.find("the socket passed by systemd"), std::string::npos) << stopped.err;
}

TEST_F(Serve, AStaleSocketFileIsReplacedWhileALiveBrokerMakesASecondOneRefuse) {
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    ::mkdir((dir / "run").c_str(), 0755);
    {  // What a crashed broker leaves: a socket file nobody listens on.
        unique_fd stale(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        const sockaddr_un sa = unix_address(socket());
        ASSERT_EQ(::bind(stale.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    }
    ASSERT_TRUE(exists(socket()));
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    EXPECT_EQ(run_client(1001, 1001, {{"read", dir / "a/file"}}).lines(),
              std::vector<std::string>{"ok in a"});

    const Outcome second =
        run_command({fdbroker_bin(), "serve", "--policy", dir / "policy.toml", "--socket", socket()});
    EXPECT_EQ(second.status, 1);
    EXPECT_NE(second.err.find("another fdbroker serve is running on " + socket()), std::string::npos)
        << second.err;
    // The first one is unharmed.
    EXPECT_EQ(run_client(1001, 1001, {{"read", dir / "a/file"}}).lines(),
              std::vector<std::string>{"ok in a"});
    EXPECT_EQ(stop(*broker).status, 0);
    EXPECT_FALSE(exists(socket())) << "the broker removes its socket file when it stops";
}

TEST_F(Serve, AnAbstractSocketServesAndASecondBrokerOnTheSameNameRefuses) {
    address = "@fdbroker-test-" + std::to_string(::getpid());
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    EXPECT_EQ(run_client(1001, 1001, {{"read", dir / "a/file"}}).lines(),
              std::vector<std::string>{"ok in a"});
    const Outcome second =
        run_command({fdbroker_bin(), "serve", "--policy", dir / "policy.toml", "--socket", address});
    EXPECT_EQ(second.status, 1);
    EXPECT_NE(second.err.find("another process is already listening on " + address), std::string::npos)
        << second.err;
    EXPECT_EQ(stop(*broker).status, 0);
}

TEST_F(Serve, RefusesToReplaceALiveListenerOrAFileThatIsNoSocket) {
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    ::mkdir((dir / "run").c_str(), 0755);
    // Someone else listening there without fdbroker's lock (another service, an older broker).
    unique_fd live(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    const sockaddr_un sa = unix_address(socket());
    ASSERT_EQ(::bind(live.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(live.get(), 1), 0);
    Outcome r = run_command({fdbroker_bin(), "serve", "--policy", dir / "policy.toml", "--socket", socket()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("another broker is already listening on"), std::string::npos) << r.err;
    EXPECT_TRUE(exists(socket()));

    const std::string plain = dir / "run/plain";
    write_file(plain, "data");
    r = run_command({fdbroker_bin(), "serve", "--policy", dir / "policy.toml", "--socket", plain});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("is not a socket"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(plain), "data");

    ::chmod((dir / "run").c_str(), 0777);
    r = run_command(
        {fdbroker_bin(), "serve", "--policy", dir / "policy.toml", "--socket", dir / "run/other.sock"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("others may write to it"), std::string::npos) << r.err;
}

TEST_F(Serve, APoolWorkerKilledWithSigkillIsRestartedAndItsOutputForwarded) {
    const std::string file = dir / "a/file";
    std::string command = "command = [\"" + std::string(worker_bin()) + "\"";
    for (const std::string& word : worker_argv({{"read", file}, {"uid"}, {"wait-line"}}))
        if (word != worker_bin()) command += ", \"" + word + "\"";
    command += "]\n";
    write_policy("[profile.pool]\n" + command + "instances = 2\nrestart = \"always\"\nread = [\"" +
                 dir.path() + "/a/**\"]\nruntime = [\"" + shared_library_dir() + "\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);

    std::set<pid_t> first;
    for (int i = 0; i < 1000 && first.size() != 2; ++i) {
        std::this_thread::sleep_for(10ms);
        first = children_of(broker->pid());
    }
    ASSERT_EQ(first.size(), 2u);
    const pid_t victim = *first.begin();
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    std::set<pid_t> after;
    for (int i = 0; i < 1000; ++i) {
        after = children_of(broker->pid());
        if (after.size() == 2 && !after.contains(victim)) break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(after.size(), 2u);
    EXPECT_EQ(after.count(victim), 0u) << "the killed worker was replaced";
    EXPECT_EQ(after.count(*first.rbegin()), 1u) << "the other worker kept running";
    // The replacement runs confined and reads through the broker like the first ones did.
    for (const pid_t p : after) {
        if (first.contains(p)) continue;
        EXPECT_TRUE(broker->wait_for_stderr(" " + std::to_string(p) + "] ok 65534 65534"))
            << "the restarted worker " << p << " did not report";
    }

    const Outcome stopped = stop(*broker);
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    EXPECT_NE(stopped.err.find("was killed by signal 9"), std::string::npos) << stopped.err;
    EXPECT_NE(stopped.err.find("restarting in"), std::string::npos) << stopped.err;
    EXPECT_NE(stopped.err.find("] ok in a"), std::string::npos) << "forwarded output\n" << stopped.err;
    EXPECT_NE(stopped.err.find("] ok 65534 65534"), std::string::npos) << "workers run as nobody\n"
                                                                       << stopped.err;
    EXPECT_TRUE(children_of(broker->pid()).empty());
}

TEST_F(Serve, APoolThatKeepsExitingBacksOffAndLeavesTheBrokerHealthy) {
    // Workers that exit at once, over and over: each exit's SIGCHLD and the end of its seccomp
    // listener tend to arrive in the same loop turn, which the broker must survive.
    write_policy(
        "[profile.flaky]\ncommand = [\"/bin/true\"]\ninstances = 8\nrestart = \"always\"\n"
        "[profile.alice]\nclients = { users = [1001] }\nread = [\"" +
        dir.path() + "/a/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    ASSERT_TRUE(broker->wait_for_stderr("restarting in 400 ms")) << "no third restart";
    EXPECT_EQ(run_client(1001, 1001, {{"read", dir / "a/file"}}).lines(),
              std::vector<std::string>{"ok in a"});
    const Outcome stopped = stop(*broker);
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    for (const char* delay : {"restarting in 100 ms", "restarting in 200 ms"})
        EXPECT_NE(stopped.err.find(delay), std::string::npos) << delay << "\n" << stopped.err;
}

TEST_F(Serve, AReloadKeepsThePoolsThatStayUnderTheirNewRulesAndStopsTheOthers) {
    const std::string a = dir / "a/file", b = dir / "b/file", c = dir / "c/file";
    auto pool = [&](const std::string& name, const Script& script, const std::string& reads) {
        std::string command = "command = [\"" + std::string(worker_bin()) + "\"";
        for (const std::string& word : worker_argv(script))
            if (word != worker_bin()) command += ", \"" + word + "\"";
        return "[profile." + name + "]\n" + command + "]\nrestart = \"never\"\nread = [\"" + reads +
               "\"]\nruntime = [\"" + shared_library_dir() + "\"]\n";
    };
    // The pool that stays waits for a line on the broker's standard input, which its workers share;
    // the one that goes never reads it.
    const Script waits{{"read", a}, {"wait-line"}, {"read", a}, {"read", b}};
    write_policy(pool("stays", waits, a) + pool("goes", {{"read", c}, {"sleep", "600000"}}, c));
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    ASSERT_TRUE(broker->wait_for_stderr("] ok in a"));
    ASSERT_TRUE(broker->wait_for_stderr("] ok in c"));

    write_policy(pool("stays", waits, b));
    ::kill(broker->pid(), SIGHUP);
    ASSERT_TRUE(notify.wait_for("READY=1"));
    ASSERT_TRUE(broker->wait_for_stderr("was killed by signal 15")) << "the pool that went was not stopped";
    // The worker that stayed kept its channel, and the new rules judge it.
    broker->write("\n");
    EXPECT_TRUE(broker->wait_for_stderr("] EACCES"));
    EXPECT_TRUE(broker->wait_for_stderr("] ok in b"));

    const Outcome stopped = stop(*broker);
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    EXPECT_NE(stopped.err.find("reload: profile 'goes' is gone"), std::string::npos) << stopped.err;
}

TEST_F(Serve, SigtermAnswersEveryRequestInFlightAndExitsZero) {
    const std::string file = dir / "a/file";
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    std::vector<std::unique_ptr<Process>> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(std::make_unique<Process>(client(1001, 1001, {{"in-flight", file}})));
        ASSERT_EQ(clients.back()->read_line(), "started");
    }
    ::kill(broker->pid(), SIGTERM);
    ASSERT_TRUE(notify.wait_for("STOPPING=1"));
    for (auto& c : clients) {
        const std::string line = c->read_line();
        EXPECT_TRUE(line.starts_with("ok answered=")) << line;
        EXPECT_NE(line.find(" lost=0 bad=0"), std::string::npos) << line;
    }
    const Outcome stopped = broker->wait();
    EXPECT_EQ(stopped.status, 0) << stopped.err;
}

TEST_F(Serve, TheBrokerConfinesItselfToWhatItsPolicyNeeds) {
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() +
                 "/a/**\"]\nlisten = [\"tcp:127.0.0.1:8080\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);
    const pid_t pid = broker->pid();
    EXPECT_EQ(proc_status_field(pid, "NoNewPrivs"), "1");
    EXPECT_EQ(proc_status_field(pid, "Seccomp"), "2");
    // dac_override dac_read_search fowner chown setuid setgid: bits 1, 2, 3, 0, 7, 6.
    EXPECT_EQ(proc_status_field(pid, "CapEff"), "00000000000000cf");
    EXPECT_EQ(proc_status_field(pid, "CapBnd"), "00000000000000cf");
    EXPECT_EQ(stop(*broker).status, 0);

    // A listen rule below 1024 keeps CAP_NET_BIND_SERVICE (bit 10) as well.
    write_policy("[profile.alice]\nclients = { users = [1001] }\nlisten = [\"tcp:127.0.0.1:443\"]\n");
    auto second = start_broker(notify);
    EXPECT_EQ(proc_status_field(second->pid(), "CapEff"), "00000000000004cf");
    EXPECT_EQ(stop(*second).status, 0);

    // Started without CAP_FOWNER (bit 3), as a unit's CapabilityBoundingSet= may do: the broker keeps
    // the rest and says what is missing.
    auto third = start_broker(notify, {"/usr/bin/setpriv", "--bounding-set=-fowner", "--"});
    EXPECT_EQ(proc_status_field(third->pid(), "CapEff"), "00000000000004c7");
    const Outcome stopped = stop(*third);
    EXPECT_EQ(stopped.status, 0);
    EXPECT_NE(stopped.err.find("started without: fowner"), std::string::npos) << stopped.err;
}

TEST_F(Serve, VerbosePrintsEachDistinctDenialOnce) {
    write_policy("[profile.alice]\nclients = { users = [1001] }\nread = [\"" + dir.path() + "/a/**\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify, {}, {"-v"});
    const Outcome alice = run_client(
        1001, 1001, {{"read", dir / "b/file"}, {"read", dir / "b/file"}, {"read", dir / "a/file"}});
    EXPECT_EQ(alice.lines(), (std::vector<std::string>{"EACCES", "EACCES", "ok in a"})) << alice.err;
    const Outcome stopped = stop(*broker);
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    const std::string line =
        "fdbroker: denied read " + (dir / "b/file") + " (profile alice): no rule grants read\n";
    const std::size_t first = stopped.err.find(line);
    EXPECT_NE(first, std::string::npos) << stopped.err;
    EXPECT_EQ(stopped.err.find(line, first + 1), std::string::npos) << stopped.err;
}

TEST_F(Serve, PoolWorkersInAPidNamespaceRunUnderAnInitAndStopOnSigterm) {
    const std::string file = dir / "a/file";
    std::string command = "command = [\"" + std::string(worker_bin()) + "\"";
    for (const std::string& word : worker_argv({{"pid"}, {"read", file}, {"wait-line"}}))
        if (word != worker_bin()) command += ", \"" + word + "\"";
    command += "]\n";
    write_policy("[profile.pool]\n" + command +
                 "instances = 2\nrestart = \"always\"\nnamespaces = [\"pid\"]\nread = [\"" + dir.path() +
                 "/a/**\"]\nruntime = [\"" + shared_library_dir() + "\"]\n");
    NotifySocket notify(dir / "notify.sock");
    auto broker = start_broker(notify);

    std::set<pid_t> first;
    for (int i = 0; i < 1000 && first.size() != 2; ++i) {
        std::this_thread::sleep_for(10ms);
        first = children_of(broker->pid());
    }
    ASSERT_EQ(first.size(), 2u);
    // Each worker's program is pid 2 of a namespace of its own, under the minimal init (pid 1), and
    // still reads through the broker.
    for (const pid_t p : first)
        EXPECT_TRUE(broker->wait_for_stderr(" " + std::to_string(p) + "] ok 2\n")) << "worker " << p;
    EXPECT_TRUE(broker->wait_for_stderr("] ok in a"));

    // The init killed takes its namespace with it; the pool starts a new one.
    const pid_t victim = *first.begin();
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    std::set<pid_t> after;
    for (int i = 0; i < 1000; ++i) {
        after = children_of(broker->pid());
        if (after.size() == 2 && !after.contains(victim)) break;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(after.size(), 2u);
    for (const pid_t p : after) {
        if (first.contains(p)) continue;
        EXPECT_TRUE(broker->wait_for_stderr(" " + std::to_string(p) + "] ok 2\n")) << "restarted " << p;
    }

    // A stop reaches the programs through their inits (they have no handler for SIGTERM), and the
    // broker drains with nothing left behind.
    const Outcome stopped = stop(*broker);
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    EXPECT_TRUE(children_of(broker->pid()).empty());
    for (const pid_t p : after)
        EXPECT_NE(::kill(p, 0), 0) << "pool init " << p << " outlived the broker";
}

}  // namespace
}  // namespace fdbroker::test
