// Attacks on socket brokering: a worker that may write near a granted unix socket rearranges the path
// while the broker connects or binds, hoping to reach a socket the policy does not grant.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "support/harness.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::test {
namespace {

class SocketAttack : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "pub").c_str(), 0755);
        ::mkdir((dir / "pub/dir").c_str(), 0755);
        ::mkdir((dir / "secret").c_str(), 0755);
    }

    // The worker connects 2000 times to `granted` while `swapped` keeps turning into a symlink to
    // `target`; the granted server greets with 'A', the one behind the symlink with 'B'.
    void race(const std::string& granted, const std::string& swapped, const std::string& target,
              const Server& forbidden) {
        std::atomic<bool> stop{false};
        std::thread attacker([&] { swap_with_symlink(swapped, target, stop); });
        const Outcome o =
            run_worker(dir, "version = 1\n[profile.default]\nconnect = [\"unix:" + granted + "\"]\n",
                       {{"connect-race", "unix:" + granted, "2000", "A"}});
        stop = true;
        attacker.join();
        ASSERT_EQ(o.status, 0) << o.err;
        ASSERT_EQ(o.lines().size(), 1u) << o.out;
        std::printf("[ race     ] %s\n", o.lines()[0].c_str());
        EXPECT_TRUE(o.lines()[0].starts_with("ok connected=")) << o.lines()[0];
        EXPECT_NE(o.lines()[0].find(" wrong=0"), std::string::npos) << o.lines()[0];
        EXPECT_EQ(o.lines()[0].find("connected=0 "), std::string::npos) << "no connect got through at all";
        EXPECT_EQ(forbidden.served(), 0);
    }

    TempDir dir;
};

TEST_F(SocketAttack, ASocketFileSwappedForASymlinkNeverReachesItsTarget) {
    const Server granted(unix_listener(dir / "pub/ok.sock"), Server::Mode::greet, 'A');
    const Server forbidden(unix_listener(dir / "secret/s.sock"), Server::Mode::greet, 'B');
    race(dir / "pub/ok.sock", dir / "pub/ok.sock", dir / "secret/s.sock", forbidden);
}

TEST_F(SocketAttack, ADirectorySwappedForASymlinkNeverLeadsElsewhere) {
    const Server granted(unix_listener(dir / "pub/dir/ok.sock"), Server::Mode::greet, 'A');
    const Server forbidden(unix_listener(dir / "secret/ok.sock"), Server::Mode::greet, 'B');
    race(dir / "pub/dir/ok.sock", dir / "pub/dir", dir / "secret", forbidden);
}

TEST_F(SocketAttack, ListeningThroughASymlinkedDirectoryIsRefused) {
    ASSERT_EQ(::symlink((dir / "secret").c_str(), (dir / "pub/link").c_str()), 0);
    const Outcome o = run_worker(
        dir,
        "version = 1\n[profile.default]\nlisten = [\"unix:" + dir / "pub/link/*" +
            "\"]\nconnect = [\"unix:" + dir / "pub/link/*" + "\"]\n",
        {{"listen", "unix:" + dir / "pub/link/x.sock", "1"}, {"connect", "unix:" + dir / "pub/link/x.sock"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ELOOP", "ELOOP"}));
    EXPECT_FALSE(exists(dir / "secret/x.sock"));
}

}  // namespace
}  // namespace fdbroker::test
