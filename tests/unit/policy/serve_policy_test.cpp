// The policy as serve mode reads it: pools (command, instances, restart), the profile a client's
// credentials choose, and what the broker must keep for itself.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::policy {
namespace {

using test::policy_text::errors;
using test::policy_text::load;

TEST(Pool, DeclaredWithItsDefaults) {
    const auto policy = load("version = 1\n[profile.p]\ncommand = [\"/usr/lib/app/worker\", \"--flag\"]\n");
    ASSERT_NE(policy, nullptr);
    const Pool& pool = policy->profile("p")->pool();
    EXPECT_TRUE(pool.declared());
    EXPECT_EQ(pool.command, (std::vector<std::string>{"/usr/lib/app/worker", "--flag"}));
    EXPECT_EQ(pool.instances, 1u);
    EXPECT_EQ(pool.restart, Restart::on_failure);
    EXPECT_TRUE(policy->has_pools());
}

TEST(Pool, InstancesAndRestart) {
    const auto policy = load(
        "version = 1\n[profile.p]\ncommand = [\"/bin/w\"]\ninstances = 64\nrestart = \"always\"\n"
        "[profile.q]\ncommand = [\"/bin/w\"]\nrestart = \"never\"\n[profile.r]\nread = "
        "[\"/etc/hostname\"]\n");
    ASSERT_NE(policy, nullptr);
    EXPECT_EQ(policy->profile("p")->pool().instances, 64u);
    EXPECT_EQ(policy->profile("p")->pool().restart, Restart::always);
    EXPECT_EQ(policy->profile("q")->pool().restart, Restart::never);
    EXPECT_FALSE(policy->profile("r")->pool().declared());
}

TEST(Pool, MistakesArePointedAt) {
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\ncommand = [\"worker\"]\n"),
        std::vector<std::string>{"p.toml:3:12: error: 'command' must start with an absolute, normal path"});
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\ncommand = []\n"),
        std::vector<std::string>{"p.toml:3:11: error: 'command' must be a non-empty array of strings: the "
                                 "program's absolute path, then its arguments"});
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\ncommand = [\"/w\", 3]\n"),
        std::vector<std::string>{"p.toml:3:18: error: 'command' must be a non-empty array of strings: the "
                                 "program's absolute path, then its arguments"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ncommand = [\"/w\"]\ninstances = 0\n"),
              std::vector<std::string>{"p.toml:4:13: error: 'instances' must be an integer from 1 to 64"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ncommand = [\"/w\"]\ninstances = 65\n"),
              std::vector<std::string>{"p.toml:4:13: error: 'instances' must be an integer from 1 to 64"});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ncommand = [\"/w\"]\nrestart = \"sometimes\"\n"),
              std::vector<std::string>{
                  "p.toml:4:11: error: 'restart' must be \"always\", \"on-failure\" or \"never\""});
    EXPECT_EQ(errors("version = 1\n[profile.p]\ninstances = 2\n"),
              std::vector<std::string>{"p.toml:3:13: error: 'instances' needs 'command': only a pool of "
                                       "workers has instances to restart"});
}

TEST(Clients, TheFirstProfileNamingTheUserOrAGroupWins) {
    const auto policy = load(
        "version = 1\n"
        "[profile.alice]\nclients = { users = [1001] }\n"
        "[profile.media]\nclients = { groups = [2001, 2002] }\n"
        "[profile.also_alice]\nclients = { users = [1001], groups = [2003] }\n"
        "[profile.run_only]\nread = [\"/etc/hostname\"]\n");
    ASSERT_NE(policy, nullptr);
    auto chosen = [&](uid_t uid, gid_t gid, std::vector<gid_t> groups) {
        const Profile* p = policy->client_profile(uid, gid, groups);
        return p ? p->name() : std::string("(refused)");
    };
    EXPECT_EQ(chosen(1001, 1001, {}), "alice");
    EXPECT_EQ(chosen(1001, 2001, {}), "alice");
    EXPECT_EQ(chosen(1005, 2002, {}), "media");
    EXPECT_EQ(chosen(1005, 1005, {7, 2001}), "media");
    EXPECT_EQ(chosen(1005, 1005, {2003}), "also_alice");
    EXPECT_EQ(chosen(1005, 1005, {7}), "(refused)");
    EXPECT_EQ(chosen(0, 0, {}), "(refused)") << "a profile without 'clients' accepts nobody";
}

TEST(BrokerNeeds, ListeningBelow1024) {
    EXPECT_FALSE(load("version = 1\n[profile.p]\nlisten = [\"tcp:0.0.0.0:8080\", \"unix:/run/a.sock\"]\n")
                     ->listens_below_1024());
    EXPECT_TRUE(load("version = 1\n[profile.p]\nlisten = [\"tcp:0.0.0.0:443\"]\n")->listens_below_1024());
    EXPECT_TRUE(
        load("version = 1\n[profile.p]\ndatagram_reach = \"any\"\nlisten = [\"udp:[::]:1000-2000\"]\n")
            ->listens_below_1024());
    EXPECT_TRUE(load("version = 1\n[profile.p]\nlisten = [\"tcp:127.0.0.1:*\"]\n")->listens_below_1024());
    EXPECT_FALSE(load("version = 1\n[profile.p]\nconnect = [\"tcp:127.0.0.1:80\"]\n")->listens_below_1024());
}

}  // namespace
}  // namespace fdbroker::policy
