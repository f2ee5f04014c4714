// Socket brokering end to end: the real `fdbroker run`, a real worker asking for sockets through
// libfdbroker, real servers on loopback and unix sockets run by the test. Nothing leaves the machine.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "support/harness.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::test {
namespace {

using Lines = std::vector<std::string>;

// "a", "b" -> "\"a\", \"b\""
std::string list(const Lines& items) {
    std::string out;
    for (const std::string& item : items)
        out += (out.empty() ? "\"" : ", \"") + item + "\"";
    return out;
}

std::string own_netns() {
    char buf[64];
    const ssize_t n = ::readlink("/proc/self/ns/net", buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

class Sockets : public ::testing::Test {
  protected:
    std::string abstract(const char* what) const {
        return "fdbroker-sockets-test-" + std::to_string(::getpid()) + "-" + what;
    }
    TempDir dir;
};

TEST_F(Sockets, CheckReportsBadSocketRulesWhereTheyAre) {
    write_file(dir / "bad.toml",
               "version = 1\n[profile.web]\n"
               "connect = [\"tcp:db.internal:5432\", \"tcp:10.0.0.1/8:80\"]\n"
               "listen = [\"tcp:0.0.0.0:8100-8000\", { address = \"unix:/run/w.sock\", mode = \"rw\" }]\n"
               "connect_timeout = \"5 minutes\"\n");
    const Outcome o = run_command({fdbroker_bin(), "check", dir / "bad.toml"});
    EXPECT_EQ(o.status, 1);
    const std::string f = dir / "bad.toml";
    EXPECT_EQ(o.err,
              f +
                  ":3:17: error: 'connect' address 'tcp:db.internal:5432' has 'db.internal', which is not "
                  "an IPv4 address (host names are not allowed; write IPv6 as [addr])\n" +
                  f +
                  ":3:41: error: 'connect' address 'tcp:10.0.0.1/8:80' has host bits set beyond its /8 "
                  "prefix (the block is 10.0.0.0/8)\n" +
                  f +
                  ":4:24: error: 'listen' address 'tcp:0.0.0.0:8100-8000' has port range 8100-8000 "
                  "whose start is after its end\n" +
                  f +
                  ":4:75: error: 'mode' must be permission bits in octal, from \"0000\" to \"0777\": a "
                  "string such as \"0660\" or an octal integer such as 0o660\n" +
                  f +
                  ":5:19: error: 'connect_timeout' must be a whole number of seconds (5) or a string "
                  "with a unit (\"5s\", \"500ms\"), from 1 ms to 3600 s\n");
}

TEST_F(Sockets, AllowedAndDeniedAcrossFamilies) {
    int echo_port = 0, udp_port = 0;
    Server tcp(tcp_listener("127.0.0.1", 16, echo_port), Server::Mode::echo);
    Server udp(udp_socket(udp_port), Server::Mode::echo);
    const int closed = closed_port();
    Server ok(unix_listener(dir / "ok.sock"), Server::Mode::echo);
    Server other(unix_listener(dir / "other.sock"), Server::Mode::echo);
    Server abstract_ok(abstract_listener(abstract("ok")), Server::Mode::echo);
    Server abstract_other(abstract_listener(abstract("other")), Server::Mode::echo);
    write_file(dir / "plain.sock", "not a socket");
    ::mkdir((dir / "listen").c_str(), 0755);
    const std::string e = std::to_string(echo_port), u = std::to_string(udp_port), c = std::to_string(closed);

    // udp: rules need the profile to acknowledge that a UDP socket can send anywhere.
    const std::string policy =
        "version = 1\n[profile.default]\n"
        "connect = [" +
        list({"tcp:127.0.0.1:" + e, "tcp:127.0.0.1:" + c, "udp:127.0.0.1:" + u, "unix:" + dir / "ok.sock",
              "unix:" + dir / "missing.sock", "unix:" + dir / "plain.sock", "unix:@" + abstract("ok")}) +
        "]\n"
        "listen = [" +
        list({"tcp:127.0.0.1:" + e, "tcp:127.0.0.0/8:0", "udp:127.0.0.1:*", "unix:" + dir / "listen/*.sock",
              "unix:@" + abstract("listen")}) +
        "]\n"
        "deny = [\"" +
        dir / "listen/denied.sock" + "\"]\ndatagram_reach = \"any\"\n";
    const Outcome o = run_worker(dir, policy,
                                 {{"connect", "tcp:127.0.0.1:" + e},
                                  {"connect", "tcp:127.0.0.1:1"},
                                  {"connect", "tcp:127.0.0.2:" + e},
                                  {"connect", "udp:127.0.0.1:" + e},
                                  {"connect", "tcp:127.0.0.1:" + c},
                                  {"connect", "udp:127.0.0.1:" + u},
                                  {"connect", "unix:" + dir / "ok.sock"},
                                  {"connect", "unix:" + dir / "other.sock"},
                                  {"connect", "unix:" + dir / "missing.sock"},
                                  {"connect", "unix:" + dir / "plain.sock"},
                                  {"connect", "unix:" + dir / "listen/../ok.sock"},
                                  {"connect", "unix:@" + abstract("ok")},
                                  {"connect", "unix:@" + abstract("other")},
                                  {"connect", "tcp:localhost:" + e},
                                  {"connect", "tcp:127.0.0.1:*"},
                                  {"connect", "unix:ok.sock"},
                                  {"listen", "tcp:127.0.0.1:" + e, "5"},
                                  {"listen", "tcp:127.0.0.3:0", "5"},
                                  {"listen", "tcp:127.0.0.3:80", "5"},
                                  {"listen", "udp:127.0.0.1:0", "0"},
                                  {"listen", "unix:" + dir / "listen/a.sock", "5"},
                                  {"listen", "unix:" + dir / "listen/a.sock", "5"},
                                  {"listen", "unix:" + dir / "listen/denied.sock", "5"},
                                  {"listen", "unix:" + dir / "a.sock", "5"},
                                  {"listen", "unix:@" + abstract("listen"), "5"},
                                  {"connect", "unix:@" + abstract("listen")}},
                                 {"--audit", dir / "audit.jsonl"});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(),
              (Lines{"ok",         "EACCES", "EACCES",       "EACCES", "ECONNREFUSED", "ok",     "ok",
                     "EACCES",     "ENOENT", "ECONNREFUSED", "EACCES", "ok",           "EACCES", "EINVAL",
                     "EINVAL",     "EINVAL", "EADDRINUSE",   "ok",     "EACCES",       "ok",     "ok",
                     "EADDRINUSE", "EACCES", "EACCES",       "ok",     "EACCES"}));
    EXPECT_TRUE(exists(dir / "listen/a.sock"));
    EXPECT_FALSE(exists(dir / "listen/denied.sock"));
    EXPECT_FALSE(exists(dir / "a.sock"));

    // Every socket decision is in the audit stream, naming the rule that decided it.
    const std::string audit = read_file(dir / "audit.jsonl");
    const std::string file = dir / "policy.toml";
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = audit.find('\n', at)) != std::string::npos; ++at)
        ++lines;
    EXPECT_EQ(lines, o.lines().size()) << audit;
    EXPECT_NE(audit.find("\"op\":\"connect\",\"path\":\"tcp:127.0.0.1:" + e +
                         "\",\"decision\":\"allow\",\"rule\":\"" + file +
                         ":3\",\"pattern\":\"tcp:127.0.0.1:" + e + "\",\"kind\":\"connect\",\"errno\":0"),
              std::string::npos)
        << audit;
    EXPECT_NE(audit.find("\"op\":\"connect\",\"path\":\"tcp:127.0.0.2:" + e +
                         "\",\"decision\":\"deny\",\"rule\":null,\"errno\":13"),
              std::string::npos)
        << audit;
    EXPECT_NE(
        audit.find("\"op\":\"connect\",\"path\":\"tcp:127.0.0.1:" + c +
                   "\",\"decision\":\"allow\",\"rule\":\"" + file + ":3\",\"pattern\":\"tcp:127.0.0.1:" + c +
                   "\",\"kind\":\"connect\",\"errno\":111,\"error\":\"ECONNREFUSED\""),
        std::string::npos)
        << audit;
    EXPECT_NE(audit.find("\"op\":\"listen\",\"path\":\"tcp:127.0.0.3:0\",\"decision\":\"allow\",\"rule\":\"" +
                         file + ":4\",\"pattern\":\"tcp:127.0.0.0/8:0\",\"kind\":\"listen\",\"errno\":0"),
              std::string::npos)
        << audit;
    EXPECT_NE(audit.find("\"op\":\"listen\",\"path\":\"unix:" + dir / "listen/denied.sock" +
                         "\",\"decision\":\"deny\",\"rule\":\"" + file + ":5\",\"pattern\":\"" +
                         dir / "listen/denied.sock" + "\",\"kind\":\"deny\",\"errno\":13"),
              std::string::npos)
        << audit;
    EXPECT_NE(audit.find("\"op\":\"connect\",\"path\":\"tcp:localhost:" + e +
                         "\",\"decision\":\"deny\",\"rule\":null,\"errno\":22,\"error\":\"EINVAL\""),
              std::string::npos)
        << audit;
}

TEST_F(Sockets, TcpUnixAndAbstractRoundTrips) {
    int port = 0;
    Server tcp(tcp_listener("127.0.0.1", 16, port), Server::Mode::echo);
    Server path(unix_listener(dir / "echo.sock"), Server::Mode::echo);
    Server named(abstract_listener(abstract("echo")), Server::Mode::echo);
    const std::string tcp_address = "tcp:127.0.0.1:" + std::to_string(port);
    const std::string policy = "version = 1\n[profile.default]\nconnect = [" +
                               list({tcp_address, "unix:" + dir / "echo.sock", "unix:@" + abstract("echo")}) +
                               "]\n";
    const Outcome o = run_worker(dir, policy,
                                 {{"echo-through", tcp_address, "over tcp"},
                                  {"echo-through", "unix:" + dir / "echo.sock", "over a unix path"},
                                  {"echo-through", "unix:@" + abstract("echo"), "over an abstract name"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(),
              (Lines{"ok echo:over tcp", "ok echo:over a unix path", "ok echo:over an abstract name"}));
    EXPECT_EQ(tcp.served() + path.served() + named.served(), 3);
}

TEST_F(Sockets, UnixServersSeeTheWorkerAsTheirPeer) {
    if (!is_root()) GTEST_SKIP() << "a broker that is not root connects as itself anyway";
    // The broker connects with the worker's effective ids, so SO_PEERCRED names the worker (not root),
    // and the socket file's permissions are checked for the worker.
    Server path(unix_listener(dir / "peer.sock"), Server::Mode::peer_uid);
    Server closed(unix_listener(dir / "closed.sock"), Server::Mode::peer_uid);
    Server abstract_peer(abstract_listener(abstract("peer")), Server::Mode::peer_uid);
    ASSERT_EQ(::chmod((dir / "peer.sock").c_str(), 0777), 0);
    ASSERT_EQ(::chmod((dir / "closed.sock").c_str(), 0700), 0);
    const std::string policy =
        "version = 1\n[profile.default]\nconnect = [" +
        list({"unix:" + dir / "peer.sock", "unix:" + dir / "closed.sock", "unix:@" + abstract("peer")}) +
        "]\n";
    const Outcome o = run_worker(dir, policy,
                                 {{"echo-through", "unix:" + dir / "peer.sock", "who"},
                                  {"echo-through", "unix:@" + abstract("peer"), "who"},
                                  {"connect", "unix:" + dir / "closed.sock"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok uid=65534", "ok uid=65534", "EACCES"}));
}

TEST_F(Sockets, Ipv6AndIpv4MappedAddresses) {
    if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
    int v6_port = 0, v4_port = 0;
    Server v6(tcp_listener("::1", 16, v6_port), Server::Mode::echo);
    Server v4(tcp_listener("127.0.0.1", 16, v4_port), Server::Mode::echo);
    const std::string v6_address = "tcp:[::1]:" + std::to_string(v6_port);
    const std::string policy = "version = 1\n[profile.default]\nconnect = [" +
                               list({v6_address, "tcp:127.0.0.1:" + std::to_string(v4_port)}) + "]\n";
    // An IPv4-mapped address reaches IPv4, so an IPv4 rule decides it, however it is written.
    const Outcome o =
        run_worker(dir, policy,
                   {{"echo-through", v6_address, "six"},
                    {"echo-through", "tcp:[::ffff:127.0.0.1]:" + std::to_string(v4_port), "mapped"},
                    {"connect", "tcp:[::1]:" + std::to_string(v4_port)},
                    {"connect", "tcp:[::ffff:127.0.0.1]:" + std::to_string(v6_port)}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (Lines{"ok echo:six", "ok echo:mapped", "EACCES", "EACCES"}));
}

TEST_F(Sockets, UdpRoundTripsBothWays) {
    int port = 0;
    Server udp(udp_socket(port), Server::Mode::echo);
    const std::string policy =
        "version = 1\n[profile.default]\ndatagram_reach = \"any\"\nconnect = [\"udp:127.0.0.1:" +
        std::to_string(port) + "\"]\nlisten = [\"udp:127.0.0.1:0\"]\n";
    write_file(dir / "policy.toml", policy);
    std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
    const auto w = worker_argv({{"echo-through", "udp:127.0.0.1:" + std::to_string(port), "ping"},
                                {"serve-once", "udp:127.0.0.1:0", "0"}});
    argv.insert(argv.end(), w.begin(), w.end());
    Process worker(argv);
    EXPECT_EQ(worker.read_line(), "ok echo:ping");
    const std::string listening = worker.read_line();
    ASSERT_TRUE(listening.starts_with("listening ")) << listening;
    const int served_port = std::stoi(listening.substr(10));
    ASSERT_GT(served_port, 0);
    EXPECT_EQ(exchange_udp(served_port, "pong"), "served:pong");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), Lines{"ok served pong"});
}

TEST_F(Sockets, AnUnprivilegedWorkerServesOnAPortBelow1024) {
    if (!is_root()) GTEST_SKIP() << "needs a root broker (CAP_NET_BIND_SERVICE) and a worker that is not";
    const int port = free_privileged_port();
    if (port == 0) GTEST_SKIP() << "no free port below 1024 on 127.0.0.1";
    const std::string address = "tcp:127.0.0.1:" + std::to_string(port);
    write_file(dir / "policy.toml", "version = 1\n[profile.default]\nlisten = [\"" + address + "\"]\n");
    std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
    const auto w = worker_argv({{"uid"}, {"serve-once", address, "4"}});
    argv.insert(argv.end(), w.begin(), w.end());
    Process worker(argv);
    EXPECT_EQ(worker.read_line(), "ok 65534 65534");  // nobody: binding below 1024 is not its to do
    EXPECT_EQ(worker.read_line(), "listening " + std::to_string(port));
    EXPECT_EQ(exchange_tcp(port, "knock knock"), "served:knock knock");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), Lines{"ok served knock knock"});
}

TEST_F(Sockets, UnixListenersGetTheRulesModeAndOwner) {
    ::mkdir((dir / "srv").c_str(), 0755);
    const std::string app = dir / "srv/app.sock", plain = dir / "srv/plain.sock";
    const std::string policy =
        "version = 1\n[profile.default]\nlisten = [\n"
        "  { address = \"unix:" +
        app +
        "\", mode = \"0660\", user = 1234, group = 4321 },\n"
        "  \"unix:" +
        plain + "\", \"unix:@" + abstract("srv") + "\"]\n";
    write_file(dir / "policy.toml", policy);
    std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
    const auto w = worker_argv({{"serve-once", "unix:" + app, "4"},
                                {"listen", "unix:" + plain, "1"},
                                {"serve-once", "unix:@" + abstract("srv"), "4"}});
    argv.insert(argv.end(), w.begin(), w.end());
    Process worker(argv);
    ASSERT_EQ(worker.read_line(), "listening 0");
    struct ::stat st {};
    ASSERT_EQ(::lstat(app.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    if (is_root()) {
        EXPECT_EQ(st.st_uid, 1234u);
        EXPECT_EQ(st.st_gid, 4321u);
    }
    EXPECT_EQ(exchange_unix(app, "to a path"), "served:to a path");
    EXPECT_EQ(worker.read_line(), "ok served to a path");
    EXPECT_EQ(worker.read_line(), "ok");
    ASSERT_EQ(worker.read_line(), "listening 0");
    EXPECT_EQ(exchange_unix("@" + abstract("srv"), "to a name"), "served:to a name");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), Lines{"ok served to a name"});

    // Without a table: what bind(2) would make (the umask decides the mode), handed to the worker.
    const mode_t umask_now = ::umask(0);
    ::umask(umask_now);
    ASSERT_EQ(::lstat(plain.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0777u & ~umask_now);
    if (is_root()) {
        EXPECT_EQ(st.st_uid, 65534u);
        EXPECT_EQ(st.st_gid, 65534u);
    }
}

TEST_F(Sockets, APendingConnectStallsNobodyAndTimesOut) {
    write_file(dir / "file", "content");
    const Unanswering peer;
    const std::string address = "tcp:127.0.0.1:" + std::to_string(peer.port());
    write_file(dir / "policy.toml", "version = 1\n[profile.default]\nconnect_timeout = \"1s\"\nread = [\"" +
                                        dir / "file" + "\"]\nconnect = [\"" + address + "\"]\n");
    std::vector<std::string> argv{fdbroker_bin(), "run",         "--policy", dir / "policy.toml",
                                  "--audit",      dir / "audit", "--"};
    const auto w = worker_argv({{"pending-connect", address, dir / "file", "300"}});
    argv.insert(argv.end(), w.begin(), w.end());
    Process worker(argv);
    ASSERT_EQ(worker.read_line(), "connecting");
    ASSERT_TRUE(wait_for_syn_sent(peer.port())) << "the broker's connect never showed up";
    worker.write("go\n");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    // 600 opens by two processes completed while the connect was still waiting for its peer; then
    // the connect failed as connect(2) would, after the profile's connect_timeout.
    EXPECT_EQ(o.lines(), Lines{"ok opens-failed=0 child=ok connect-ended-during-opens=0 connect=ETIMEDOUT"});
    EXPECT_NE(read_file(dir / "audit")
                  .find("\"path\":\"" + address + "\",\"decision\":\"allow\",\"rule\":\"" +
                        dir / "policy.toml" + ":5\",\"pattern\":\"" + address +
                        "\",\"kind\":\"connect\",\"errno\":110,\"error\":\"ETIMEDOUT\""),
              std::string::npos)
        << read_file(dir / "audit");
}

TEST_F(Sockets, APendingConnectEndsWithItsSession) {
    write_file(dir / "file", "still served");
    const Unanswering peer;
    const std::string address = "tcp:127.0.0.1:" + std::to_string(peer.port());
    // A timeout far beyond the test: only the end of the child's session can end its connect.
    write_file(dir / "policy.toml", "version = 1\n[profile.default]\nconnect_timeout = 600\nread = [\"" +
                                        dir / "file" + "\"]\nconnect = [\"" + address + "\"]\n");
    std::vector<std::string> argv{fdbroker_bin(), "run",         "--policy", dir / "policy.toml",
                                  "--audit",      dir / "audit", "--"};
    const auto w = worker_argv({{"fork", "abandon-connect", address}, {"read", dir / "file"}});
    argv.insert(argv.end(), w.begin(), w.end());
    Process worker(argv);
    ASSERT_EQ(worker.read_line(), "connecting");
    ASSERT_TRUE(wait_for_syn_sent(peer.port()));
    worker.write("go\n");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), Lines{"ok still served"});
    EXPECT_NE(read_file(dir / "audit").find("\"path\":\"" + address + "\",\"decision\":\"allow\""),
              std::string::npos);
    EXPECT_NE(read_file(dir / "audit").find("\"errno\":125,\"error\":\"ECANCELED\""), std::string::npos)
        << read_file(dir / "audit");
}

TEST_F(Sockets, AWorkerWithoutANetworkReachesLoopbackThroughTheBroker) {
    int port = 0;
    Server tcp(tcp_listener("127.0.0.1", 16, port), Server::Mode::echo);
    const std::string address = "tcp:127.0.0.1:" + std::to_string(port);
    const std::string policy =
        "version = 1\n[profile.default]\nnamespaces = [\"net\"]\nconnect = [\"" + address + "\"]\n";
    write_file(dir / "check.toml", policy);
    const Outcome check = run_command({fdbroker_bin(), "check", dir / "check.toml"});
    if (check.status != 0)
        GTEST_SKIP() << "this fdbroker does not know namespaces = [\"net\"] yet: " << check.err;
    const Outcome o =
        run_worker(dir, policy, {{"netns"}, {"echo-through", address, "from an empty namespace"}});
    ASSERT_EQ(o.status, 0) << o.err;
    ASSERT_EQ(o.lines().size(), 2u) << o.out;
    EXPECT_TRUE(o.lines()[0].starts_with("ok net:[")) << o.lines()[0];
    EXPECT_NE(o.lines()[0], "ok " + own_netns());
    EXPECT_EQ(o.lines()[1], "ok echo:from an empty namespace");
}

}  // namespace
}  // namespace fdbroker::test
