// Attacks on what a brokered socket reaches beyond its rule: the identity a listening socket lends to
// every client, datagrams sent to addresses no rule names, a [::] listener that also takes IPv4, the
// any-address as a way to the local host, and stream protocols that associate without a connect.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::test {
namespace {

using Lines = std::vector<std::string>;

std::string abstract_name(const char* what) {
    return "fdbroker-reach-test-" + std::to_string(::getpid()) + "-" + what;
}

// What a client of a unix listening socket learns about the process that listens: the kernel's
// SO_PEERCRED and SO_PEERGROUPS, recorded when listen(2) was called.
struct Peer {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    std::string reply;  // what the server answered to "hi"
};

// Connects to a unix path or "@abstract" name, reads the peer's credentials, then sends "hi" and reads
// the answer (which ends the test worker's serve-once).
Peer peer_of(const std::string& where) {
    const unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const bool abstract = where.starts_with('@');
    const std::string name = abstract ? where.substr(1) : where;
    name.copy(sa.sun_path + (abstract ? 1 : 0), sizeof sa.sun_path - 2);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
    Peer peer;
    if (!s || ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
        ADD_FAILURE() << "connect " << where << ": " << std::strerror(errno);
        return peer;
    }
    ucred cred{};
    socklen_t cred_len = sizeof cred;
    EXPECT_EQ(::getsockopt(s.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cred_len), 0);
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    gid_t groups[64];
    socklen_t groups_len = sizeof groups;
    EXPECT_EQ(::getsockopt(s.get(), SOL_SOCKET, SO_PEERGROUPS, groups, &groups_len), 0);
    peer.groups.assign(groups, groups + groups_len / sizeof(gid_t));
    EXPECT_EQ(::send(s.get(), "hi", 2, MSG_NOSIGNAL), 2);
    ::shutdown(s.get(), SHUT_WR);
    char buf[256];
    ssize_t n = 0;
    while ((n = ::read(s.get(), buf, sizeof buf)) > 0)
        peer.reply.append(buf, static_cast<std::size_t>(n));
    return peer;
}

// Does a TCP connect from the test to ip:port succeed?
bool tcp_connects(const char* ip, int port) {
    const bool v6 = std::strchr(ip, ':') != nullptr;
    const unique_fd s(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET6, ip, &sin6->sin6_addr);
        len = sizeof *sin6;
    } else {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET, ip, &sin->sin_addr);
        len = sizeof *sin;
    }
    return s && ::connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0;
}

// `fdbroker run` of the test worker in the background, so the test can act while it serves.
std::vector<std::string> broker_argv(const TempDir& dir, const std::string& policy, const Script& script) {
    write_file(dir / "policy.toml", policy);
    std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
    const auto w = worker_argv(script);
    argv.insert(argv.end(), w.begin(), w.end());
    return argv;
}

// The broker started with supplementary groups of its own (when setpriv is there to give them), so that
// a client would see them in SO_PEERGROUPS if the broker listened as itself.
std::vector<std::string> with_groups(std::vector<std::string> argv) {
    if (::access("/usr/bin/setpriv", X_OK) == 0)
        argv.insert(argv.begin(), {"/usr/bin/setpriv", "--groups", "4242,4243", "--"});
    return argv;
}

class SocketReach : public ::testing::Test {
  protected:
    TempDir dir;
};

// --- (A) a listening unix socket lends the identity of whoever called listen(2) ---------------------

TEST_F(SocketReach, ClientsOfABrokeredUnixListenerSeeTheWorkerNotRoot) {
    if (!is_root()) GTEST_SKIP() << "a broker that is not root listens as itself anyway";
    ::mkdir((dir / "srv").c_str(), 0755);
    const std::string path = dir / "srv/app.sock", name = abstract_name("listen");
    const std::string policy =
        "version = 1\n[profile.default]\nlisten = [\"unix:" + path + "\", \"unix:@" + name + "\"]\n";
    Process worker(with_groups(broker_argv(
        dir, policy, {{"serve-once", "unix:" + path, "4"}, {"serve-once", "unix:@" + name, "4"}})));
    for (const std::string& where : {path, "@" + name}) {
        ASSERT_EQ(worker.read_line(), "listening 0") << where;
        const Peer peer = peer_of(where);
        // The worker runs as nobody (65534) with no supplementary groups; the broker is root (0),
        // here with groups 4242 and 4243.
        EXPECT_EQ(peer.uid, 65534u) << where;
        EXPECT_EQ(peer.gid, 65534u) << where;
        EXPECT_EQ(peer.groups, std::vector<gid_t>{}) << where << ": the broker's supplementary groups";
        EXPECT_EQ(peer.reply, "served:hi") << where;
        EXPECT_EQ(worker.read_line(), "ok served hi") << where;
    }
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

TEST_F(SocketReach, AServerOnABrokeredUnixConnectionSeesTheWorkerAndNoGroupsOfTheBrokers) {
    if (!is_root()) GTEST_SKIP() << "a broker that is not root connects as itself anyway";
    const Server server(unix_listener(dir / "peer.sock"), Server::Mode::peer_ids);
    ASSERT_EQ(::chmod((dir / "peer.sock").c_str(), 0777), 0);
    const std::string policy =
        "version = 1\n[profile.default]\nconnect = [\"unix:" + dir / "peer.sock" + "\"]\n";
    Process worker(
        with_groups(broker_argv(dir, policy, {{"echo-through", "unix:" + dir / "peer.sock", "who"}})));
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), Lines{"ok uid=65534 gid=65534 groups="});
}

// --- (B) a datagram socket reaches whatever its sendto or sendmsg names ------------------------------

// A unix datagram socket bound to `where` (a path, or "@name" for an abstract one).
unique_fd datagram_server(const std::string& where) {
    unique_fd server(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const bool abstract = where.starts_with('@');
    const std::string name = abstract ? where.substr(1) : where;
    name.copy(sa.sun_path + (abstract ? 1 : 0), sizeof sa.sun_path - 2);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
    EXPECT_EQ(::bind(server.get(), reinterpret_cast<sockaddr*>(&sa), len), 0) << where;
    if (!abstract) {
        EXPECT_EQ(::chmod(where.c_str(), 0666), 0);
    }
    return server;
}

TEST_F(SocketReach, AUnixDatagramServerIsNotGrantedWithoutTheProfilesAcknowledgement) {
    // /dev/log-like: datagram sockets the connect rules name. Holding a socket connected to one, a
    // worker could sendmsg to any other datagram socket its uid may write to.
    const std::string name = abstract_name("dgram");
    const unique_fd path_server = datagram_server(dir / "log.sock");
    const unique_fd abstract_server = datagram_server("@" + name);
    const std::string rule = "connect = [\"unix:" + dir / "log.sock" + "\", \"unix:@" + name + "\"]\n";
    const Script script{{"connect", "unix:" + dir / "log.sock"}, {"connect", "unix:@" + name}};

    const Outcome refused =
        run_worker(dir, "version = 1\n[profile.default]\n" + rule, script, {"--audit", dir / "audit"});
    EXPECT_EQ(refused.status, 0) << refused.err;
    EXPECT_EQ(refused.lines(), (Lines{"EACCES", "EACCES"}));
    EXPECT_TRUE(contains(refused.err, "datagram_reach")) << refused.err;
    EXPECT_TRUE(contains(read_file(dir / "audit"), "\"decision\":\"deny\",\"rule\":\"" + dir / "policy.toml" +
                                                       ":3\",\"pattern\":\"unix:" + dir / "log.sock" +
                                                       "\",\"kind\":\"connect\",\"errno\":13"))
        << read_file(dir / "audit");

    // Acknowledged: the documented behaviour, a datagram socket connected to the server.
    const Outcome granted =
        run_worker(dir, "version = 1\n[profile.default]\ndatagram_reach = \"any\"\n" + rule, script);
    EXPECT_EQ(granted.status, 0) << granted.err;
    EXPECT_EQ(granted.lines(), (Lines{"ok", "ok"}));
}

TEST_F(SocketReach, SendtoWithAnAddressIsRefusedUnderTheDefault) {
    int tcp_port = 0, udp_port = 0;
    const Server tcp(tcp_listener("127.0.0.1", 4, tcp_port), Server::Mode::echo);
    const unique_fd elsewhere = udp_socket(udp_port);
    const std::string address = "tcp:127.0.0.1:" + std::to_string(tcp_port);
    const Outcome o = run_worker(dir, "version = 1\n[profile.default]\nconnect = [\"" + address + "\"]\n",
                                 {{"sendto", address, std::to_string(udp_port)}});
    EXPECT_EQ(o.status, 0) << o.err;
    // The address makes it EACCES in the filter (the kernel would have ignored it on a TCP socket, and
    // used it on a datagram one); a send that names nothing is untouched.
    EXPECT_EQ(o.lines(), Lines{"EACCES ok"});
}

TEST_F(SocketReach, AUdpRuleWithoutTheAcknowledgementIsAPolicyError) {
    write_file(dir / "udp.toml",
               "version = 1\n[profile.metrics]\nconnect = [\"udp:10.20.0.1:8125\"]\n"
               "listen = [\"tcp:127.0.0.1:80\", \"udp:127.0.0.1:5353\"]\n");
    const Outcome o = run_command({fdbroker_bin(), "check", dir / "udp.toml"});
    EXPECT_EQ(o.status, 1) << o.err;
    const std::string why =
        " is a UDP socket, which can send datagrams to any address, not only this one; to grant it anyway, "
        "set datagram_reach = \"any\" in profile 'metrics'\n";
    EXPECT_EQ(o.err, dir / "udp.toml:3:13: error: 'connect' address 'udp:10.20.0.1:8125'" + why +
                         dir / "udp.toml:4:32: error: 'listen' address 'udp:127.0.0.1:5353'" + why);
    // `fdbroker run` refuses it the same way, before starting anything.
    const Outcome run = run_worker(dir, read_file(dir / "udp.toml"), {{"uid"}}, {"--profile", "metrics"});
    EXPECT_EQ(run.status, 125) << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
}

// --- (C) addresses that mean more than they say ----------------------------------------------------

TEST_F(SocketReach, AnIpv6ListenerTakesNoIpv4ClientUnlessTheRuleSaysDualStack) {
    if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
    for (const bool dual : {false, true}) {
        const std::string rule =
            dual ? "{ address = \"tcp:[::]:0\", dual_stack = true }" : std::string("\"tcp:[::]:0\"");
        Process worker(broker_argv(dir, "version = 1\n[profile.default]\nlisten = [" + rule + "]\n",
                                   {{"serve-once", "tcp:[::]:0", "4"}}));
        const std::string listening = worker.read_line();
        ASSERT_TRUE(listening.starts_with("listening ")) << listening;
        const int port = std::stoi(listening.substr(10));
        // The worker serves one connection (closed at once here), then exits.
        EXPECT_EQ(tcp_connects("127.0.0.1", port), dual) << "dual_stack=" << dual;
        if (!dual) {
            EXPECT_TRUE(tcp_connects("::1", port));
        }
        const Outcome o = worker.wait();
        EXPECT_EQ(o.status, 0) << o.err;
    }
}

TEST_F(SocketReach, TheAnyAddressIsJudgedAsTheLocalHostItReaches) {
    int port = 0;
    const Server local(tcp_listener("127.0.0.1", 4, port), Server::Mode::echo);
    const std::string p = std::to_string(port);
    // Rules for remote hosts; 0.0.0.0/5 also holds 0.0.0.0, which the kernel connects to 127.0.0.1.
    const std::string policy = "version = 1\n[profile.default]\nconnect = [\"tcp:10.9.9.9:" + p +
                               "\", \"tcp:0.0.0.0/5:" + p + "\", \"tcp:[::]:" + p + "\"]\n";
    const Outcome o = run_worker(dir, policy,
                                 {{"connect", "tcp:0.0.0.0:" + p},
                                  {"connect", "tcp:[::ffff:0.0.0.0]:" + p},
                                  {"connect", "tcp:[::]:" + p}},
                                 {"--audit", dir / "audit"});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (Lines{"EACCES", "EACCES", "EACCES"}));
    EXPECT_EQ(local.served(), 0);
    // The audit line names what the request would have reached.
    const std::string audit = read_file(dir / "audit");
    EXPECT_TRUE(
        contains(audit, "\"op\":\"connect\",\"path\":\"tcp:127.0.0.1:" + p + "\",\"decision\":\"deny\""))
        << audit;
    EXPECT_TRUE(contains(audit, "\"op\":\"connect\",\"path\":\"tcp:[::1]:" + p + "\",\"decision\":\"deny\""))
        << audit;
}

// --- transparent mode: the same, for an unmodified program's own sockets --------------------------

class TransparentReach : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
        if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
    }
    // fdbroker run --transparent of a Python script, in the background.
    std::vector<std::string> python(const std::string& script, const std::string& rules,
                                    const std::vector<std::string>& args = {}) const {
        write_file(dir / "script.py", script);
        write_file(dir / "policy.toml",
                   "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nread = [\"" + dir / "script.py" +
                       "\"]\n" + rules);
        std::vector<std::string> argv{fdbroker_bin(),  "run", "--policy",         dir / "policy.toml",
                                      "--transparent", "--",  "/usr/bin/python3", dir / "script.py"};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    TempDir dir;
};

TEST_F(TransparentReach, ClientsOfTheProgramsOwnUnixListenerSeeTheWorkerNotRoot) {
    const std::string name = abstract_name("transparent");
    Process worker(
        with_groups(python("import socket, sys\n"
                           "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                           "s.bind('\\0' + sys.argv[1])\n"
                           "s.listen(4)\n"
                           "print('listening', flush=True)\n"
                           "c, _ = s.accept()\n"
                           "c.recv(16)\n"
                           "c.sendall(b'served')\n",
                           "listen = [\"unix:@" + name + "\"]\n", {name})));
    ASSERT_EQ(worker.read_line(), "listening");
    const Peer peer = peer_of("@" + name);
    EXPECT_EQ(peer.uid, 65534u);
    EXPECT_EQ(peer.gid, 65534u);
    EXPECT_EQ(peer.groups, std::vector<gid_t>{});
    EXPECT_EQ(peer.reply, "served");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

TEST_F(TransparentReach, AnIpv6ListenerIsIpv6OnlyWhateverTheProgramAsked) {
    if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
    const int port = closed_port();
    Process worker(
        python("import socket, sys\n"
               "s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
               "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
               "s.bind(('::', int(sys.argv[1])))\n"
               "s.listen(4)\n"
               "print('listening', flush=True)\n"
               "sys.stdin.readline()\n",
               "listen = [\"tcp:[::]:" + std::to_string(port) + "\"]\n", {std::to_string(port)}));
    ASSERT_EQ(worker.read_line(), "listening");
    EXPECT_FALSE(tcp_connects("127.0.0.1", port));
    EXPECT_TRUE(tcp_connects("::1", port));
    worker.write("done\n");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

TEST_F(TransparentReach, TheAnyAddressIsJudgedAsTheLocalHostItReaches) {
    int port = 0;
    const Server local(tcp_listener("127.0.0.1", 4, port), Server::Mode::echo);
    const std::string p = std::to_string(port);
    Process worker(python(
        "import socket, sys\n"
        "port = int(sys.argv[1])\n"
        "for family, host in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):\n"
        "    try:\n"
        "        socket.socket(family).connect((host, port)); print(host, 'connected')\n"
        "    except OSError as e:\n"
        "        print(host, e.errno)\n",
        "connect = [\"tcp:10.9.9.9:" + p + "\", \"tcp:0.0.0.0/5:" + p + "\", \"tcp:[::]:" + p + "\"]\n",
        {p}));
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out, "0.0.0.0 13\n:: 13\n");
    EXPECT_EQ(local.served(), 0);
}

TEST_F(TransparentReach, OnlyPlainTcpAndUnixStreamSocketsAreMade) {
    Process worker(
        python("import socket\n"
               "A, S = socket.AF_INET, socket.SOCK_STREAM\n"
               "for name, args in (('tcp', (A, S, 0)), ('tcp6', (socket.AF_INET6, S, 6)),\n"
               "                   ('sctp', (A, S, 132)), ('sctp6', (socket.AF_INET6, S, 132)),\n"
               "                   ('mptcp', (A, S, 262)), ('unix', (socket.AF_UNIX, S, 0)),\n"
               "                   ('unix1', (socket.AF_UNIX, S, 1))):\n"
               "    try:\n"
               "        socket.socket(*args).close(); print(name, 'ok')\n"
               "    except OSError as e:\n"
               "        print(name, e.errno)\n"
               "for proto in (0, 1):\n"
               "    try:\n"
               "        socket.socketpair(socket.AF_UNIX, S, proto); print('pair', proto, 'ok')\n"
               "    except OSError as e:\n"
               "        print('pair', proto, e.errno)\n",
               ""));
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out,
              "tcp ok\ntcp6 ok\nsctp 13\nsctp6 13\nmptcp 13\nunix ok\nunix1 13\npair 0 ok\npair 1 13\n");
}

}  // namespace
}  // namespace fdbroker::test
