// How libfdbroker finds its broker: FDBROKER_FD, FDBROKER_SOCKET (path or @abstract), the default
// socket, and ENOTCONN when none is there.
#include "support/fake_broker.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

#include "client/connection.hpp"
#include "fdbroker/fdbroker.h"

namespace fdbroker {
namespace {

using namespace fake;

TEST(ClientDiscovery, NoBrokerReachableIsEnotconn) {
    EXPECT_EQ(in_child([] {
                  ::unsetenv("FDBROKER_FD");
                  ::setenv("FDBROKER_SOCKET", "/nonexistent/fdbroker-test.sock", 1);
                  std::error_code ec;
                  Client& client = Client::global(ec);
                  CHILD_CHECK(ec.value() == ENOTCONN);
                  client.stat("/x", ec);
                  CHILD_CHECK(ec.value() == ENOTCONN);
                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/x", &st) == -1 && errno == ENOTCONN);
                  CHILD_CHECK(fdbroker_open("/x", O_RDONLY) == -1 && errno == ENOTCONN);
                  CHILD_CHECK(fdbroker_unlink("/x") == -1 && errno == ENOTCONN);
                  // Argument errors still come first, as from the syscall.
                  CHILD_CHECK(fdbroker_unlink(nullptr) == -1 && errno == EFAULT);
                  return 0;
              }),
              0);
}

TEST(ClientDiscovery, FdbrokerFdThatIsNotAChannelIsEnotconn) {
    EXPECT_EQ(in_child([] {
                  const int null = ::open("/dev/null", O_RDONLY);
                  ::setenv("FDBROKER_FD", std::to_string(null).c_str(), 1);
                  // FDBROKER_FD is authoritative: no fallback even to a socket that would work.
                  ::setenv("FDBROKER_SOCKET", "@fdbroker-never-listening", 1);
                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/x", &st) == -1 && errno == ENOTCONN);
                  return 0;
              }),
              0);
    for (const char* text : {"", "abc", "-1", "3x", " 3", "99999999999", "1000000"}) {
        BootstrapSource source;
        source.fd = text;
        source.socket = "/nonexistent";
        unique_fd out;
        EXPECT_EQ(open_bootstrap(source, out), ENOTCONN) << '"' << text << '"';
        EXPECT_FALSE(out);
    }
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    unique_fd a(sv[0]), b(sv[1]);
    const std::string text = std::to_string(a.get());
    BootstrapSource source;
    source.fd = text.c_str();
    unique_fd out;
    EXPECT_EQ(open_bootstrap(source, out), ENOTCONN);
}

TEST(ClientDiscovery, ConnectsToFdbrokerSocketPathAndAbstractName) {
    FakeBroker broker;
    const std::string path = (broker.root() / "broker.sock").string();
    const std::string abstract = "@fdbroker-test-" + std::to_string(::getpid());
    broker.listen(path);
    broker.start();
    EXPECT_EQ(in_child([&] {
                  ::unsetenv("FDBROKER_FD");
                  ::setenv("FDBROKER_SOCKET", path.c_str(), 1);
                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/size/31", &st) == 0 && st.st_size == 31);
                  return 0;
              }),
              0);
    broker.stop();

    FakeBroker abstract_broker;
    abstract_broker.listen(abstract);
    abstract_broker.start();
    EXPECT_EQ(in_child([&] {
                  ::unsetenv("FDBROKER_FD");
                  ::setenv("FDBROKER_SOCKET", abstract.c_str(), 1);
                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/size/32", &st) == 0 && st.st_size == 32);
                  return 0;
              }),
              0);
    EXPECT_EQ(abstract_broker.attach_pids().size(), 1u);
}

TEST(ClientDiscovery, DefaultSocketOfAnUnprivilegedUser) {
    FakeBroker broker;
    broker.listen((broker.root() / "fdbroker.sock").string());
    broker.start();
    const std::string dir = broker.root().string();
    BootstrapSource source;
    source.runtime_dir = dir.c_str();
    unique_fd channel;
    ASSERT_EQ(open_bootstrap(source, channel), 0);
    EXPECT_EQ(::fcntl(channel.get(), F_GETFD), FD_CLOEXEC);
    std::error_code ec;
    auto client = Client::from_channel(std::move(channel), ec);
    ASSERT_TRUE(client) << ec.message();
    EXPECT_EQ(client->stat("/size/8", ec).st_size, 8);
    EXPECT_FALSE(ec);

    // Without XDG_RUNTIME_DIR, or with a relative one, there is nothing to connect to.
    source.runtime_dir = nullptr;
    EXPECT_EQ(open_bootstrap(source, channel), ENOTCONN);
    source.runtime_dir = "relative/dir";
    EXPECT_EQ(open_bootstrap(source, channel), ENOTCONN);
    source.runtime_dir = "/nonexistent";
    EXPECT_EQ(open_bootstrap(source, channel), ENOTCONN);
}

}  // namespace
}  // namespace fdbroker
