// A reload revokes: every serve-mode client is judged again by the credentials the kernel recorded when
// it connected. A client no profile names any more loses its connection and every channel attached
// through it (and the connects they wait for); a client another profile names now is judged by that
// profile from its next request on, on the same channels. Clients stay connected across each reload
// by waiting on a line from the test (`wait-line`).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"
#include "support/serve_broker.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::test {
namespace {

class Reload : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "clients run under other uids (setpriv needs root)";
        if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
        for (const char* d : {"a", "b", "c"}) {
            ::mkdir((dir / d).c_str(), 0755);
            write_file(dir / (std::string(d) + "/file"), std::string("in ") + d);
        }
    }

    // A profile serving `clients` that may read directory `d`.
    std::string profile(const std::string& name, const std::string& clients, const std::string& d,
                        const std::string& extra = "") const {
        return "[profile." + name + "]\nclients = " + clients + "\nread = [\"" + dir / d + "/**\"]\n" + extra;
    }

    // A client that keeps its supplementary groups `groups` (setpriv --groups) instead of none.
    static std::vector<std::string> with_groups(std::vector<std::string> argv, const std::string& groups) {
        std::replace(argv.begin(), argv.end(), std::string("--clear-groups"), "--groups=" + groups);
        return argv;
    }

    TempDir dir;
};

TEST_F(Reload, AClientNoProfileNamesAnyMoreLosesItsChannelsAndCannotComeBack) {
    ServeBroker broker(dir,
                       profile("a", "{ users = [1001] }", "a") + profile("b", "{ users = [1002] }", "b"));
    ASSERT_TRUE(broker.ready());
    const std::string a = dir / "a/file", b = dir / "b/file";
    Process alice(broker.client(1001, 1001, {{"read", a}, {"wait-line"}, {"read", a}, {"read", a}}));
    Process bob(broker.client(1002, 1002, {{"read", b}, {"wait-line"}, {"read", b}}));
    ASSERT_EQ(alice.read_line(), "ok in a");
    ASSERT_EQ(alice.read_line(), "waiting");
    ASSERT_EQ(bob.read_line(), "ok in b");
    ASSERT_EQ(bob.read_line(), "waiting");

    // Profile a still exists, with the same rules: only its clients changed, and 1001 is not among them.
    ASSERT_TRUE(
        broker.reload(profile("a", "{ users = [1003] }", "a") + profile("b", "{ users = [1002] }", "b")));
    alice.write("\n");
    // Its private channel is gone, and so is the connection it would attach a new one through.
    EXPECT_EQ(alice.read_line(), "ECONNRESET");
    EXPECT_EQ(alice.read_line(), "ECONNRESET");
    const pid_t alice_pid = alice.pid();
    EXPECT_EQ(alice.wait().status, 0);
    const Outcome again = broker.run_client(1001, 1001, {{"read", a}});
    ASSERT_EQ(again.lines().size(), 1u) << again.err;
    EXPECT_FALSE(again.lines()[0].starts_with("ok")) << again.lines()[0];
    // The client whose profile stayed is served as before.
    bob.write("\n");
    EXPECT_EQ(bob.read_line(), "ok in b");
    const pid_t bob_pid = bob.pid();
    EXPECT_EQ(bob.wait().status, 0);

    const Outcome stopped = broker.stop();
    EXPECT_TRUE(
        contains(stopped.err, "reload: client pid " + std::to_string(alice_pid) +
                                  " (uid 1001) no longer matches any profile: closing its 2 channels"))
        << stopped.err;
    EXPECT_FALSE(contains(stopped.err, "client pid " + std::to_string(bob_pid))) << stopped.err;
    EXPECT_TRUE(contains(stopped.err, "refused a client")) << stopped.err;
}

TEST_F(Reload, AClientAnotherProfileNamesNowIsJudgedByItOnTheSameChannels) {
    ServeBroker broker(dir,
                       profile("a", "{ users = [1001] }", "a") + profile("b", "{ users = [1002] }", "b"));
    ASSERT_TRUE(broker.ready());
    const std::string a = dir / "a/file", b = dir / "b/file";
    // After the reload, a child attaches a channel of its own through the same connection.
    Process alice(broker.client(
        1001, 1001,
        {{"read", a}, {"wait-line"}, {"read", a}, {"read", b}, {"fork", "read", b}, {"fork", "read", a}}));
    ASSERT_EQ(alice.read_line(), "ok in a");
    ASSERT_EQ(alice.read_line(), "waiting");

    ASSERT_TRUE(
        broker.reload(profile("a", "{ users = [1002] }", "a") + profile("b", "{ users = [1001] }", "b")));
    alice.write("\n");
    // No ECONNRESET: the channel it had is still open, and now profile b answers on it.
    EXPECT_EQ(alice.read_line(), "EACCES");
    EXPECT_EQ(alice.read_line(), "ok in b");
    EXPECT_EQ(alice.read_line(), "ok in b");
    EXPECT_EQ(alice.read_line(), "EACCES");
    const pid_t alice_pid = alice.pid();
    EXPECT_EQ(alice.wait().status, 0);

    const Outcome stopped = broker.stop();
    EXPECT_TRUE(contains(stopped.err, "reload: client pid " + std::to_string(alice_pid) +
                                          " (uid 1001) now gets profile 'b' (was 'a')"))
        << stopped.err;
}

TEST_F(Reload, AClientWhoseProfileIsGoneIsServedByTheProfileThatNamesItNow) {
    ServeBroker broker(dir,
                       profile("a", "{ users = [1001] }", "a") + profile("b", "{ users = [1002] }", "b"));
    ASSERT_TRUE(broker.ready());
    const std::string a = dir / "a/file", b = dir / "b/file";
    Process alice(broker.client(1001, 1001, {{"read", a}, {"wait-line"}, {"read", a}, {"read", b}}));
    ASSERT_EQ(alice.read_line(), "ok in a");
    ASSERT_EQ(alice.read_line(), "waiting");

    ASSERT_TRUE(broker.reload(profile("b", "{ users = [1002, 1001] }", "b")));
    alice.write("\n");
    EXPECT_EQ(alice.read_line(), "EACCES");
    EXPECT_EQ(alice.read_line(), "ok in b");
    const pid_t alice_pid = alice.pid();
    EXPECT_EQ(alice.wait().status, 0);

    const Outcome stopped = broker.stop();
    EXPECT_TRUE(contains(stopped.err, "reload: profile 'a' is gone")) << stopped.err;
    EXPECT_TRUE(contains(stopped.err, "reload: client pid " + std::to_string(alice_pid) +
                                          " (uid 1001) now gets profile 'b' (was 'a')"))
        << stopped.err;
}

TEST_F(Reload, ARequestInFlightIsAnsweredAsJudgedAndTheNextOneByTheNewProfile) {
    const std::string a = dir / "a/file", b = dir / "b/file", fifo = dir / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0666), 0);
    // A FIFO named explicitly: its open waits for a writer, in the broker, as natively.
    ServeBroker broker(dir, "[profile.a]\nclients = { users = [1001] }\nread = [\"" + dir / "a/**" +
                                "\", \"" + fifo + "\"]\n" + profile("b", "{ users = [1002] }", "b"));
    ASSERT_TRUE(broker.ready());
    Process alice(broker.client(
        1001, 1001,
        {{"read", a}, {"wait-line"}, {"background", "read", fifo}, {"wait-line"}, {"read", b}, {"join"}}));
    ASSERT_EQ(alice.read_line(), "ok in a");
    ASSERT_EQ(alice.read_line(), "waiting");
    // The broker is serving (its watchdog thread runs): what it runs now, plus one, means a request
    // is stuck and another thread has taken the loop over.
    const std::size_t threads = threads_of(broker.pid());
    alice.write("\n");
    ASSERT_EQ(alice.read_line(), "waiting");
    ASSERT_TRUE(wait_for_more_threads(broker.pid(), threads)) << "the FIFO's open never got stuck";

    // Profile a goes while its request is being performed; the client is b's now.
    ASSERT_TRUE(broker.reload(profile("b", "{ users = [1002, 1001] }", "b")));
    {
        const unique_fd writer(::open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
        ASSERT_TRUE(writer);
        ASSERT_EQ(::write(writer.get(), "through the fifo", 16), 16);
    }
    EXPECT_EQ(alice.read_line(), "ok through the fifo");
    alice.write("\n");
    EXPECT_EQ(alice.read_line(), "ok in b");
    EXPECT_EQ(alice.wait().status, 0);
    // The broker of profile a outlived the request it was performing.
    const Outcome stopped = broker.stop();
    EXPECT_EQ(stopped.status, 0) << stopped.err;
}

TEST_F(Reload, AClientMatchedThroughASupplementaryGroupTheNewPolicyDropsLosesItsChannels) {
    ServeBroker broker(dir, profile("media", "{ groups = [2001] }", "c"));
    ASSERT_TRUE(broker.ready());
    const std::string c = dir / "c/file";
    Process carol(with_groups(broker.client(1004, 1004, {{"read", c}, {"wait-line"}, {"read", c}}), "2001"));
    ASSERT_EQ(carol.read_line(), "ok in c");
    ASSERT_EQ(carol.read_line(), "waiting");

    ASSERT_TRUE(broker.reload(profile("media", "{ groups = [2002] }", "c")));
    carol.write("\n");
    EXPECT_EQ(carol.read_line(), "ECONNRESET");
    const pid_t carol_pid = carol.pid();
    EXPECT_EQ(carol.wait().status, 0);

    const Outcome stopped = broker.stop();
    EXPECT_TRUE(contains(stopped.err, "reload: client pid " + std::to_string(carol_pid) +
                                          " (uid 1004) no longer matches any profile"))
        << stopped.err;
}

TEST_F(Reload, AConnectInProgressEndsWithTheClientsChannels) {
    const Unanswering peer;
    const std::string address = "tcp:127.0.0.1:" + std::to_string(peer.port());
    // A timeout far beyond the test: only the reload can end the connect.
    const std::string connect = "connect = [\"" + address + "\"]\nconnect_timeout = 600\n";
    ServeBroker broker(dir, profile("a", "{ users = [1001] }", "a", connect));
    ASSERT_TRUE(broker.ready());
    Process alice(broker.client(1001, 1001, {{"background", "connect", address}, {"wait-line"}, {"join"}}));
    ASSERT_EQ(alice.read_line(), "waiting");
    ASSERT_TRUE(wait_for_syn_sent(peer.port())) << "the broker's connect never showed up";

    ASSERT_TRUE(broker.reload(profile("a", "{ users = [1003] }", "a", connect)));
    // Cancelled with the reload: the broker's socket is closed, and the client's call ends.
    EXPECT_FALSE(syn_sent_to(peer.port()));
    alice.write("\n");
    EXPECT_EQ(alice.read_line(), "ECONNRESET");
    EXPECT_EQ(alice.wait().status, 0);
}

}  // namespace
}  // namespace fdbroker::test
