// libfdbroker against an in-process fake broker: attach, every call, errno, fds, out-of-order
// replies under concurrency, a vanishing broker, discovery, and fork.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fdbroker/client.hpp"
#include "fdbroker/fdbroker.h"
#include "proto/channel.hpp"
#include "proto/connection.hpp"
#include "proto/wire.hpp"
#include "support/harness.hpp"

namespace fdbroker {
namespace {

namespace fs = std::filesystem;
using std::chrono_literals::operator""ms;

using test::count_open_fds;

// A broker stand-in on its own thread. It accepts attaches on its bootstrap channels (a socketpair
// end, or connections to a listening socket), replies on the new private channel, and serves
// requests from a scratch directory, with a few magic paths:
//   /denied/...   EACCES for every op
//   /size/N       stat: st_size N, st_ino 7N · readlink: "target-N" · open: a memfd of N bytes
//   /hang         no reply                 /close   close every channel at once
//   /drop         EIO, then close this private channel
//   /garbage      a malformed reply        /stray   a reply with an unknown id (and an fd) first
// connect and listen take only abstract unix addresses ("unix:@name", done for real; "unix:@denied..."
// is EACCES) and answer EINVAL to any other address.
// In reverse mode it gathers a few requests before answering and answers them last-first.
class FakeBroker {
  public:
    explicit FakeBroker(bool reverse = false) : reverse_(reverse) {
        char tmpl[] = "/tmp/fdbroker-client-test-XXXXXX";
        root_ = ::mkdtemp(tmpl);
        stop_.reset(::eventfd(0, EFD_CLOEXEC));
        wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    }
    ~FakeBroker() {
        stop();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    // A bootstrap channel: the broker keeps one end, the returned one is the worker's.
    unique_fd bootstrap() {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        proto::enable_credentials(sv[0], false);
        {
            const std::lock_guard lock(mu_);
            bootstraps_.emplace_back(sv[0]);
        }
        wake();
        return unique_fd(sv[1]);
    }

    // Listens at a path or "@abstract" name; each connection is a bootstrap channel.
    void listen(const std::string& address) {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        socklen_t len = 0;
        if (address[0] == '@') {
            std::memcpy(sa.sun_path + 1, address.data() + 1, address.size() - 1);
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
        } else {
            std::memcpy(sa.sun_path, address.data(), address.size());
            len = sizeof sa;
        }
        unique_fd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&sa), len), 0) << std::strerror(errno);
        ASSERT_EQ(::listen(sock.get(), 8), 0);
        {
            const std::lock_guard lock(mu_);
            listener_ = std::move(sock);
        }
        wake();
    }

    void start() {
        thread_ = std::thread([this] { run(); });
    }

    void stop() {
        if (!thread_.joinable()) return;
        const std::uint64_t one = 1;
        EXPECT_EQ(::write(stop_.get(), &one, sizeof one), 8);
        thread_.join();
    }

    std::vector<pid_t> attach_pids() {
        const std::lock_guard lock(mu_);
        return attach_pids_;
    }
    void set_attach_errno(int err) { attach_errno_ = err; }
    int hung() const { return hung_; }
    int last_backlog() const { return last_backlog_; }
    int reordered_batches() const { return reordered_; }
    const fs::path& root() const { return root_; }
    std::string file(const std::string& name) const { return (root_ / name.substr(1)).string(); }

  private:
    // Makes the thread rebuild its poll set (a channel was added from the test thread).
    void wake() {
        const std::uint64_t one = 1;
        EXPECT_EQ(::write(wake_.get(), &one, sizeof one), 8);
    }

    struct Outgoing {
        int channel;
        std::vector<std::byte> frame;
        unique_fd fd;
    };

    void run() {
        std::vector<Outgoing> batch;
        for (;;) {
            std::vector<pollfd> fds;
            {
                const std::lock_guard lock(mu_);
                fds.push_back({stop_.get(), POLLIN, 0});
                fds.push_back({wake_.get(), POLLIN, 0});
                if (listener_) fds.push_back({listener_.get(), POLLIN, 0});
                for (auto& b : bootstraps_)
                    fds.push_back({b.get(), POLLIN, 0});
                for (auto& c : channels_)
                    fds.push_back({c.get(), POLLIN, 0});
            }
            // In reverse mode, wait a moment for more requests before answering a small batch.
            const int timeout = batch.empty() ? -1 : (batch.size() < 4 ? 1 : 0);
            const int ready = ::poll(fds.data(), fds.size(), timeout);
            if (ready == 0) {
                flush(batch);
                continue;
            }
            if (fds[0].revents != 0) return;
            if (fds[1].revents != 0) {
                std::uint64_t count = 0;
                static_cast<void>(::read(wake_.get(), &count, sizeof count));
            }
            for (std::size_t i = 2; i < fds.size(); ++i) {
                if (fds[i].revents == 0) continue;
                const int fd = fds[i].fd;
                if (listener_ && fd == listener_.get()) {
                    accept_one();
                } else if (is_bootstrap(fd)) {
                    on_bootstrap(fd);
                } else {
                    drain(fd, batch);
                }
                if (closed_) break;
            }
            if (closed_) {
                batch.clear();
                close_all();
                continue;
            }
            if (!reverse_ || batch.size() >= 4) flush(batch);
        }
    }

    bool is_bootstrap(int fd) {
        const std::lock_guard lock(mu_);
        return std::any_of(bootstraps_.begin(), bootstraps_.end(),
                           [&](const unique_fd& b) { return b.get() == fd; });
    }

    void accept_one() {
        unique_fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) return;
        proto::enable_credentials(conn.get(), false);
        const std::lock_guard lock(mu_);
        bootstraps_.push_back(std::move(conn));
    }

    void drop(int fd) {
        const std::lock_guard lock(mu_);
        std::erase_if(bootstraps_, [&](const unique_fd& b) { return b.get() == fd; });
        std::erase_if(channels_, [&](const unique_fd& c) { return c.get() == fd; });
    }

    void close_all() {
        const std::lock_guard lock(mu_);
        bootstraps_.clear();
        channels_.clear();
        listener_.reset();
    }

    void on_bootstrap(int fd) {
        std::array<std::byte, wire::kMaxRequestSize + 1> buf;
        proto::Received r = proto::receive(fd, buf, MSG_DONTWAIT, 1);
        if (r.status == proto::RecvStatus::would_block) return;
        if (r.status != proto::RecvStatus::ok) return drop(fd);
        const wire::DecodedRequest d = wire::decode_request(std::span(buf.data(), r.size));
        // Only attach, with its channel and credentials, is legal on a bootstrap channel.
        if (!d.request || d.request->op != wire::Op::attach || !r.fd || !r.credentials) return drop(fd);
        {
            const std::lock_guard lock(mu_);
            attach_pids_.push_back(r.credentials->pid);
        }
        const int err = attach_errno_;
        std::vector<Outgoing> one;
        push_reply(one, r.fd.get(), *d.request, err != 0 ? -err : 0);
        flush(one);
        if (err == 0) {
            const std::lock_guard lock(mu_);
            channels_.push_back(std::move(r.fd));
        }
    }

    void drain(int fd, std::vector<Outgoing>& batch) {
        for (;;) {
            std::array<std::byte, wire::kMaxRequestSize + 1> buf;
            proto::Received r = proto::receive(fd, buf, MSG_DONTWAIT, 0);
            if (r.status == proto::RecvStatus::would_block) return;
            const wire::DecodedRequest d = wire::decode_request(std::span(buf.data(), r.size));
            if (r.status != proto::RecvStatus::ok || !d.request) {
                // Answer what is pending before the fd number can be closed and reused.
                flush(batch);
                return drop(fd);
            }
            serve(fd, *d.request, batch);
            if (closed_) return;
        }
    }

    static void push_reply(std::vector<Outgoing>& out, int channel, const wire::Request& rq,
                           std::int32_t result, std::span<const std::byte> payload = {}, unique_fd fd = {}) {
        wire::Reply reply;
        reply.op = rq.op;
        reply.id = rq.id;
        reply.result = result;
        reply.has_fd = static_cast<bool>(fd);
        reply.payload = payload;
        std::vector<std::byte> frame(wire::kMaxReplySize);
        frame.resize(wire::encode_reply(reply, frame));
        out.push_back({channel, std::move(frame), std::move(fd)});
    }

    void flush(std::vector<Outgoing>& batch) {
        if (batch.size() > 1) ++reordered_;
        if (reverse_) std::reverse(batch.begin(), batch.end());
        for (Outgoing& o : batch) {
            // A worker that died meanwhile is no concern of the others.
            static_cast<void>(proto::send(o.channel, o.frame, {.fd = o.fd.get()}));
        }
        batch.clear();
    }

    void serve(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
        const std::string path(rq.path);
        if (rq.op == wire::Op::connect || rq.op == wire::Op::listen) return socket_op(channel, rq, out);
        if (path.starts_with("/denied")) return push_reply(out, channel, rq, -EACCES);
        if (path == "/hang") {
            ++hung_;
            return;
        }
        if (path == "/close") {
            closed_ = true;
            return;
        }
        if (path == "/drop") {
            // Answer, then drop this worker's channel (but keep the bootstrap channel).
            push_reply(out, channel, rq, -EIO);
            flush(out);
            return drop(channel);
        }
        if (path == "/garbage") {
            const std::string junk = "not a reply at all";
            const auto b = std::as_bytes(std::span(junk));
            out.push_back({channel, std::vector<std::byte>(b.begin(), b.end()), {}});
            return;
        }
        if (path == "/stray") {
            wire::Request other = rq;
            other.op = wire::Op::open;
            other.id = rq.id ^ 0x80000000U;
            push_reply(out, channel, other, 0, {}, unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
            return sized(channel, rq, 42, out);
        }
        if (path.starts_with("/size/")) {
            long n = 0;
            std::from_chars(path.data() + 6, path.data() + path.size(), n);
            return sized(channel, rq, n, out);
        }
        real(channel, rq, out);
    }

    static void sized(int channel, const wire::Request& rq, long n, std::vector<Outgoing>& out) {
        switch (rq.op) {
            case wire::Op::stat: {
                struct ::stat st {};
                st.st_size = n;
                st.st_ino = static_cast<ino_t>(n) * 7;
                st.st_mode = S_IFREG | 0600;
                std::array<std::byte, wire::kStatPayloadSize> payload;
                wire::encode_stat(st, payload);
                return push_reply(out, channel, rq, 0, payload);
            }
            case wire::Op::readlink: {
                const std::string target = "target-" + std::to_string(n);
                return push_reply(out, channel, rq, static_cast<std::int32_t>(target.size()),
                                  std::as_bytes(std::span(target)));
            }
            case wire::Op::open: {
                unique_fd fd(::memfd_create("sized", MFD_CLOEXEC));
                if (::ftruncate(fd.get(), n) != 0) return push_reply(out, channel, rq, -errno);
                return push_reply(out, channel, rq, 0, {}, std::move(fd));
            }
            default:
                return push_reply(out, channel, rq, -ENOSYS);
        }
    }

    void socket_op(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
        constexpr std::string_view prefix = "unix:@";
        if (!rq.path.starts_with(prefix)) return push_reply(out, channel, rq, -EINVAL);
        if (rq.path.starts_with("unix:@denied")) return push_reply(out, channel, rq, -EACCES);
        const std::string_view name = rq.path.substr(prefix.size());
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path + 1, name.data(), name.size());
        const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        unique_fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const auto* addr = reinterpret_cast<const sockaddr*>(&sa);
        if (rq.op == wire::Op::connect) {
            if (::connect(sock.get(), addr, len) != 0) return push_reply(out, channel, rq, -errno);
        } else {
            last_backlog_ = static_cast<int>(rq.arg0);
            if (::bind(sock.get(), addr, len) != 0 || ::listen(sock.get(), static_cast<int>(rq.arg0)) != 0)
                return push_reply(out, channel, rq, -errno);
        }
        push_reply(out, channel, rq, 0, {}, std::move(sock));
    }

    // The real operation below the scratch directory.
    void real(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
        const std::string full = file(std::string(rq.path));
        const auto result = [](int rc) { return rc < 0 ? -errno : 0; };
        switch (rq.op) {
            case wire::Op::open: {
                unique_fd fd(::open(full.c_str(), static_cast<int>(rq.arg0) | O_CLOEXEC, rq.arg1));
                if (!fd) return push_reply(out, channel, rq, -errno);
                return push_reply(out, channel, rq, 0, {}, std::move(fd));
            }
            case wire::Op::access:
                return push_reply(out, channel, rq,
                                  result(::access(full.c_str(), static_cast<int>(rq.arg0))));
            case wire::Op::stat: {
                struct ::stat st {};
                if (::stat(full.c_str(), &st) != 0) return push_reply(out, channel, rq, -errno);
                std::array<std::byte, wire::kStatPayloadSize> payload;
                wire::encode_stat(st, payload);
                return push_reply(out, channel, rq, 0, payload);
            }
            case wire::Op::readlink: {
                std::array<char, wire::kMaxPath> buf;
                const ssize_t n = ::readlink(full.c_str(), buf.data(), buf.size());
                if (n < 0) return push_reply(out, channel, rq, -errno);
                return push_reply(out, channel, rq, static_cast<std::int32_t>(n),
                                  std::as_bytes(std::span(buf.data(), static_cast<std::size_t>(n))));
            }
            case wire::Op::mkdir:
                return push_reply(out, channel, rq, result(::mkdir(full.c_str(), rq.arg0)));
            case wire::Op::unlink:
                return push_reply(out, channel, rq, result(::unlink(full.c_str())));
            case wire::Op::rmdir:
                return push_reply(out, channel, rq, result(::rmdir(full.c_str())));
            case wire::Op::rename: {
                const std::string to = file(std::string(rq.path2));
                return push_reply(out, channel, rq, result(::rename(full.c_str(), to.c_str())));
            }
            default:
                return push_reply(out, channel, rq, -ENOSYS);
        }
    }

    const bool reverse_;
    fs::path root_;
    unique_fd stop_;
    unique_fd wake_;
    std::thread thread_;
    std::mutex mu_;  // guards the fd lists and attach_pids_ against the test thread
    unique_fd listener_;
    std::vector<unique_fd> bootstraps_;
    std::vector<unique_fd> channels_;
    std::vector<pid_t> attach_pids_;
    std::atomic<int> attach_errno_{0};
    std::atomic<int> hung_{0};
    std::atomic<int> last_backlog_{0};
    std::atomic<int> reordered_{0};
    bool closed_ = false;  // fake thread only
};

void write_file(const std::string& path, const std::string& content) {
    unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
}

std::string read_all(int fd) {
    std::string s;
    char buf[256];
    ssize_t n = 0;
    while ((n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(s.size()))) > 0)
        s.append(buf, static_cast<size_t>(n));
    return s;
}

// Runs body in a forked child and returns its exit status (0: every check passed). Used wherever
// the process-wide client or the environment is involved, so that this process never creates its
// global client and each case reads the environment afresh.
int in_child(const std::function<int()>& body) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define CHILD_CHECK(cond)                                                                                   \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            std::fprintf(stderr, "child check failed at line %d: %s (errno %d)\n", __LINE__, #cond, errno); \
            return 1;                                                                                       \
        }                                                                                                   \
    } while (0)

class ClientTest : public ::testing::Test {
  protected:
    void SetUp() override {
        broker_.start();
        std::error_code ec;
        client_ = Client::from_channel(broker_.bootstrap(), ec);
        ASSERT_FALSE(ec) << ec.message();
        ASSERT_TRUE(client_);
    }

    FakeBroker broker_;
    std::unique_ptr<Client> client_;
    std::error_code ec_;
};

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
std::string abstract_name(const char* what) {
    return "fdbroker-client-test-" + std::to_string(::getpid()) + "-" + what;
}

bool is_listening(int fd) {
    int value = 0;
    socklen_t len = sizeof value;
    return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) == 0 && value == 1;
}

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
TEST_F(ClientTest, CApiOverFdbrokerFd) {
    write_file(broker_.file("/c.txt"), "from C\n");
    ASSERT_EQ(::symlink("c.txt", broker_.file("/c.link").c_str()), 0);
    unique_fd channel = broker_.bootstrap();
    const std::string fd_text = std::to_string(channel.get());
    EXPECT_EQ(in_child([&] {
                  ::setenv("FDBROKER_FD", fd_text.c_str(), 1);
                  std::error_code ec;
                  Client::global(ec);
                  CHILD_CHECK(!ec);

                  errno = 12345;
                  int fd = fdbroker_open("/c.txt", O_RDONLY);
                  CHILD_CHECK(fd >= 0);
                  CHILD_CHECK(errno == 12345);  // untouched on success
                  CHILD_CHECK(::fcntl(fd, F_GETFD) == 0);
                  CHILD_CHECK(read_all(fd) == "from C\n");
                  ::close(fd);
                  fd = fdbroker_open("/c.txt", O_RDONLY | O_CLOEXEC);
                  CHILD_CHECK(fd >= 0 && ::fcntl(fd, F_GETFD) == FD_CLOEXEC);
                  ::close(fd);
                  fd = fdbroker_open("/created", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                  CHILD_CHECK(fd >= 0);
                  ::close(fd);
                  CHILD_CHECK(fdbroker_open("/denied/x", O_RDONLY) == -1 && errno == EACCES);
                  CHILD_CHECK(fdbroker_open(nullptr, O_RDONLY) == -1 && errno == EFAULT);
                  CHILD_CHECK(fdbroker_open("", O_RDONLY) == -1 && errno == ENOENT);

                  CHILD_CHECK(fdbroker_access("/c.txt", R_OK) == 0);
                  CHILD_CHECK(fdbroker_access("/gone", F_OK) == -1 && errno == ENOENT);

                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/size/77", &st) == 0 && st.st_size == 77);
                  CHILD_CHECK(fdbroker_stat("/size/77", nullptr) == -1 && errno == EFAULT);
                  CHILD_CHECK(fdbroker_stat("/denied/s", &st) == -1 && errno == EACCES);

                  char buf[64];
                  CHILD_CHECK(fdbroker_readlink("/c.link", buf, sizeof buf) == 5);
                  CHILD_CHECK(std::memcmp(buf, "c.txt", 5) == 0);
                  CHILD_CHECK(fdbroker_readlink("/c.link", buf, 3) == 3);
                  CHILD_CHECK(fdbroker_readlink("/c.link", buf, 0) == -1 && errno == EINVAL);
                  CHILD_CHECK(fdbroker_readlink("/c.link", nullptr, 8) == -1 && errno == EFAULT);

                  CHILD_CHECK(fdbroker_mkdir("/cdir", 0700) == 0);
                  CHILD_CHECK(fdbroker_mkdir("/cdir", 0700) == -1 && errno == EEXIST);
                  CHILD_CHECK(fdbroker_rename("/created", "/cdir/moved") == 0);
                  CHILD_CHECK(fdbroker_unlink("/cdir/moved") == 0);
                  CHILD_CHECK(fdbroker_rmdir("/cdir") == 0);
                  CHILD_CHECK(fdbroker_rmdir("/cdir") == -1 && errno == ENOENT);

                  const std::string address = "unix:@" + abstract_name("c-api");
                  errno = 777;
                  const int listener = fdbroker_listen(address.c_str(), 3);
                  CHILD_CHECK(listener >= 0 && errno == 777);
                  CHILD_CHECK(is_listening(listener) && ::fcntl(listener, F_GETFD) == FD_CLOEXEC);
                  const int conn = fdbroker_connect(address.c_str());
                  CHILD_CHECK(conn >= 0 && ::fcntl(conn, F_GETFD) == FD_CLOEXEC);
                  const int served = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
                  CHILD_CHECK(served >= 0 && ::write(conn, "c", 1) == 1);
                  char c = 0;
                  CHILD_CHECK(::read(served, &c, 1) == 1 && c == 'c');
                  ::close(served);
                  ::close(conn);
                  ::close(listener);
                  CHILD_CHECK(fdbroker_connect("unix:@denied") == -1 && errno == EACCES);
                  CHILD_CHECK(fdbroker_listen("udp:x", 1) == -1 && errno == EINVAL);
                  CHILD_CHECK(fdbroker_connect(nullptr) == -1 && errno == EFAULT);
                  return 0;
              }),
              0);
}

TEST_F(ClientTest, CApiAfterForkInAChild) {
    unique_fd channel = broker_.bootstrap();
    const std::string fd_text = std::to_string(channel.get());
    EXPECT_EQ(in_child([&] {
                  ::setenv("FDBROKER_FD", fd_text.c_str(), 1);
                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/size/10", &st) == 0 && st.st_size == 10);
                  const pid_t grandchild = ::fork();
                  if (grandchild == 0) {
                      struct stat gst {};
                      ::_exit(fdbroker_stat("/size/11", &gst) == 0 && gst.st_size == 11 ? 0 : 1);
                  }
                  int status = 0;
                  CHILD_CHECK(::waitpid(grandchild, &status, 0) == grandchild);
                  CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                  CHILD_CHECK(fdbroker_stat("/size/12", &st) == 0 && st.st_size == 12);
                  return 0;
              }),
              0);
    // The child and the grandchild each attached once, from their own pids.
    const auto pids = broker_.attach_pids();
    ASSERT_EQ(pids.size(), 2u);
    EXPECT_NE(pids[0], pids[1]);
    EXPECT_NE(pids[0], ::getpid());
}

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
