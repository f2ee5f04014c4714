// Loading policies: the schema, identity resolution, and every diagnostic with its exact position.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::policy {
namespace {

using Lines = std::vector<std::string>;

using test::policy_text::errors;
using test::policy_text::load;

// The profile "p" of a policy that must load.
struct Loaded {
    std::shared_ptr<const Policy> policy;
    const Profile* profile = nullptr;
};
Loaded load_profile(std::string_view text) {
    Loaded loaded{load(text)};
    if (loaded.policy) loaded.profile = loaded.policy->profile("p");
    EXPECT_NE(loaded.profile, nullptr);
    return loaded;
}

gid_t primary_gid_of(const char* user) {
    const passwd* entry = getpwnam(user);
    EXPECT_NE(entry, nullptr) << user;
    return entry ? entry->pw_gid : 0;
}

// --- valid policies -------------------------------------------------------------------------------

constexpr std::string_view full_policy = R"(version = 1

[profile.default]
user    = "nobody"
read    = ["/etc/hostname", "/usr/share/zoneinfo/**"]
write   = ["/var/lib/app/out/**"]
create  = ["/var/lib/app/out/**"]
deny    = ["/usr/share/zoneinfo/private/**"]
connect = ["tcp:127.0.0.1:6379", "unix:/run/postgresql/.s.PGSQL.5432"]
listen  = ["tcp:0.0.0.0:80"]

[profile.thumbs]
clients = { users = ["root", 1000, "2000"], groups = ["root", 7] }
read    = ["/srv/images/**"]
)";

TEST(Loader, LoadsTheDesignExample) {
    const auto policy = load(full_policy);
    ASSERT_NE(policy, nullptr);
    EXPECT_EQ(policy->file(), "p.toml");
    ASSERT_EQ(policy->profiles().size(), 2U);
    EXPECT_EQ(policy->profiles()[0].name(), "default");
    EXPECT_EQ(policy->profiles()[1].name(), "thumbs");
    EXPECT_EQ(policy->profile("nope"), nullptr);

    const Profile& def = *policy->profile("default");
    EXPECT_EQ(def.uid(), std::optional<uid_t>(65534));
    EXPECT_EQ(def.gid(), std::optional<gid_t>(primary_gid_of("nobody")));
    ASSERT_EQ(def.rules().size(), 5U);
    const std::vector<RuleKind> kinds = {RuleKind::read, RuleKind::read, RuleKind::write, RuleKind::create,
                                         RuleKind::deny};
    const std::vector<std::uint32_t> lines = {5, 5, 6, 7, 8};
    const std::vector<std::uint32_t> columns = {12, 29, 12, 12, 12};
    for (std::size_t i = 0; i < kinds.size(); ++i) {
        EXPECT_EQ(def.rules()[i].kind, kinds[i]) << i;
        EXPECT_EQ(def.rules()[i].line, lines[i]) << i;
        EXPECT_EQ(def.rules()[i].column, columns[i]) << i;
    }
    EXPECT_EQ(def.rules()[1].pattern.text(), "/usr/share/zoneinfo/**");
    ASSERT_EQ(def.connect_rules().size(), 2U);
    EXPECT_EQ(def.connect_rules()[0].text, "tcp:127.0.0.1:6379");
    EXPECT_EQ(def.connect_rules()[1].text, "unix:/run/postgresql/.s.PGSQL.5432");
    EXPECT_EQ(def.connect_rules()[1].line, 9U);
    EXPECT_EQ(def.connect_rules()[1].column, 34U);
    ASSERT_EQ(def.listen_rules().size(), 1U);
    EXPECT_EQ(def.listen_rules()[0].text, "tcp:0.0.0.0:80");
    EXPECT_EQ(def.listen_rules()[0].line, 10U);
    EXPECT_EQ(def.listen_rules()[0].column, 12U);
    EXPECT_TRUE(def.client_users().empty());

    const Decision denied = def.decide("/usr/share/zoneinfo/private/key", need_read);
    EXPECT_FALSE(denied.allowed);
    ASSERT_NE(denied.rule, nullptr);
    EXPECT_EQ(denied.rule->line, 8U);
    EXPECT_TRUE(def.decide("/usr/share/zoneinfo/Europe/Paris", need_read).allowed);

    const Profile& thumbs = *policy->profile("thumbs");
    EXPECT_EQ(thumbs.uid(), std::nullopt);
    EXPECT_EQ(thumbs.gid(), std::nullopt);
    EXPECT_EQ(thumbs.client_users(), (std::vector<uid_t>{0, 1000, 2000}));
    EXPECT_EQ(thumbs.client_groups(), (std::vector<gid_t>{0, 7}));
    EXPECT_TRUE(thumbs.decide("/srv/images/a/b.png", need_read).allowed);
    EXPECT_FALSE(thumbs.decide("/etc/hostname", need_read).allowed);
}

TEST(Loader, ProfilesAndRulesKeepFileOrder) {
    // toml++ sorts keys; the loader must not.
    const auto policy = load(R"(version = 1
[profile.zeta]
write = ["/w"]
read = ["/r1", "/r2"]
deny = ["/d"]
[profile.alpha]
)");
    ASSERT_NE(policy, nullptr);
    ASSERT_EQ(policy->profiles().size(), 2U);
    EXPECT_EQ(policy->profiles()[0].name(), "zeta");
    EXPECT_EQ(policy->profiles()[1].name(), "alpha");
    const auto& rules = policy->profiles()[0].rules();
    ASSERT_EQ(rules.size(), 4U);
    EXPECT_EQ(rules[0].kind, RuleKind::write);
    EXPECT_EQ(rules[1].pattern.text(), "/r1");
    EXPECT_EQ(rules[2].pattern.text(), "/r2");
    EXPECT_EQ(rules[3].kind, RuleKind::deny);
    EXPECT_TRUE(policy->profiles()[1].rules().empty());
}

TEST(Loader, VersionAloneIsAValidEmptyPolicy) {
    const auto policy = load("version = 1\n");
    ASSERT_NE(policy, nullptr);
    EXPECT_TRUE(policy->profiles().empty());
    EXPECT_EQ(policy->profile("default"), nullptr);
}

TEST(Loader, DottedKeysAndLiteralStringsWork) {
    const auto loaded = load_profile("version = 1\nprofile.p.read = ['/a/*', \"/b\"]\n");
    ASSERT_NE(loaded.profile, nullptr);
    ASSERT_EQ(loaded.profile->rules().size(), 2U);
    EXPECT_EQ(loaded.profile->rules()[0].line, 2U);
    EXPECT_EQ(loaded.profile->rules()[0].column, 19U);
    EXPECT_TRUE(loaded.profile->decide("/a/x", need_read).allowed);
}

TEST(Loader, EmptyArraysAreFine) {
    const auto loaded = load_profile("version = 1\n[profile.p]\nread = []\nconnect = []\nclients = {}\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_TRUE(loaded.profile->rules().empty());
}

// --- identities -----------------------------------------------------------------------------------

TEST(Identity, NamedRoot) {
    const auto loaded = load_profile("version = 1\n[profile.p]\nuser = \"root\"\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::optional<uid_t>(0));
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(0));
}

TEST(Identity, NamedNobodyGetsItsPrimaryGroup) {
    const auto loaded = load_profile("version = 1\n[profile.p]\nuser = \"nobody\"\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::optional<uid_t>(65534));
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(primary_gid_of("nobody")));
}

TEST(Identity, NumericUserGetsItsPrimaryGroupFromTheDatabase) {
    auto loaded = load_profile("version = 1\n[profile.p]\nuser = 0\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::optional<uid_t>(0));
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(0));
    loaded = load_profile("version = 1\n[profile.p]\nuser = \"65534\"\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::optional<uid_t>(65534));
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(primary_gid_of("nobody")));
}

TEST(Identity, ExplicitGroupWins) {
    auto loaded = load_profile("version = 1\n[profile.p]\ngroup = \"root\"\nuser = \"nobody\"\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::optional<uid_t>(65534));
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(0));
    loaded = load_profile("version = 1\n[profile.p]\nuser = 1234\ngroup = 4321\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::optional<uid_t>(1234));
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(4321));
    loaded = load_profile("version = 1\n[profile.p]\nuser = \"1234\"\ngroup = \"4321\"\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(4321));
}

TEST(Identity, GroupWithoutUser) {
    const auto loaded = load_profile("version = 1\n[profile.p]\ngroup = \"root\"\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::nullopt);
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(0));
}

TEST(Identity, HighestValidIdIsAccepted) {
    const auto loaded = load_profile("version = 1\n[profile.p]\nuser = 4294967294\ngroup = 4294967294\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->uid(), std::optional<uid_t>(4294967294U));
}

TEST(Identity, UnknownUserAndGroup) {
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = \"no-such-user-fdbroker\"\n"),
              Lines{"p.toml:3:8: error: unknown user 'no-such-user-fdbroker'"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = \"root\"\ngroup = \"no-such-group-fdbroker\"\n"),
              Lines{"p.toml:4:9: error: unknown group 'no-such-group-fdbroker'"});
}

TEST(Identity, UidWithoutEntryNeedsAnExplicitGroup) {
    ASSERT_EQ(getpwuid(3999999999U), nullptr) << "this test needs uid 3999999999 to be unused";
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nuser = 3999999999\n"),
        Lines{"p.toml:3:8: error: uid 3999999999 has no entry in the user database, so it has no primary "
              "group: set 'group'"});
    const auto loaded = load_profile("version = 1\n[profile.p]\nuser = 3999999999\ngroup = 5\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->gid(), std::optional<gid_t>(5));
}

TEST(Identity, InvalidGroupIsNotReplacedByTheDefault) {
    // Only the group error: the user is fine and must not also complain about its primary group.
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = 3999999999\ngroup = true\n"),
              Lines{"p.toml:4:9: error: 'group' must be a group name or a numeric gid"});
}

TEST(Identity, OutOfRangeIds) {
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = -1\n"),
              Lines{"p.toml:3:8: error: uid -1 is out of range (0 to 4294967294)"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = 4294967295\n"),
              Lines{"p.toml:3:8: error: uid 4294967295 is out of range (0 to 4294967294)"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = \"99999999999999999999999\"\n"),
              Lines{"p.toml:3:8: error: uid 99999999999999999999999 is out of range (0 to 4294967294)"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = 0\ngroup = -5\n"),
              Lines{"p.toml:4:9: error: gid -5 is out of range (0 to 4294967294)"});
}

TEST(Identity, WrongTypes) {
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = true\n"),
              Lines{"p.toml:3:8: error: 'user' must be a user name or a numeric uid"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = [\"root\"]\n"),
              Lines{"p.toml:3:8: error: 'user' must be a user name or a numeric uid"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ngroup = 1.5\n"),
              Lines{"p.toml:3:9: error: 'group' must be a group name or a numeric gid"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nuser = \"\"\n"),
              Lines{"p.toml:3:8: error: empty user name in 'user'"});
}

TEST(Identity, Clients) {
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nclients = { users = [\"root\", \"no-such-user-fdbroker\"] }\n"),
        Lines{"p.toml:3:30: error: unknown user 'no-such-user-fdbroker'"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nclients = { groups = [\"no-such-group-fdbroker\", 3.5] }\n"),
              Lines({"p.toml:3:23: error: unknown group 'no-such-group-fdbroker'",
                     "p.toml:3:49: error: 'groups' must be an array of group names or numeric gids"}));
    EXPECT_EQ(errors("version = 1\n[profile.p]\nclients = { users = \"root\" }\n"),
              Lines{"p.toml:3:21: error: 'users' must be an array of user names or numeric uids"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nclients = { hosts = [] }\n"),
              Lines{"p.toml:3:13: error: unknown key 'hosts' in 'clients' of profile 'p'"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nclients = [\"root\"]\n"),
              Lines{"p.toml:3:11: error: 'clients' must be a table, e.g. { users = [\"name\"], groups = "
                    "[\"name\"] }"});
}

TEST(Identity, ClientsAsAStandardTable) {
    const auto loaded =
        load_profile("version = 1\n[profile.p]\n[profile.p.clients]\nusers = [\"nobody\", 5]\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->client_users(), (std::vector<uid_t>{65534, 5}));
}

// --- schema errors --------------------------------------------------------------------------------

TEST(Errors, MissingVersionIsReportedAtTheStart) {
    EXPECT_EQ(errors("[profile.p]\nread = [\"/a\"]\n"),
              Lines{"p.toml:1:1: error: missing required key 'version' (this fdbroker reads version = 1)"});
    EXPECT_EQ(errors(""),
              Lines{"p.toml:1:1: error: missing required key 'version' (this fdbroker reads version = 1)"});
}

TEST(Errors, BadVersion) {
    EXPECT_EQ(errors("version = 2\n"),
              Lines{"p.toml:1:11: error: unsupported version 2 (this fdbroker reads version 1)"});
    EXPECT_EQ(errors("version = 0\n"),
              Lines{"p.toml:1:11: error: unsupported version 0 (this fdbroker reads version 1)"});
    EXPECT_EQ(errors("version = \"1\"\n"), Lines{"p.toml:1:11: error: 'version' must be an integer"});
    EXPECT_EQ(errors("version = 1.0\n"), Lines{"p.toml:1:11: error: 'version' must be an integer"});
}

TEST(Errors, UnsupportedVersionHidesTheRest) {
    // Another version's keys are not errors of this one.
    EXPECT_EQ(errors("version = 2\nfuture = true\n[profile.p]\nnew_key = 1\n"),
              Lines{"p.toml:1:11: error: unsupported version 2 (this fdbroker reads version 1)"});
}

TEST(Errors, UnknownTopLevelKey) {
    EXPECT_EQ(errors("version = 1\nname = \"x\"\n"),
              Lines{"p.toml:2:1: error: unknown key 'name' at top level (expected 'version' or 'profile')"});
    EXPECT_EQ(
        errors("version = 1\n[profiles.p]\n"),
        Lines{"p.toml:2:2: error: unknown key 'profiles' at top level (expected 'version' or 'profile')"});
}

TEST(Errors, UnknownKeyInProfile) {
    EXPECT_EQ(errors("version = 1\n[profile.default]\nreed = [\"/a\"]\n"),
              Lines{"p.toml:3:1: error: unknown key 'reed' in profile 'default'"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\n  execute = []\n"),
              Lines{"p.toml:3:3: error: unknown key 'execute' in profile 'p'"});
    EXPECT_EQ(errors("version = 1\n[profile.a.b]\n"),
              Lines{"p.toml:2:12: error: unknown key 'b' in profile 'a'"});
}

TEST(Errors, PatternListsMustBeArraysOfStrings) {
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = \"x\"\n"),
              Lines{"p.toml:3:8: error: 'read' must be an array of strings"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = [1]\n"),
              Lines{"p.toml:3:9: error: 'read' must be an array of strings"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = [\"/a\", 2, \"/b\", true]\n"),
              Lines({"p.toml:3:15: error: 'read' must be an array of strings",
                     "p.toml:3:24: error: 'read' must be an array of strings"}));
    // The strings next to a wrong element are still checked.
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = [1, \"rel\"]\n"),
              Lines({"p.toml:3:9: error: 'read' must be an array of strings",
                     "p.toml:3:13: error: pattern 'rel' must be absolute (start with '/')"}));
    EXPECT_EQ(errors("version = 1\n[profile.p]\nwrite = { a = 1 }\n"),
              Lines{"p.toml:3:9: error: 'write' must be an array of strings"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ndeny = [[\"/a\"]]\n"),
              Lines{"p.toml:3:9: error: 'deny' must be an array of strings"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\n[profile.p.create]\n"),
              Lines{"p.toml:3:1: error: 'create' must be an array of strings"});
}

TEST(Errors, SocketRules) {
    EXPECT_EQ(errors("version = 1\n[profile.p]\nconnect = \"tcp:1.2.3.4:5\"\n"),
              Lines{"p.toml:3:11: error: 'connect' must be an array of strings"});
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nconnect = [\"tcp:1.2.3.4:5\", \"http://x\"]\n"),
        Lines{"p.toml:3:30: error: 'connect' address 'http://x' must start with 'tcp:', 'udp:' or 'unix:'"});
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nlisten = [\"TCP:0.0.0.0:80\", 80]\n"),
        Lines({"p.toml:3:12: error: 'listen' address 'TCP:0.0.0.0:80' must start with 'tcp:', 'udp:' or "
               "'unix:'",
               "p.toml:3:29: error: 'listen' must be an array of addresses (strings, or tables with "
               "'address')"}));
    const auto loaded = load_profile(
        "version = 1\n[profile.p]\nlisten = [\"udp:[::1]:53\", \"unix:@bus\"]\nconnect = "
        "[\"unix:/run/x\"]\ndatagram_reach = \"any\"\n");
    ASSERT_NE(loaded.profile, nullptr);
    EXPECT_EQ(loaded.profile->listen_rules().size(), 2U);
    EXPECT_EQ(loaded.profile->connect_rules()[0].line, 4U);
    EXPECT_EQ(loaded.profile->datagram_reach(), DatagramReach::any);
}

TEST(Errors, PatternErrorsPointAtTheOffendingCharacter) {
    const auto one = [](std::string_view pattern) {
        return errors("version = 1\n[profile.p]\nread = [\"" + std::string(pattern) + "\"]\n");
    };
    // The string starts at column 9; its first character is at column 10.
    EXPECT_EQ(one("etc/x"), Lines{"p.toml:3:10: error: pattern 'etc/x' must be absolute (start with '/')"});
    EXPECT_EQ(one(""), Lines{"p.toml:3:10: error: pattern '' must be absolute (start with '/')"});
    EXPECT_EQ(one("/a/../b"),
              Lines{"p.toml:3:13: error: pattern '/a/../b' must not contain '..' components"});
    EXPECT_EQ(one("/a/./b"), Lines{"p.toml:3:13: error: pattern '/a/./b' must not contain '.' components"});
    EXPECT_EQ(one("/a//b"), Lines{"p.toml:3:13: error: pattern '/a//b' has an empty component '//'"});
    EXPECT_EQ(one("/a/b/"), Lines{"p.toml:3:14: error: pattern '/a/b/' must not end with '/'"});
    EXPECT_EQ(one("/a/**b"),
              Lines{"p.toml:3:13: error: pattern '/a/**b': '**' must be a whole path component"});
    EXPECT_EQ(one("/a/x**"),
              Lines{"p.toml:3:14: error: pattern '/a/x**': '**' must be a whole path component"});
}

TEST(Errors, ConfinementKeysAndNamesAreQuotedSafely) {
    // A control byte in a key or a system call name is escaped, so that the diagnostic stays one line.
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nlimits = { \"no\\nfile\" = 1 }\n"),
        Lines{"p.toml:3:12: error: unknown key 'no\\x0afile' in 'limits' (expected nofile, address_space, "
              "cpu_seconds, processes, file_size or core)"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nsyscalls = { allow = [\"ptrace\\u0007\"] }\n"),
              Lines{"p.toml:3:23: error: unknown system call 'ptrace\\x07'"});
}

TEST(Errors, PatternColumnsAcrossEscapesAndWideCharacters) {
    // "\u00e9" is six columns in the file but two bytes of the pattern.
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = [\"/\\u00e9/../b\"]\n"),
              Lines{"p.toml:3:18: error: pattern '/\xc3\xa9/../b' must not contain '..' components"});
    // A raw "é" is one column, like toml++'s own columns.
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = [\"/\xc3\xa9/x**\"]\n"),
              Lines{"p.toml:3:14: error: pattern '/\xc3\xa9/x**': '**' must be a whole path component"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = [\"/a\\u0000\"]\n"),
              Lines{"p.toml:3:12: error: pattern '/a\\x00' must not contain a NUL byte"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = ['/a/x**']\n"),
              Lines{"p.toml:3:14: error: pattern '/a/x**': '**' must be a whole path component"});
    // Multi-line strings: the error points at the string itself.
    EXPECT_EQ(errors("version = 1\n[profile.p]\nread = [\"\"\"/a//b\"\"\"]\n"),
              Lines{"p.toml:3:9: error: pattern '/a//b' has an empty component '//'"});
}

TEST(Errors, BadProfileNames) {
    EXPECT_EQ(
        errors("version = 1\n[profile.\"bad name\"]\n"),
        Lines{"p.toml:2:10: error: profile name 'bad name' may contain only letters, digits, '_' and '-'"});
    EXPECT_EQ(errors("version = 1\n[profile.\"\"]\n"),
              Lines{"p.toml:2:10: error: profile name '' may contain only letters, digits, '_' and '-'"});
    EXPECT_EQ(errors("version = 1\n[profile.\"a.b\"]\n"),
              Lines{"p.toml:2:10: error: profile name 'a.b' may contain only letters, digits, '_' and '-'"});
    const auto policy = load("version = 1\n[profile.Web_2-x]\n");
    ASSERT_NE(policy, nullptr);
    EXPECT_NE(policy->profile("Web_2-x"), nullptr);
}

TEST(Errors, ProfileMustBeATable) {
    EXPECT_EQ(errors("version = 1\nprofile = 3\n"),
              Lines{"p.toml:2:11: error: 'profile' must be a table of profiles, written [profile.NAME]"});
    EXPECT_EQ(errors("version = 1\nprofile = { a = 1 }\n"),
              Lines{"p.toml:2:17: error: profile 'a' must be a table"});
}

TEST(Errors, DuplicateProfile) {
    EXPECT_EQ(
        errors("version = 1\n[profile.a]\nread = [\"/a\"]\n[profile.a]\nread = [\"/b\"]\n"),
        Lines{"p.toml:4:1: error: duplicate profile 'a' (Error while parsing table header: cannot redefine "
              "existing table 'profile.a')"});
}

TEST(Errors, DuplicateKeyIsASyntaxError) {
    const Lines lines = errors("version = 1\n[profile.a]\nread = [\"/a\"]\nread = [\"/b\"]\n");
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_EQ(lines[0].rfind("p.toml:4:", 0), 0U) << lines[0];
    EXPECT_NE(lines[0].find("'read'"), std::string::npos) << lines[0];
}

TEST(Errors, SyntaxErrorIsTheOnlyError) {
    const Lines lines = errors("version = 1\nbogus = 1\n[profile.a]\nread = [\"/a\"\n");
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_EQ(lines[0], "p.toml:4:14: error: Error while parsing array: encountered end-of-file");
}

TEST(Errors, AllErrorsAreCollectedInFileOrder) {
    EXPECT_EQ(errors(R"(version = 1
bogus = 1
[profile.a]
zzz = 1
read = ["rel", "/ok", "/x/.."]
aaa = 2
user = "no-such-user-fdbroker"
[profile."b c"]
write = 5
)"),
              Lines({
                  "p.toml:2:1: error: unknown key 'bogus' at top level (expected 'version' or 'profile')",
                  "p.toml:4:1: error: unknown key 'zzz' in profile 'a'",
                  "p.toml:5:10: error: pattern 'rel' must be absolute (start with '/')",
                  "p.toml:5:27: error: pattern '/x/..' must not contain '..' components",
                  "p.toml:6:1: error: unknown key 'aaa' in profile 'a'",
                  "p.toml:7:8: error: unknown user 'no-such-user-fdbroker'",
                  "p.toml:8:10: error: profile name 'b c' may contain only letters, digits, '_' and '-'",
                  "p.toml:9:9: error: 'write' must be an array of strings",
              }));
}

TEST(Errors, MissingVersionComesFirstAmongOthers) {
    EXPECT_EQ(errors("[profile.a]\nreed = 1\n"),
              Lines({"p.toml:1:1: error: missing required key 'version' (this fdbroker reads version = 1)",
                     "p.toml:2:1: error: unknown key 'reed' in profile 'a'"}));
}

// --- diagnostics and files ------------------------------------------------------------------------

TEST(Diagnostics, Format) {
    EXPECT_EQ((Diagnostic{"/etc/fdbroker/policy.toml", 3, 9, "bad"}.str()),
              "/etc/fdbroker/policy.toml:3:9: error: bad");
    EXPECT_EQ((Diagnostic{"x.toml", 0, 0, "cannot read"}.str()), "x.toml: error: cannot read");
}

class TempDir : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "policy_test.XXXXXX").string();
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string write(const std::string& name, std::string_view text) const {
        std::string path = (dir_ / name).string();
        std::ofstream(path) << text;
        return path;
    }
    std::filesystem::path dir_;
};

TEST_F(TempDir, LoadFile) {
    const std::string path = write("policy.toml", full_policy);
    const LoadResult result = Policy::load_file(path);
    ASSERT_TRUE(result.errors.empty()) << result.errors[0].str();
    ASSERT_NE(result.policy, nullptr);
    EXPECT_EQ(result.policy->file(), path);
    EXPECT_NE(result.policy->profile("thumbs"), nullptr);
}

TEST_F(TempDir, LoadFileReportsErrorsUnderTheGivenName) {
    const std::string path = write("bad.toml", "version = 1\n[profile.p]\nreed = []\n");
    const LoadResult result = Policy::load_file(path);
    EXPECT_EQ(result.policy, nullptr);
    ASSERT_EQ(result.errors.size(), 1U);
    EXPECT_EQ(result.errors[0].str(), path + ":3:1: error: unknown key 'reed' in profile 'p'");
}

TEST_F(TempDir, UnreadableFiles) {
    const std::string missing = (dir_ / "missing.toml").string();
    LoadResult result = Policy::load_file(missing);
    EXPECT_EQ(result.policy, nullptr);
    ASSERT_EQ(result.errors.size(), 1U);
    EXPECT_EQ(result.errors[0].str(),
              missing + ": error: cannot read policy file: No such file or directory");
    result = Policy::load_file(dir_.string());
    EXPECT_EQ(result.policy, nullptr);
    ASSERT_EQ(result.errors.size(), 1U);
    EXPECT_EQ(result.errors[0].str(), dir_.string() + ": error: cannot read policy file: Is a directory");
}

}  // namespace
}  // namespace fdbroker::policy

namespace fdbroker::policy {
namespace {

TEST(Include, RuntimeGrantsReadingTheBuiltInRuntimePathsOnly) {
    const auto policy = Policy::load_string(
        "version = 1\n[profile.p]\ninclude = [\"runtime\"]\ndeny = [\"/usr/lib/secret/**\"]\n", "p.toml");
    ASSERT_NE(policy.policy, nullptr);
    const Profile& p = *policy.policy->profile("p");
    EXPECT_TRUE(p.decide("/usr/lib/x86_64-linux-gnu/libc.so.6", need_read).allowed);
    EXPECT_TRUE(p.decide("/etc/ld.so.cache", need_read).allowed);
    EXPECT_TRUE(p.decide("/usr/lib", need_read).allowed);
    EXPECT_TRUE(p.decide("/", need_read).allowed);
    const Decision lib = p.decide("/usr/lib/libc.so", need_read);
    ASSERT_NE(lib.rule, nullptr);
    EXPECT_EQ(lib.rule->line, 3u);  // the include's position names the deciding rule
    // Reading only, nothing beyond the set, and deny still wins.
    EXPECT_FALSE(p.decide("/usr/lib/libc.so", need_write).allowed);
    EXPECT_FALSE(p.decide("/etc/shadow", need_read).allowed);
    EXPECT_FALSE(p.decide("/etc", need_read).allowed);
    EXPECT_FALSE(p.decide("/proc/self/status", need_read).allowed);
    EXPECT_FALSE(p.decide("/usr/lib/secret/key", need_read).allowed);
    // Without the include, none of it.
    const auto bare = Policy::load_string("version = 1\n[profile.p]\n", "p.toml");
    ASSERT_NE(bare.policy, nullptr);
    EXPECT_FALSE(bare.policy->profile("p")->decide("/usr/lib/libc.so", need_read).allowed);
}

TEST(Include, RuntimeGrantsWhatOrdinaryProgramsReadAsTheyStart) {
    const auto policy = Policy::load_string("version = 1\n[profile.p]\ninclude = [\"runtime\"]\n", "p.toml");
    ASSERT_NE(policy.policy, nullptr);
    const Profile& p = *policy.policy->profile("p");
    EXPECT_TRUE(p.includes_runtime());
    for (const char* path :
         {"/etc/hosts", "/etc/host.conf", "/etc/resolv.conf", "/etc/gai.conf", "/etc/locale.alias",
          "/etc/alternatives/editor", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/openssl.cnf", "/usr",
          "/usr/share/perl/5.36/strict.pm", "/usr/share/ca-certificates/mozilla/x.crt",
          "/usr/share/terminfo/x/xterm", "/dev/random", "/dev/urandom",
          // What programs from /usr read of their system-wide configuration at every start.
          "/etc/selinux/config", "/etc/gitconfig", "/etc/magic", "/etc/python3.11/sitecustomize.py",
          "/etc/ImageMagick-6/policy.xml", "/etc/fonts/fonts.conf", "/proc/filesystems", "/proc/mounts",
          "/proc/sys/kernel/random/uuid", "/proc/meminfo", "/proc/stat", "/proc/sys/kernel/ngroups_max"})
        EXPECT_TRUE(p.decide(path, need_read).allowed) << path;
    // The devices that keep nothing, and the caller's terminal: read and write, named exactly (as a
    // device needs); nothing else is writable.
    for (const char* device : {"/dev/null", "/dev/zero", "/dev/full", "/dev/tty"})
        EXPECT_TRUE(p.grants_exactly(device, need_read | need_write)) << device;
    for (const char* path : {"/dev/urandom", "/dev/random", "/etc/hosts", "/usr/bin/env", "/dev/null/x"})
        EXPECT_FALSE(p.decide(path, need_write).allowed) << path;
    EXPECT_FALSE(p.decide("/dev/null", need_create).allowed);
    // Never the private keys, nor what Debian keeps from everyone under /usr, nor the rest of /etc.
    for (const char* path :
         {"/etc/ssl/private/key.pem", "/etc/ssl/private", "/usr/share/polkit-1/rules.d/x.rules",
          "/etc/shadow", "/etc/sudoers", "/dev/sda", "/dev/mem", "/etc/machine-id", "/etc/ssh/sshd_config",
          "/etc/gitconfig.d/x", "/etc/python3.10/x", "/proc/1/environ", "/proc/kcore", "/proc",
          "/proc/1/stat", "/proc/sys/kernel/core_pattern"})
        EXPECT_FALSE(p.decide(path, need_read).allowed) << path;
    const auto bare = Policy::load_string("version = 1\n[profile.p]\n", "p.toml");
    ASSERT_NE(bare.policy, nullptr);
    EXPECT_FALSE(bare.policy->profile("p")->includes_runtime());
}

TEST(DeniedPaths, EaccesByDefaultAbsentWhenAsked) {
    const auto plain = Policy::load_string("version = 1\n[profile.p]\n", "p.toml");
    ASSERT_NE(plain.policy, nullptr);
    EXPECT_EQ(plain.policy->profile("p")->denied_paths(), DeniedPaths::eacces);
    const auto absent =
        Policy::load_string("version = 1\n[profile.p]\ndenied_paths = \"absent\"\n", "p.toml");
    ASSERT_NE(absent.policy, nullptr);
    EXPECT_EQ(absent.policy->profile("p")->denied_paths(), DeniedPaths::absent);
    const auto eacces =
        Policy::load_string("version = 1\n[profile.p]\ndenied_paths = \"eacces\"\n", "p.toml");
    ASSERT_NE(eacces.policy, nullptr);
    EXPECT_EQ(eacces.policy->profile("p")->denied_paths(), DeniedPaths::eacces);
    EXPECT_EQ(errors("version = 1\n[profile.p]\ndenied_paths = \"enoent\"\n"),
              Lines{"p.toml:3:16: error: 'denied_paths' must be \"eacces\" or \"absent\""});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ndenied_paths = true\n"),
              Lines{"p.toml:3:16: error: 'denied_paths' must be \"eacces\" or \"absent\""});
}

TEST(Include, UnknownNamesAndWrongTypesAreErrors) {
    EXPECT_EQ(errors("version = 1\n[profile.p]\ninclude = [\"runtime\", \"nope\"]\n"),
              Lines{"p.toml:3:23: error: unknown include 'nope' (the only built-in include is \"runtime\")"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ninclude = \"runtime\"\n").size(), 1u);
}

}  // namespace
}  // namespace fdbroker::policy

namespace fdbroker::policy {
namespace {

TEST(Quota, LimitsAreReadAndTheRestTakeTheDefaults) {
    const Loaded l = load_profile("version = 1\n[profile.p]\nquota = { channels = 8, rate = 0 }\n");
    ASSERT_NE(l.profile, nullptr);
    const QuotaLimits defaults = quota_defaults(1024);
    const QuotaLimits limits = resolve(l.profile->quota(), defaults);
    EXPECT_EQ(limits.channels, 8u);
    EXPECT_EQ(limits.rate, 0u);
    EXPECT_EQ(limits.requests, defaults.requests);
    EXPECT_EQ(limits.descriptors, defaults.descriptors);
}

TEST(Quota, DefaultsScaleWithTheBrokersDescriptors) {
    // One user gets at most a share of the broker's descriptors, and of the kernel's count of
    // descriptors in flight, which is compared with the same limit.
    EXPECT_EQ(quota_defaults(1024).channels, 64u);
    EXPECT_EQ(quota_defaults(1024).descriptors, 128u);
    EXPECT_EQ(quota_defaults(1024).connects, 32u);
    EXPECT_EQ(quota_defaults(524288).channels, 256u);
    EXPECT_EQ(quota_defaults(524288).descriptors, 256u);
    EXPECT_GE(quota_defaults(16).channels, 4u);
}

TEST(Quota, Errors) {
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nquota = 5\n"),
        Lines{
            "p.toml:3:9: error: 'quota' must be a table, e.g. quota = { channels = 64, requests = 16, rate = "
            "1000 }"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nquota = { files = 3 }\n"),
              Lines{"p.toml:3:11: error: unknown key 'files' in 'quota' (expected 'channels', 'connects', "
                    "'requests', 'descriptors' or 'rate')"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\nquota = { channels = 0 }\n"),
              Lines{"p.toml:3:22: error: 'quota.channels' must be an integer from 1 to 1000000"});
}

TEST(Terminal, ValuesAndErrors) {
    EXPECT_EQ(load_profile("version = 1\n[profile.p]\n").profile->confinement().terminal, Terminal::shared);
    EXPECT_EQ(load_profile("version = 1\n[profile.p]\nterminal = \"job-control\"\n")
                  .profile->confinement()
                  .terminal,
              Terminal::job_control);
    EXPECT_EQ(
        load_profile("version = 1\n[profile.p]\nterminal = \"detached\"\n").profile->confinement().terminal,
        Terminal::detached);
    EXPECT_EQ(errors("version = 1\n[profile.p]\nterminal = \"mine\"\n"),
              Lines{"p.toml:3:12: error: 'terminal' must be \"shared\", \"job-control\" or \"detached\""});
}

}  // namespace
}  // namespace fdbroker::policy
