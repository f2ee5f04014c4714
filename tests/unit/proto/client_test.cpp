// libfdbroker's C++ API against an in-process fake broker: attach, every call, errno, fds, out-of-order
// replies under concurrency, a vanishing broker, and fork.
#include "support/fake_broker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "proto/wire.hpp"

namespace fdbroker {
namespace {

using namespace fake;
using namespace std::chrono_literals;

TEST_F(ClientTest, OpenReturnsAUsableFd) {
    write_file(broker_.file("/hello.txt"), "hello, world\n");
    unique_fd fd = client_->open("/hello.txt", O_RDONLY | O_CLOEXEC, 0, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    ASSERT_TRUE(fd);
    EXPECT_EQ(read_all(fd.get()), "hello, world\n");
    EXPECT_EQ(broker_.attach_pids(), std::vector<pid_t>{::getpid()});
}

TEST_F(ClientTest, OpenCloexecIsHonouredBothWays) {
    write_file(broker_.file("/f"), "x");
    unique_fd with = client_->open("/f", O_RDONLY | O_CLOEXEC, 0, ec_);
    ASSERT_FALSE(ec_);
    EXPECT_EQ(::fcntl(with.get(), F_GETFD), FD_CLOEXEC);
    unique_fd without = client_->open("/f", O_RDONLY, 0, ec_);
    ASSERT_FALSE(ec_);
    EXPECT_EQ(::fcntl(without.get(), F_GETFD), 0);
}

TEST_F(ClientTest, OpenCreatePassesTheMode) {
    ::umask(022);
    unique_fd fd = client_->open("/new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    struct ::stat st {};
    ASSERT_EQ(::stat(broker_.file("/new").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    client_->open("/new", O_WRONLY | O_CREAT | O_EXCL, 0640, ec_);
    EXPECT_EQ(ec_, std::error_code(EEXIST, std::system_category()));
}

TEST_F(ClientTest, ErrnoComesFromTheBroker) {
    EXPECT_FALSE(client_->open("/denied/x", O_RDONLY, 0, ec_));
    EXPECT_EQ(ec_, std::error_code(EACCES, std::system_category()));
    EXPECT_EQ(ec_.category(), std::system_category());
    client_->open("/missing", O_RDONLY, 0, ec_);
    EXPECT_EQ(ec_.value(), ENOENT);
    client_->access("/denied/x", R_OK, ec_);
    EXPECT_EQ(ec_.value(), EACCES);
    client_->stat("/missing", ec_);
    EXPECT_EQ(ec_.value(), ENOENT);
    client_->mkdir("/denied/d", 0755, ec_);
    EXPECT_EQ(ec_.value(), EACCES);
    client_->rename("/denied/a", "/b", ec_);
    EXPECT_EQ(ec_.value(), EACCES);
}

TEST_F(ClientTest, AccessStatReadlink) {
    write_file(broker_.file("/data"), "12345");
    ASSERT_EQ(::symlink("data", broker_.file("/link").c_str()), 0);
    client_->access("/data", R_OK | W_OK, ec_);
    EXPECT_FALSE(ec_);
    client_->access("/nope", F_OK, ec_);
    EXPECT_EQ(ec_.value(), ENOENT);
    client_->access("/data", 0x40, ec_);
    EXPECT_EQ(ec_.value(), EINVAL);

    struct ::stat real {};
    ASSERT_EQ(::stat(broker_.file("/data").c_str(), &real), 0);
    const struct ::stat st = client_->stat("/link", ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(st.st_size, 5);
    EXPECT_EQ(st.st_ino, real.st_ino);
    EXPECT_EQ(st.st_dev, real.st_dev);
    EXPECT_EQ(st.st_mode, real.st_mode);
    EXPECT_EQ(st.st_mtim.tv_sec, real.st_mtim.tv_sec);
    EXPECT_EQ(st.st_mtim.tv_nsec, real.st_mtim.tv_nsec);

    EXPECT_EQ(client_->readlink("/link", ec_), "data");
    EXPECT_FALSE(ec_);
    std::array<char, 2> small{};
    EXPECT_EQ(client_->readlink("/link", small, ec_), 2u);
    EXPECT_FALSE(ec_);
    EXPECT_EQ(std::string(small.data(), 2), "da");
    client_->readlink("/data", ec_);
    EXPECT_EQ(ec_.value(), EINVAL);
    client_->readlink("/link", std::span<char>(), ec_);
    EXPECT_EQ(ec_.value(), EINVAL);
}

TEST_F(ClientTest, MkdirRenameUnlinkRmdir) {
    ::umask(022);
    client_->mkdir("/dir", 0750, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    struct ::stat st {};
    ASSERT_EQ(::stat(broker_.file("/dir").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0750u);
    client_->mkdir("/dir", 0750, ec_);
    EXPECT_EQ(ec_.value(), EEXIST);

    write_file(broker_.file("/dir/a"), "a");
    client_->rename("/dir/a", "/dir/b", ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_FALSE(fs::exists(broker_.file("/dir/a")));
    EXPECT_TRUE(fs::exists(broker_.file("/dir/b")));
    client_->rmdir("/dir", ec_);
    EXPECT_EQ(ec_.value(), ENOTEMPTY);
    client_->unlink("/dir/b", ec_);
    EXPECT_FALSE(ec_);
    client_->unlink("/dir/b", ec_);
    EXPECT_EQ(ec_.value(), ENOENT);
    client_->rmdir("/dir", ec_);
    EXPECT_FALSE(ec_);
    EXPECT_FALSE(fs::exists(broker_.file("/dir")));
}

// A unique abstract socket name for this test process.
TEST_F(ClientTest, ListenAndConnectReturnWorkingCloexecSockets) {
    const std::string address = "unix:@" + abstract_name("listen");
    unique_fd listener = client_->listen(address.c_str(), 5, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    ASSERT_TRUE(listener);
    EXPECT_TRUE(is_listening(listener.get()));
    EXPECT_EQ(::fcntl(listener.get(), F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(broker_.last_backlog(), 5);

    unique_fd conn = client_->connect(address.c_str(), ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    ASSERT_TRUE(conn);
    EXPECT_EQ(::fcntl(conn.get(), F_GETFD), FD_CLOEXEC);
    EXPECT_FALSE(is_listening(conn.get()));
    unique_fd served(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(served);
    ASSERT_EQ(::write(conn.get(), "ping", 4), 4);
    char buf[4];
    ASSERT_EQ(::read(served.get(), buf, sizeof buf), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
}

TEST_F(ClientTest, ABacklogTravelsAsTheSameInt) {
    client_->listen(("unix:@" + abstract_name("negative")).c_str(), -1, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(broker_.last_backlog(), -1);
}

TEST_F(ClientTest, SocketErrorsComeFromTheBrokerOrTheArguments) {
    EXPECT_FALSE(client_->connect("unix:@denied", ec_));
    EXPECT_EQ(ec_, std::error_code(EACCES, std::system_category()));
    EXPECT_FALSE(client_->listen("tcp:1.2.3.4", 1, ec_));
    EXPECT_EQ(ec_.value(), EINVAL);
    EXPECT_FALSE(client_->connect(("unix:@" + abstract_name("nobody-listens")).c_str(), ec_));
    EXPECT_EQ(ec_.value(), ECONNREFUSED);
    const int attaches = static_cast<int>(broker_.attach_pids().size());
    // These never reach the broker.
    EXPECT_FALSE(client_->connect(nullptr, ec_));
    EXPECT_EQ(ec_.value(), EFAULT);
    EXPECT_FALSE(client_->listen("", 1, ec_));
    EXPECT_EQ(ec_.value(), EINVAL);
    EXPECT_FALSE(client_->connect(("unix:@" + std::string(wire::kMaxPath, 'a')).c_str(), ec_));
    EXPECT_EQ(ec_.value(), EINVAL);
    EXPECT_EQ(static_cast<int>(broker_.attach_pids().size()), attaches);
}

TEST_F(ClientTest, ArgumentsAreCheckedLikeTheSyscalls) {
    client_->open(nullptr, O_RDONLY, 0, ec_);
    EXPECT_EQ(ec_.value(), EFAULT);
    client_->stat("", ec_);
    EXPECT_EQ(ec_.value(), ENOENT);
    const std::string longest(wire::kMaxPath, 'a');
    const std::string too_long(wire::kMaxPath + 1, 'a');
    client_->unlink(too_long.c_str(), ec_);
    EXPECT_EQ(ec_.value(), ENAMETOOLONG);
    client_->rename("/a", too_long.c_str(), ec_);
    EXPECT_EQ(ec_.value(), ENAMETOOLONG);
    client_->rename("/a", nullptr, ec_);
    EXPECT_EQ(ec_.value(), EFAULT);
    // The longest legal path reaches the broker (which finds no such file).
    client_->stat(("/" + longest.substr(1)).c_str(), ec_);
    EXPECT_TRUE(ec_.value() == ENAMETOOLONG || ec_.value() == ENOENT) << ec_.message();
    // None of these was sent: the broker saw only the attach of the last call.
    EXPECT_EQ(broker_.attach_pids().size(), 1u);
}

TEST_F(ClientTest, StrayRepliesAreDroppedWithTheirFds) {
    client_->stat("/size/1", ec_);
    ASSERT_FALSE(ec_);
    const int before = count_open_fds();
    const struct ::stat st = client_->stat("/stray", ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(st.st_size, 42);
    // One more round trip, so the fake has closed its own copy of the stray fd.
    client_->stat("/size/1", ec_);
    ASSERT_FALSE(ec_);
    EXPECT_EQ(count_open_fds(), before);
}

TEST_F(ClientTest, AMalformedReplyEndsTheChannelAndTheNextCallAttachesAgain) {
    client_->stat("/size/1", ec_);
    ASSERT_FALSE(ec_);
    client_->stat("/garbage", ec_);
    EXPECT_EQ(ec_.value(), ECONNRESET);
    const struct ::stat st = client_->stat("/size/9", ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(st.st_size, 9);
    EXPECT_EQ(broker_.attach_pids().size(), 2u);
}

TEST_F(ClientTest, AttachRefusedGivesItsErrnoAndIsRetried) {
    broker_.set_attach_errno(EPERM);
    client_->stat("/size/1", ec_);
    EXPECT_EQ(ec_.value(), EPERM);
    broker_.set_attach_errno(0);
    EXPECT_EQ(client_->stat("/size/3", ec_).st_size, 3);
    EXPECT_FALSE(ec_);
    EXPECT_EQ(broker_.attach_pids().size(), 2u);
}

TEST_F(ClientTest, BrokerClosingFailsEveryCallWithEconnreset) {
    struct sigaction pipe_action {};
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &pipe_action), 0);
    ASSERT_EQ(pipe_action.sa_handler, SIG_DFL) << "the test means nothing if SIGPIPE is ignored";
    client_->stat("/size/1", ec_);
    ASSERT_FALSE(ec_);
    // Four calls in flight when the broker goes away.
    std::vector<std::thread> threads;
    threads.reserve(4);
    std::array<int, 4> errors{};
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] {
            std::error_code ec;
            client_->stat("/hang", ec);
            errors[i] = ec.value();
        });
    }
    while (broker_.hung() < 4)
        std::this_thread::sleep_for(1ms);
    client_->stat("/close", ec_);
    EXPECT_EQ(ec_.value(), ECONNRESET);
    for (auto& t : threads)
        t.join();
    for (int e : errors)
        EXPECT_EQ(e, ECONNRESET);
    // The bootstrap channel is gone too: attaching again fails the same way, without SIGPIPE
    // (which keeps its default action here: it would kill this process).
    client_->open("/anything", O_RDONLY, 0, ec_);
    EXPECT_EQ(ec_.value(), ECONNRESET);
    client_->unlink("/anything", ec_);
    EXPECT_EQ(ec_.value(), ECONNRESET);
}

TEST_F(ClientTest, APrivateChannelDroppedWhileIdleFailsOneCallThenReattaches) {
    client_->stat("/drop", ec_);
    EXPECT_EQ(ec_.value(), EIO);
    // The send meets the closed channel (EPIPE, never SIGPIPE): that call fails...
    client_->stat("/size/1", ec_);
    EXPECT_EQ(ec_.value(), ECONNRESET);
    // ...and the next attaches a new channel over the bootstrap channel, which still works.
    EXPECT_EQ(client_->stat("/size/2", ec_).st_size, 2);
    EXPECT_FALSE(ec_);
    EXPECT_EQ(broker_.attach_pids().size(), 2u);
}

TEST(ClientConcurrency, OutOfOrderRepliesReachTheirCallers) {
    FakeBroker broker(/*reverse=*/true);
    broker.start();
    std::error_code ec;
    auto client = Client::from_channel(broker.bootstrap(), ec);
    ASSERT_TRUE(client) << ec.message();
    constexpr int kThreads = 8;
    constexpr int kCalls = 2000;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kCalls; ++i) {
                const long n = t * 100000L + i;
                const std::string path = "/size/" + std::to_string(n);
                std::error_code e;
                // Mostly stat; some readlink (payload) and open (fd) to check those are routed too.
                if (i % 10 == 3) {
                    unique_fd fd = client->open(path.c_str(), O_RDONLY | O_CLOEXEC, 0, e);
                    struct ::stat st {};
                    if (e || ::fstat(fd.get(), &st) != 0 || st.st_size != n) ++failures;
                } else if (i % 10 == 7) {
                    if (client->readlink(path.c_str(), e) != "target-" + std::to_string(n) || e) ++failures;
                } else {
                    const struct ::stat st = client->stat(path.c_str(), e);
                    if (e || st.st_size != n || st.st_ino != static_cast<ino_t>(n) * 7) ++failures;
                }
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(broker.reordered_batches(), 0) << "the fake never answered out of order";
    // All threads started on a fresh client at once; only one of them attached.
    EXPECT_EQ(broker.attach_pids().size(), 1u);
}

TEST_F(ClientTest, ChildAttachesItsOwnChannelAfterFork) {
    EXPECT_EQ(client_->stat("/size/1", ec_).st_size, 1);
    ASSERT_FALSE(ec_);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::error_code ec;
        const struct ::stat st = client_->stat("/size/2", ec);
        ::_exit(!ec && st.st_size == 2 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(broker_.attach_pids(), (std::vector<pid_t>{::getpid(), child}));
    // The parent goes on over its own channel.
    EXPECT_EQ(client_->stat("/size/3", ec_).st_size, 3);
    EXPECT_FALSE(ec_);
    EXPECT_EQ(broker_.attach_pids().size(), 2u);
}

TEST_F(ClientTest, AChildOfARawForkAttachesItsOwnChannel) {
    // No fork handlers run for the fork system call made directly: the child knows it is another
    // process only because the page its pid is cached in comes to it empty.
    EXPECT_EQ(client_->stat("/size/1", ec_).st_size, 1);
    ASSERT_FALSE(ec_);
    const auto child = static_cast<pid_t>(::syscall(SYS_fork));
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::error_code ec;
        const struct ::stat st = client_->stat("/size/2", ec);
        ::_exit(!ec && st.st_size == 2 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(broker_.attach_pids(), (std::vector<pid_t>{::getpid(), child}));
    EXPECT_EQ(client_->stat("/size/3", ec_).st_size, 3);
    EXPECT_FALSE(ec_);
}

TEST_F(ClientTest, ForkWhileAnotherThreadWaitsForAReply) {
    EXPECT_EQ(client_->stat("/size/1", ec_).st_size, 1);
    std::thread waiting([&] {
        std::error_code ec;
        client_->stat("/hang", ec);  // answered with ECONNRESET when the test ends the channel
    });
    while (broker_.hung() < 1)
        std::this_thread::sleep_for(1ms);
    // The child inherits a reader and a waiter that do not exist in it; it must start afresh.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::error_code ec;
        const struct ::stat st = client_->stat("/size/5", ec);
        ::_exit(!ec && st.st_size == 5 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(client_->stat("/size/6", ec_).st_size, 6);
    client_->stat("/close", ec_);
    waiting.join();
}

TEST_F(ClientTest, FromChannelChecksTheSocket) {
    std::error_code ec;
    EXPECT_FALSE(Client::from_channel(unique_fd(), ec));
    EXPECT_EQ(ec.value(), EBADF);
    EXPECT_FALSE(Client::from_channel(unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), ec));
    EXPECT_EQ(ec.value(), ENOTSOCK);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    unique_fd other(sv[1]);
    EXPECT_FALSE(Client::from_channel(unique_fd(sv[0]), ec));
    EXPECT_EQ(ec.value(), EPROTOTYPE);
}

// The C API over the process-wide client, in children whose FDBROKER_FD is a bootstrap channel.

}  // namespace
}  // namespace fdbroker
