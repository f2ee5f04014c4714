// Socket addresses: requests parsed strictly, rules compiled and matched at every edge, and every
// diagnostic of a bad `connect` / `listen` entry at its exact line and column.
#include "policy/address.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::policy {
namespace {

using Lines = std::vector<std::string>;

std::optional<AddressPattern> rule(std::string_view text) {
    AddressPattern::Error error;
    std::optional<AddressPattern> pattern = AddressPattern::parse(text, error);
    EXPECT_TRUE(pattern) << text << ": " << error.message;
    return pattern;
}

// Does the rule cover the request? Both must be well formed.
bool covers(std::string_view rule_text, std::string_view request) {
    const std::optional<AddressPattern> pattern = rule(rule_text);
    SocketAddress address;
    EXPECT_TRUE(parse_socket_address(request, address)) << request;
    return pattern && pattern->matches(address);
}

// The problem a rule has: "OFFSET: MESSAGE".
std::string problem(std::string_view text) {
    AddressPattern::Error error;
    const std::optional<AddressPattern> pattern = AddressPattern::parse(text, error);
    EXPECT_FALSE(pattern) << text;
    return std::to_string(error.offset) + ": " + error.message;
}

using test::policy_text::errors;

const Profile& loaded(const LoadResult& result) {
    for (const Diagnostic& d : result.errors)
        ADD_FAILURE() << d.str();
    static const Profile none{};
    if (!result.policy || !result.policy->profile("p")) return none;
    return *result.policy->profile("p");
}

// --- requests -------------------------------------------------------------------------------------

TEST(SocketAddress, ParsesEveryForm) {
    SocketAddress a;
    ASSERT_TRUE(parse_socket_address("tcp:127.0.0.1:6379", a));
    EXPECT_EQ(a.transport, Transport::tcp);
    EXPECT_FALSE(a.ipv6);
    EXPECT_EQ(a.port, 6379);
    EXPECT_EQ(a.ip[0], 127);
    EXPECT_EQ(a.ip[3], 1);

    ASSERT_TRUE(parse_socket_address("udp:[::1]:53", a));
    EXPECT_EQ(a.transport, Transport::udp);
    EXPECT_TRUE(a.ipv6);
    EXPECT_EQ(a.port, 53);
    EXPECT_EQ(a.ip[15], 1);

    ASSERT_TRUE(parse_socket_address("tcp:0.0.0.0:0", a));
    EXPECT_EQ(a.port, 0);
    ASSERT_TRUE(parse_socket_address("tcp:255.255.255.255:65535", a));
    EXPECT_EQ(a.port, 65535);

    ASSERT_TRUE(parse_socket_address("unix:/run/postgresql/.s.PGSQL.5432", a));
    EXPECT_EQ(a.transport, Transport::unix_path);
    EXPECT_EQ(a.name, "/run/postgresql/.s.PGSQL.5432");

    ASSERT_TRUE(parse_socket_address("unix:@bus/x y", a));
    EXPECT_EQ(a.transport, Transport::unix_abstract);
    EXPECT_EQ(a.name, "bus/x y");
    ASSERT_TRUE(parse_socket_address("unix:@" + std::string(kMaxUnixName, 'n'), a));
}

TEST(SocketAddress, RefusesWhatIsNotOneConcreteAddress) {
    for (const std::string& text : std::vector<std::string>{"",
                                                            "tcp",
                                                            "tcp:",
                                                            "tcp:1.2.3.4",
                                                            "tcp:1.2.3.4:",
                                                            "tcp:1.2.3.4:65536",
                                                            "tcp:1.2.3.4:-1",
                                                            "tcp:1.2.3.4:+80",
                                                            "tcp:1.2.3.4:80 ",
                                                            "tcp:1.2.3.4:0x50",
                                                            "tcp:1.2.3.4:*",
                                                            "tcp:1.2.3.4:80-81",
                                                            "tcp:10.0.0.0/8:80",
                                                            "tcp:localhost:80",
                                                            "tcp:1.2.3:80",
                                                            "tcp:01.2.3.4:80",
                                                            "tcp:[::1]:",
                                                            "tcp:[::1]80",
                                                            "tcp:[::1:80",
                                                            "tcp:::1:80",
                                                            "tcp:[1.2.3.4]:80",
                                                            "tcp:[fe80::1%eth0]:80",
                                                            "tcp:[fd00::/8]:80",
                                                            "TCP:1.2.3.4:80",
                                                            "http:1.2.3.4:80",
                                                            "sctp:1.2.3.4:80",
                                                            "unix:",
                                                            "unix:relative/path",
                                                            "unix:@",
                                                            "unix:@" + std::string(kMaxUnixName + 1, 'n'),
                                                            std::string("unix:@a\0b", 9)}) {
        SocketAddress a;
        EXPECT_FALSE(parse_socket_address(text, a)) << text;
    }
}

TEST(SocketAddress, AUnixPathThatIsNotNormalParsesButMatchesNothing) {
    SocketAddress a;
    for (const char* text : {"unix:/run/../etc/s", "unix:/run//s", "unix:/run/s/", "unix:/run/./s"}) {
        ASSERT_TRUE(parse_socket_address(text, a)) << text;
        EXPECT_FALSE(rule("unix:/**")->matches(a)) << text;
    }
}

// --- matching -------------------------------------------------------------------------------------

TEST(AddressMatch, CidrEdges) {
    EXPECT_TRUE(covers("tcp:10.0.0.0/8:80", "tcp:10.0.0.0:80"));
    EXPECT_TRUE(covers("tcp:10.0.0.0/8:80", "tcp:10.255.255.255:80"));
    EXPECT_FALSE(covers("tcp:10.0.0.0/8:80", "tcp:11.0.0.1:80"));
    EXPECT_FALSE(covers("tcp:10.0.0.0/8:80", "tcp:9.255.255.255:80"));
    EXPECT_TRUE(covers("tcp:192.168.4.0/22:80", "tcp:192.168.7.255:80"));
    EXPECT_FALSE(covers("tcp:192.168.4.0/22:80", "tcp:192.168.8.0:80"));
    EXPECT_FALSE(covers("tcp:192.168.4.0/22:80", "tcp:192.168.3.255:80"));
    EXPECT_TRUE(covers("tcp:10.1.2.3/32:80", "tcp:10.1.2.3:80"));
    EXPECT_FALSE(covers("tcp:10.1.2.3/32:80", "tcp:10.1.2.4:80"));
    EXPECT_TRUE(covers("tcp:10.1.2.3:80", "tcp:10.1.2.3:80"));  // a bare address is a /32
    EXPECT_FALSE(covers("tcp:10.1.2.3:80", "tcp:10.1.2.2:80"));
    EXPECT_TRUE(covers("tcp:0.0.0.0/0:80", "tcp:1.2.3.4:80"));
    EXPECT_TRUE(covers("tcp:0.0.0.0/0:80", "tcp:255.255.255.255:80"));
    EXPECT_FALSE(covers("tcp:0.0.0.0:80", "tcp:1.2.3.4:80"));  // 0.0.0.0 itself, not "any"
}

TEST(AddressMatch, PortEdges) {
    EXPECT_FALSE(covers("tcp:127.0.0.1:8000-8100", "tcp:127.0.0.1:7999"));
    EXPECT_TRUE(covers("tcp:127.0.0.1:8000-8100", "tcp:127.0.0.1:8000"));
    EXPECT_TRUE(covers("tcp:127.0.0.1:8000-8100", "tcp:127.0.0.1:8050"));
    EXPECT_TRUE(covers("tcp:127.0.0.1:8000-8100", "tcp:127.0.0.1:8100"));
    EXPECT_FALSE(covers("tcp:127.0.0.1:8000-8100", "tcp:127.0.0.1:8101"));
    EXPECT_TRUE(covers("tcp:127.0.0.1:8000-8000", "tcp:127.0.0.1:8000"));
    EXPECT_TRUE(covers("tcp:127.0.0.1:*", "tcp:127.0.0.1:0"));
    EXPECT_TRUE(covers("tcp:127.0.0.1:*", "tcp:127.0.0.1:65535"));
    EXPECT_FALSE(covers("tcp:127.0.0.1:*", "tcp:127.0.0.2:1"));
    EXPECT_TRUE(covers("tcp:127.0.0.1:0", "tcp:127.0.0.1:0"));  // "any port the kernel picks"
    EXPECT_FALSE(covers("tcp:127.0.0.1:80", "tcp:127.0.0.1:0"));
    EXPECT_FALSE(covers("tcp:127.0.0.1:80", "tcp:127.0.0.1:81"));
}

TEST(AddressMatch, TransportsNeverMix) {
    EXPECT_FALSE(covers("tcp:127.0.0.1:53", "udp:127.0.0.1:53"));
    EXPECT_FALSE(covers("udp:127.0.0.1:53", "tcp:127.0.0.1:53"));
    EXPECT_TRUE(covers("udp:127.0.0.1:53", "udp:127.0.0.1:53"));
    EXPECT_FALSE(covers("unix:/run/x", "unix:@/run/x"));
    EXPECT_FALSE(covers("unix:@/run/x", "unix:/run/x"));
}

TEST(AddressMatch, Ipv6) {
    EXPECT_TRUE(covers("tcp:[::1]:80", "tcp:[::1]:80"));
    EXPECT_TRUE(covers("tcp:[::1]:80", "tcp:[0:0:0:0:0:0:0:1]:80"));  // same address, other spelling
    EXPECT_FALSE(covers("tcp:[::1]:80", "tcp:[::2]:80"));
    EXPECT_FALSE(covers("tcp:[::1]:80", "tcp:127.0.0.1:80"));
    EXPECT_TRUE(covers("tcp:[fd00::/8]:80", "tcp:[fd12:3456::1]:80"));
    EXPECT_TRUE(covers("tcp:[fd00::/8]:80", "tcp:[fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80"));
    EXPECT_FALSE(covers("tcp:[fd00::/8]:80", "tcp:[fe00::1]:80"));
    EXPECT_FALSE(covers("tcp:[fd00::/8]:80", "tcp:[fc00::1]:80"));
    EXPECT_TRUE(covers("tcp:[2001:db8::/33]:80", "tcp:[2001:db8:7fff::1]:80"));
    EXPECT_FALSE(covers("tcp:[2001:db8::/33]:80", "tcp:[2001:db8:8000::1]:80"));
    EXPECT_TRUE(covers("tcp:[::/0]:80", "tcp:[2001:db8::1]:80"));
    EXPECT_FALSE(covers("tcp:[::/0]:80", "tcp:1.2.3.4:80"));
}

TEST(AddressMatch, Ipv4MappedIpv6IsJudgedAsTheIpv4AddressItReaches) {
    EXPECT_TRUE(covers("tcp:127.0.0.1:6379", "tcp:[::ffff:127.0.0.1]:6379"));
    EXPECT_TRUE(covers("tcp:10.0.0.0/8:1", "tcp:[::ffff:10.9.8.7]:1"));
    EXPECT_FALSE(covers("tcp:10.0.0.0/8:1", "tcp:[::ffff:11.0.0.1]:1"));
    // An IPv6 rule, however wide, never opens IPv4 through the mapped range.
    EXPECT_FALSE(covers("tcp:[::/0]:6379", "tcp:[::ffff:127.0.0.1]:6379"));
    EXPECT_FALSE(covers("tcp:[::/80]:6379", "tcp:[::ffff:127.0.0.1]:6379"));
}

// A connect to an unspecified address reaches the local host (the kernel's choice), so it is judged as
// the loopback address it reaches; the IPv4-mapped form composes with the IPv4 judgement.
TEST(AddressMatch, AnUnspecifiedConnectTargetIsTheLoopbackItReaches) {
    const auto reached = [](std::string_view request) {
        SocketAddress a;
        EXPECT_TRUE(parse_socket_address(request, a)) << request;
        const bool changed = reach_unspecified_as_loopback(a);
        return std::string(changed ? "" : "same ") + std::string(InetText(a).view());
    };
    EXPECT_EQ(reached("tcp:0.0.0.0:80"), "tcp:127.0.0.1:80");
    EXPECT_EQ(reached("udp:0.0.0.0:53"), "udp:127.0.0.1:53");
    EXPECT_EQ(reached("tcp:[::]:80"), "tcp:[::1]:80");
    EXPECT_EQ(reached("tcp:[0:0:0:0:0:0:0:0]:1"), "tcp:[::1]:1");
    EXPECT_EQ(reached("tcp:[::ffff:0.0.0.0]:80"), "tcp:[::ffff:127.0.0.1]:80");
    EXPECT_EQ(reached("tcp:10.9.9.9:80"), "same tcp:10.9.9.9:80");
    EXPECT_EQ(reached("tcp:[::ffff:10.0.0.1]:80"), "same tcp:[::ffff:10.0.0.1]:80");
    EXPECT_EQ(reached("tcp:[::2]:80"), "same tcp:[::2]:80");
    EXPECT_EQ(reached("tcp:[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"),
              "same tcp:[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    SocketAddress unix_address;
    ASSERT_TRUE(parse_socket_address("unix:@x", unix_address));
    EXPECT_FALSE(reach_unspecified_as_loopback(unix_address));

    SocketAddress mapped;
    ASSERT_TRUE(parse_socket_address("tcp:[::ffff:0.0.0.0]:80", mapped));
    ASSERT_TRUE(reach_unspecified_as_loopback(mapped));
    EXPECT_TRUE(rule("tcp:127.0.0.1:80")->matches(mapped));
    EXPECT_TRUE(rule("tcp:127.0.0.0/8:80")->matches(mapped));
    EXPECT_FALSE(rule("tcp:[::/0]:80")->matches(mapped));
    EXPECT_FALSE(rule("tcp:10.9.9.9:80")->matches(mapped));
}

TEST(AddressMatch, AbstractNamesMatchExactly) {
    EXPECT_TRUE(covers("unix:@app", "unix:@app"));
    EXPECT_FALSE(covers("unix:@app", "unix:@app2"));
    EXPECT_FALSE(covers("unix:@app", "unix:@ap"));
    EXPECT_FALSE(covers("unix:@app", "unix:@App"));
    EXPECT_FALSE(covers("unix:@app*", "unix:@app2"));  // no wildcards in abstract names
    EXPECT_TRUE(covers("unix:@app*", "unix:@app*"));
}

TEST(AddressMatch, UnixPathsUseFilePatterns) {
    EXPECT_TRUE(covers("unix:/run/app.sock", "unix:/run/app.sock"));
    EXPECT_FALSE(covers("unix:/run/app.sock", "unix:/run/app.sock2"));
    EXPECT_FALSE(covers("unix:/run/app.sock", "unix:/run/app"));
    EXPECT_FALSE(covers("unix:/run/app.sock", "unix:/run/app.sock/x"));
    EXPECT_TRUE(covers("unix:/run/*.sock", "unix:/run/a.sock"));
    EXPECT_FALSE(covers("unix:/run/*.sock", "unix:/run/a/b.sock"));
    EXPECT_TRUE(covers("unix:/run/app/**", "unix:/run/app/x/y.sock"));
    EXPECT_TRUE(covers("unix:/run/**/s?", "unix:/run/s1"));
    EXPECT_TRUE(covers("unix:/run/**/s?", "unix:/run/a/b/s1"));
    EXPECT_FALSE(covers("unix:/run/**/s?", "unix:/run/a/b/s12"));
    EXPECT_FALSE(covers("unix:/run/**/s?", "unix:/run/a/s1/x"));
}

TEST(AddressMatch, PatternMatchesTheWholePath) {
    const auto matches = [](std::string_view pattern_text, std::string_view path) {
        Pattern::Error error;
        const std::optional<Pattern> pattern = Pattern::parse(pattern_text, error);
        EXPECT_TRUE(pattern) << error.message;
        return pattern && pattern_matches(*pattern, path);
    };
    EXPECT_TRUE(matches("/", "/"));
    EXPECT_FALSE(matches("/", "/a"));
    EXPECT_TRUE(matches("/**", "/"));
    EXPECT_TRUE(matches("/**", "/a/b"));
    EXPECT_TRUE(matches("/a/**", "/a"));
    EXPECT_FALSE(matches("/a/**", "/"));
    EXPECT_FALSE(matches("/a/**", "/ab"));
    EXPECT_TRUE(matches("/a/**/z", "/a/z"));
    EXPECT_TRUE(matches("/a/**/z", "/a/b/c/z"));
    EXPECT_FALSE(matches("/a/**/z", "/a/b/zz"));
    EXPECT_FALSE(matches("/a/**/z", "/a/z/y"));
    EXPECT_TRUE(matches("/a/**/b/**/c", "/a/x/b/y/b/c"));
    EXPECT_FALSE(matches("/a/**/b/**/c", "/a/x/c/b"));
    EXPECT_TRUE(matches("/logs/**/*.log", "/logs/2024/01/x.log"));
    EXPECT_FALSE(matches("/logs/**/*.log", "/logs/x.txt"));
}

TEST(AddressMatch, FirstRuleInFileOrderDecides) {
    const LoadResult result = Policy::load_string(
        "version = 1\n[profile.p]\nconnect = [\"tcp:10.0.0.0/8:*\", \"tcp:10.1.0.0/16:80\", \"unix:@x\"]\n",
        "p.toml");
    const Profile& p = loaded(result);
    ASSERT_EQ(p.connect_rules().size(), 3U);
    SocketAddress a;
    ASSERT_TRUE(parse_socket_address("tcp:10.1.2.3:80", a));
    EXPECT_EQ(find_address_rule(p.connect_rules(), a), &p.connect_rules()[0]);
    ASSERT_TRUE(parse_socket_address("unix:@x", a));
    EXPECT_EQ(find_address_rule(p.connect_rules(), a), &p.connect_rules()[2]);
    ASSERT_TRUE(parse_socket_address("tcp:11.0.0.1:80", a));
    EXPECT_EQ(find_address_rule(p.connect_rules(), a), nullptr);
    EXPECT_EQ(find_address_rule(p.listen_rules(), a), nullptr);
}

// --- rule diagnostics -----------------------------------------------------------------------------

TEST(AddressRule, ProblemsAndWhereTheyAre) {
    EXPECT_EQ(problem("http://x"), "0: must start with 'tcp:', 'udp:' or 'unix:'");
    EXPECT_EQ(problem("tcp:1.2.3.4"), "11: has no port after the host (write tcp:HOST:PORT)");
    EXPECT_EQ(problem("tcp:[::1]"), "9: has no port after the host (write tcp:[IPv6]:PORT)");
    EXPECT_EQ(problem("tcp:[::1:80"), "4: has '[' without a closing ']'");
    EXPECT_EQ(problem("tcp:localhost:80"),
              "4: has 'localhost', which is not an IPv4 address (host names are not allowed; write IPv6 as "
              "[addr])");
    EXPECT_EQ(problem("tcp:[::g]:80"), "5: has '::g', which is not an IPv6 address");
    EXPECT_EQ(problem("tcp:10.0.0.0/33:80"), "13: has prefix length '/33'; it must be a number from 0 to 32");
    EXPECT_EQ(problem("tcp:10.0.0.0/:80"), "13: has prefix length '/'; it must be a number from 0 to 32");
    EXPECT_EQ(problem("tcp:[fd00::/129]:80"),
              "12: has prefix length '/129'; it must be a number from 0 to 128");
    EXPECT_EQ(problem("tcp:10.0.0.1/8:80"),
              "4: has host bits set beyond its /8 prefix (the block is 10.0.0.0/8)");
    EXPECT_EQ(problem("tcp:[fd00::1/8]:80"),
              "5: has host bits set beyond its /8 prefix (the block is fd00::/8)");
    EXPECT_EQ(problem("tcp:[::ffff:10.0.0.1]:80"),
              "5: has an IPv4-mapped IPv6 address, which reaches IPv4: write the IPv4 address instead");
    EXPECT_EQ(problem("tcp:1.2.3.4:"), "12: has an empty port");
    EXPECT_EQ(problem("tcp:1.2.3.4:http"),
              "12: has port 'http', which is not a number, a range such as 8000-8100, or '*'");
    EXPECT_EQ(problem("tcp:1.2.3.4:65536"), "12: has port 65536, out of range (0 to 65535)");
    EXPECT_EQ(problem("tcp:1.2.3.4:80-99999"), "15: has port 99999, out of range (0 to 65535)");
    EXPECT_EQ(problem("tcp:1.2.3.4:80-"),
              "15: has port '80-', which is not a number, a range such as 8000-8100, or '*'");
    EXPECT_EQ(problem("tcp:1.2.3.4:8100-8000"), "12: has port range 8100-8000 whose start is after its end");
    EXPECT_EQ(problem("udp:1.2.3.4:**"),
              "12: has port '**', which is not a number, a range such as 8000-8100, or '*'");
    EXPECT_EQ(problem("unix:"), "5: must name a path (unix:/path) or an abstract name (unix:@name)");
    EXPECT_EQ(problem("unix:run/x"), "5: must name a path (unix:/path) or an abstract name (unix:@name)");
    EXPECT_EQ(problem("unix:@"), "6: has an empty abstract name");
    EXPECT_EQ(problem("unix:@" + std::string(kMaxUnixName + 1, 'n')),
              "113: has an abstract name of 108 bytes; the limit is 107");
    EXPECT_EQ(problem("unix:/run/../x"),
              "10: is not a valid socket path: pattern '/run/../x' must not contain '..' components");
    EXPECT_EQ(problem("unix:/run/"), "9: is not a valid socket path: pattern '/run/' must not end with '/'");
}

TEST(AddressRule, DiagnosticsPointAtTheOffendingCharacter) {
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nconnect = [\"tcp:10.0.0.1/8:80\", \"tcp:1.2.3.4:8100-8000\"]\n"
               "listen = [\"unix:/run//x\", \"tcp:[::1]:http\"]\n"),
        (Lines{"p.toml:3:17: error: 'connect' address 'tcp:10.0.0.1/8:80' has host bits set beyond its /8 "
               "prefix (the block is 10.0.0.0/8)",
               "p.toml:3:46: error: 'connect' address 'tcp:1.2.3.4:8100-8000' has port range 8100-8000 "
               "whose start is after its end",
               "p.toml:4:22: error: 'listen' address 'unix:/run//x' is not a valid socket path: pattern "
               "'/run//x' has an empty component '//'",
               "p.toml:4:38: error: 'listen' address 'tcp:[::1]:http' has port 'http', which is not a "
               "number, a range such as 8000-8100, or '*'"}));
    // Escapes in the TOML string do not throw the column off.
    EXPECT_EQ(errors("version = 1\n[profile.p]\nconnect = [\"unix:@\\u00e9\\t\", \"tcp:1.2.3.4:x\"]\n"),
              (Lines{"p.toml:3:43: error: 'connect' address 'tcp:1.2.3.4:x' has port 'x', which is not a "
                     "number, a range such as 8000-8100, or '*'"}));
}

TEST(AddressRule, ListenTablesSetUpAUnixSocketFile) {
    const LoadResult result = Policy::load_string(
        "version = 1\n[profile.p]\n"
        "listen = [\"tcp:0.0.0.0:80\",\n"
        "  { address = \"unix:/run/app.sock\", mode = \"0660\", user = \"root\", group = 7 },\n"
        "  { address = \"unix:/run/b.sock\", mode = 0o600, user = 1234 },\n"
        "  { address = \"unix:/run/c.sock\", user = \"root\" },\n"
        "  { address = \"unix:/run/d.sock\" }]\n",
        "p.toml");
    const Profile& p = loaded(result);
    ASSERT_EQ(p.listen_rules().size(), 5U);
    EXPECT_FALSE(p.listen_rules()[0].file.mode);
    const AddressRule& app = p.listen_rules()[1];
    EXPECT_EQ(app.text, "unix:/run/app.sock");
    EXPECT_EQ(app.line, 4U);
    EXPECT_EQ(app.column, 15U);
    EXPECT_EQ(app.file.mode, 0660U);
    EXPECT_EQ(app.file.uid, 0U);
    EXPECT_EQ(app.file.gid, 7U);
    const AddressRule& b = p.listen_rules()[2];
    EXPECT_EQ(b.file.mode, 0600U);
    EXPECT_EQ(b.file.uid, 1234U);
    EXPECT_FALSE(b.file.gid);                     // a numeric uid brings no group: the worker's group applies
    EXPECT_EQ(p.listen_rules()[3].file.gid, 0U);  // a named user brings its primary group
    EXPECT_FALSE(p.listen_rules()[3].file.mode);
    EXPECT_FALSE(p.listen_rules()[4].file.mode);
    EXPECT_FALSE(p.listen_rules()[4].file.uid);
}

TEST(AddressRule, DualStackOnlyForTheIpv6AnyAddress) {
    const LoadResult result = Policy::load_string(
        "version = 1\n[profile.p]\n"
        "listen = [\"tcp:[::]:80\", { address = \"tcp:[::]:443\", dual_stack = true },\n"
        "  { address = \"tcp:[::]:8000-8100\", dual_stack = false }]\n",
        "p.toml");
    const Profile& p = loaded(result);
    ASSERT_EQ(p.listen_rules().size(), 3U);
    EXPECT_FALSE(p.listen_rules()[0].dual_stack);
    EXPECT_TRUE(p.listen_rules()[1].dual_stack);
    EXPECT_FALSE(p.listen_rules()[2].dual_stack);
    const std::string only =
        "'dual_stack' applies only to the IPv6 any-address (tcp:[::]:PORT or udp:[::]:PORT): only a socket "
        "bound there can also accept IPv4 clients";
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\n"
               "listen = [{ address = \"tcp:0.0.0.0:80\", dual_stack = true },\n"
               "  { address = \"tcp:[::1]:80\", dual_stack = true },\n"
               "  { address = \"tcp:[::/0]:80\", dual_stack = true },\n"
               "  { address = \"unix:/run/s\", dual_stack = true },\n"
               "  { address = \"tcp:[::]:80\", dual_stack = \"yes\" }]\n"),
        (Lines{"p.toml:3:54: error: " + only, "p.toml:4:44: error: " + only, "p.toml:5:45: error: " + only,
               "p.toml:6:43: error: " + only, "p.toml:7:43: error: 'dual_stack' must be true or false"}));
}

TEST(AddressRule, UdpRulesNeedTheProfileToAcknowledgeTheirReach) {
    const std::string why =
        " is a UDP socket, which can send datagrams to any address, not only this one; to grant it "
        "anyway, set datagram_reach = \"any\" in profile 'p'";
    EXPECT_EQ(errors("version = 1\n[profile.p]\nconnect = [\"tcp:1.2.3.4:5\", \"udp:10.0.0.5:53\"]\n"
                     "listen = [\"udp:0.0.0.0:5353\"]\n"),
              (Lines{"p.toml:3:30: error: 'connect' address 'udp:10.0.0.5:53'" + why,
                     "p.toml:4:12: error: 'listen' address 'udp:0.0.0.0:5353'" + why}));
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\ndatagram_reach = \"peer\"\nconnect = [\"udp:10.0.0.5:53\"]\n"),
        (Lines{"p.toml:4:13: error: 'connect' address 'udp:10.0.0.5:53'" + why}));
    // A bad value is reported once, not again for every rule that needed it.
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\ndatagram_reach = \"all\"\nconnect = [\"udp:10.0.0.5:53\"]\n"),
        (Lines{"p.toml:3:18: error: 'datagram_reach' must be \"peer\" (the default: datagram sockets are "
               "not granted) or \"any\" (udp: rules and unix datagram servers are granted, and may send "
               "to any address)"}));
    const LoadResult any = Policy::load_string(
        "version = 1\n[profile.p]\nconnect = [\"udp:10.0.0.5:53\"]\ndatagram_reach = \"any\"\n", "p.toml");
    EXPECT_EQ(loaded(any).datagram_reach(), DatagramReach::any);
    EXPECT_EQ(loaded(any).confinement().datagram_reach, DatagramReach::any);
    const LoadResult plain = Policy::load_string("version = 1\n[profile.p]\n", "p.toml");
    EXPECT_EQ(loaded(plain).datagram_reach(), DatagramReach::peer);
}

TEST(AddressRule, BadListenTables) {
    const std::string bad_mode =
        "error: 'mode' must be permission bits in octal, from \"0000\" to \"0777\": a string such as "
        "\"0660\" or an octal integer such as 0o660";
    const std::string unknown_owner =
        "error: unknown key 'owner' in a 'listen' table (expected 'address', 'mode', 'user', 'group' or "
        "'dual_stack')";
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\n"
               "listen = [{ mode = \"0660\" },\n"
               "  { address = \"tcp:0.0.0.0:80\", mode = \"0660\" },\n"
               "  { address = \"unix:/s\", mode = \"660x\", owner = \"x\" },\n"
               "  { address = \"unix:/s\", mode = 660 },\n"
               "  { address = \"unix:/s\", mode = \"01777\" },\n"
               "  { address = 5, user = \"no-such-user-here\" }, 7]\n"
               "connect = [{ address = \"unix:/s\" }]\n"),
        (Lines{
            "p.toml:3:11: error: a 'listen' table needs 'address', e.g. { address = \"unix:/run/app.sock\" }",
            "p.toml:4:33: error: 'mode' applies only to unix path sockets (unix:/path)",
            "p.toml:5:33: " + bad_mode, "p.toml:5:41: " + unknown_owner, "p.toml:6:33: " + bad_mode,
            "p.toml:7:33: " + bad_mode, "p.toml:8:15: error: 'address' must be a string",
            "p.toml:8:25: error: unknown user 'no-such-user-here'",
            "p.toml:8:48: error: 'listen' must be an array of addresses (strings, or tables with 'address')",
            "p.toml:9:12: error: 'connect' must be an array of strings"}));
}

TEST(ConnectTimeout, DefaultIntegerSecondsAndUnits) {
    EXPECT_EQ(loaded(Policy::load_string("version = 1\n[profile.p]\n", "p.toml")).connect_timeout(),
              std::chrono::seconds(10));
    EXPECT_EQ(loaded(Policy::load_string("version = 1\n[profile.p]\nconnect_timeout = 5\n", "p.toml"))
                  .connect_timeout(),
              std::chrono::seconds(5));
    EXPECT_EQ(loaded(Policy::load_string("version = 1\n[profile.p]\nconnect_timeout = \"2s\"\n", "p.toml"))
                  .connect_timeout(),
              std::chrono::seconds(2));
    EXPECT_EQ(loaded(Policy::load_string("version = 1\n[profile.p]\nconnect_timeout = \"250ms\"\n", "p.toml"))
                  .connect_timeout(),
              std::chrono::milliseconds(250));
    EXPECT_EQ(loaded(Policy::load_string("version = 1\n[profile.p]\nconnect_timeout = 3600\n", "p.toml"))
                  .connect_timeout(),
              std::chrono::hours(1));
    EXPECT_EQ(loaded(Policy::load_string("version = 1\n[profile.p]\nconnect_timeout = \"1ms\"\n", "p.toml"))
                  .connect_timeout(),
              std::chrono::milliseconds(1));
}

TEST(ConnectTimeout, BadValues) {
    const std::string message =
        "error: 'connect_timeout' must be a whole number of seconds (5) or a string with a unit (\"5s\", "
        "\"500ms\"), from 1 ms to 3600 s";
    for (const char* value : {"0", "-1", "3601", "1.5", "\"5\"", "\"5 s\"", "\"-5s\"", "\"0ms\"", "\"3601s\"",
                              "\"5m\"", "\"s\"", "\"ms\"", "true", "[5]", "\"99999999999999999999ms\""}) {
        EXPECT_EQ(errors(std::string("version = 1\n[profile.p]\nconnect_timeout = ") + value + "\n"),
                  Lines{"p.toml:3:19: " + message})
            << value;
    }
}

}  // namespace
}  // namespace fdbroker::policy
