// The stand-in broker's thread and the client suites' helpers (see fake_broker.hpp).
#include "support/fake_broker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string_view>

#include "client/connection.hpp"
#include "proto/channel.hpp"

namespace fdbroker::fake {

FakeBroker::FakeBroker(bool reverse) : reverse_(reverse) {
    char tmpl[] = "/tmp/fdbroker-client-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    stop_.reset(::eventfd(0, EFD_CLOEXEC));
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

FakeBroker::~FakeBroker() {
    stop();
    std::error_code ec;
    fs::remove_all(root_, ec);
}

unique_fd FakeBroker::bootstrap() {
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

void FakeBroker::listen(const std::string& address) {
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

void FakeBroker::start() {
    thread_ = std::thread([this] { run(); });
}

void FakeBroker::stop() {
    if (!thread_.joinable()) return;
    const std::uint64_t one = 1;
    EXPECT_EQ(::write(stop_.get(), &one, sizeof one), 8);
    thread_.join();
}

std::vector<pid_t> FakeBroker::attach_pids() {
    const std::lock_guard lock(mu_);
    return attach_pids_;
}

// Makes the thread rebuild its poll set (a channel was added from the test thread).
void FakeBroker::wake() {
    const std::uint64_t one = 1;
    EXPECT_EQ(::write(wake_.get(), &one, sizeof one), 8);
}

void FakeBroker::run() {
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

bool FakeBroker::is_bootstrap(int fd) {
    const std::lock_guard lock(mu_);
    return std::any_of(bootstraps_.begin(), bootstraps_.end(),
                       [&](const unique_fd& b) { return b.get() == fd; });
}

void FakeBroker::accept_one() {
    unique_fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    proto::enable_credentials(conn.get(), false);
    const std::lock_guard lock(mu_);
    bootstraps_.push_back(std::move(conn));
}

void FakeBroker::drop(int fd) {
    const std::lock_guard lock(mu_);
    std::erase_if(bootstraps_, [&](const unique_fd& b) { return b.get() == fd; });
    std::erase_if(channels_, [&](const unique_fd& c) { return c.get() == fd; });
}

void FakeBroker::close_all() {
    const std::lock_guard lock(mu_);
    bootstraps_.clear();
    channels_.clear();
    listener_.reset();
}

void FakeBroker::on_bootstrap(int fd) {
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

void FakeBroker::drain(int fd, std::vector<Outgoing>& batch) {
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

void FakeBroker::push_reply(std::vector<Outgoing>& out, int channel, const wire::Request& rq,
                            std::int32_t result, std::span<const std::byte> payload, unique_fd fd) {
    wire::Reply reply;
    reply.op = rq.op;
    reply.id = rq.id;
    reply.result = result;
    reply.has_fd = static_cast<bool>(fd);
    reply.payload = payload;
    std::vector<std::byte> frame(wire::kMaxReplySize);
    frame.resize(wire::encode_reply(reply, frame));
    std::vector<unique_fd> fds;
    if (fd) fds.push_back(std::move(fd));
    out.push_back({channel, std::move(frame), std::move(fds)});
}

void FakeBroker::open_many(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
    ++open_many_requests_;
    std::vector<std::int32_t> results;
    std::vector<unique_fd> fds;
    std::span<const std::byte> rest = rq.data;
    while (const std::optional<wire::OpenEntry> entry = wire::next_open_entry(rest)) {
        const std::string path(entry->path);
        if (path.starts_with("/denied")) {
            results.push_back(-EACCES);
            continue;
        }
        results.push_back(0);
        if (path == "/lie") continue;
        unique_fd fd(::memfd_create("batch", MFD_CLOEXEC));
        if (::ftruncate(fd.get(), static_cast<off_t>(path.size())) != 0) results.back() = -errno;
        if (results.back() == 0) fds.push_back(std::move(fd));
    }
    std::vector<std::byte> payload(results.size() * wire::kBatchResultSize);
    wire::encode_batch_results(results, payload);
    wire::Reply reply;
    reply.op = rq.op;
    reply.id = rq.id;
    reply.result = static_cast<std::int32_t>(results.size());
    reply.has_fd = std::find(results.begin(), results.end(), 0) != results.end();
    reply.payload = payload;
    std::vector<std::byte> frame(wire::kMaxReplySize);
    frame.resize(wire::encode_reply(reply, frame));
    out.push_back({channel, std::move(frame), std::move(fds)});
}

void FakeBroker::flush(std::vector<Outgoing>& batch) {
    if (batch.size() > 1) ++reordered_;
    if (reverse_) std::reverse(batch.begin(), batch.end());
    for (Outgoing& o : batch) {
        // A worker that died meanwhile is no concern of the others.
        std::vector<int> raw;
        for (const unique_fd& fd : o.fds)
            raw.push_back(fd.get());
        static_cast<void>(proto::send(o.channel, o.frame, {.fds = raw}));
    }
    batch.clear();
}

void FakeBroker::serve(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
    const std::string path(rq.path);
    if (rq.op == wire::Op::connect || rq.op == wire::Op::listen) return socket_op(channel, rq, out);
    if (rq.op == wire::Op::open_many) return open_many(channel, rq, out);
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
    if (path == "/overfill" && (rq.op == wire::Op::getxattr || rq.op == wire::Op::listxattr)) {
        const std::vector<std::byte> value = patterned(rq.arg0 + 1);
        return push_reply(out, channel, rq, static_cast<std::int32_t>(value.size()), value);
    }
    if (path.starts_with("/size/")) {
        long n = 0;
        std::from_chars(path.data() + 6, path.data() + path.size(), n);
        return sized(channel, rq, n, out);
    }
    real(channel, rq, out);
}

void FakeBroker::sized(int channel, const wire::Request& rq, long n, std::vector<Outgoing>& out) {
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
        case wire::Op::getxattr:
        case wire::Op::listxattr: {
            const auto size = static_cast<std::size_t>(n);
            if (rq.arg0 == 0) return push_reply(out, channel, rq, static_cast<std::int32_t>(size));
            if (rq.arg0 < size) return push_reply(out, channel, rq, -ERANGE);
            const std::vector<std::byte> value = patterned(size);
            return push_reply(out, channel, rq, static_cast<std::int32_t>(size), value);
        }
        case wire::Op::setxattr: {
            const std::vector<std::byte> want = patterned(static_cast<std::size_t>(n));
            const bool same = std::equal(rq.data.begin(), rq.data.end(), want.begin(), want.end());
            return push_reply(out, channel, rq, same ? 0 : -EBADMSG);
        }
        default:
            return push_reply(out, channel, rq, -ENOSYS);
    }
}

void FakeBroker::socket_op(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
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

void FakeBroker::real(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
    const std::string full = file(std::string(rq.path));
    const auto result = [](int rc) { return rc < 0 ? -errno : 0; };
    switch (rq.op) {
        case wire::Op::open: {
            unique_fd fd(::open(full.c_str(), static_cast<int>(rq.arg0) | O_CLOEXEC, rq.arg1));
            if (!fd) return push_reply(out, channel, rq, -errno);
            return push_reply(out, channel, rq, 0, {}, std::move(fd));
        }
        case wire::Op::access:
            return push_reply(out, channel, rq, result(::access(full.c_str(), static_cast<int>(rq.arg0))));
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
        case wire::Op::getxattr:
        case wire::Op::listxattr:
        case wire::Op::setxattr:
        case wire::Op::removexattr:
            return real_xattr(channel, rq, out);
        default:
            return real_metadata(channel, rq, out);
    }
}

void FakeBroker::real_metadata(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
    const std::string full = file(std::string(rq.path));
    const auto result = [](int rc) { return rc < 0 ? -errno : 0; };
    const int at = (rq.flags & wire::kNoFollow) != 0 ? AT_SYMLINK_NOFOLLOW : 0;
    switch (rq.op) {
        case wire::Op::chmod:
            return push_reply(out, channel, rq, result(::fchmodat(AT_FDCWD, full.c_str(), rq.arg0, at)));
        case wire::Op::chown:
            return push_reply(out, channel, rq,
                              result(::fchownat(AT_FDCWD, full.c_str(), rq.arg0, rq.arg1, at)));
        case wire::Op::truncate: {
            const auto length = static_cast<off_t>((std::uint64_t{rq.arg1} << 32U) | rq.arg0);
            return push_reply(out, channel, rq, result(::truncate(full.c_str(), length)));
        }
        case wire::Op::utimens: {
            struct ::timespec times[2];
            if (!wire::decode_times(rq.data, times)) return push_reply(out, channel, rq, -EBADMSG);
            return push_reply(out, channel, rq, result(::utimensat(AT_FDCWD, full.c_str(), times, at)));
        }
        case wire::Op::link: {
            const std::string to = file(std::string(rq.path2));
            const int follow = (rq.flags & wire::kFollow) != 0 ? AT_SYMLINK_FOLLOW : 0;
            return push_reply(out, channel, rq,
                              result(::linkat(AT_FDCWD, full.c_str(), AT_FDCWD, to.c_str(), follow)));
        }
        case wire::Op::mknod:
            return push_reply(out, channel, rq, result(::mknod(full.c_str(), rq.arg0, rq.arg1)));
        default:
            return push_reply(out, channel, rq, -ENOSYS);
    }
}

void FakeBroker::real_xattr(int channel, const wire::Request& rq, std::vector<Outgoing>& out) {
    const std::string full = file(std::string(rq.path));
    const std::string name(rq.path2);
    const bool nofollow = (rq.flags & wire::kNoFollow) != 0;
    std::vector<char> buf(rq.arg0);
    ssize_t n = 0;
    switch (rq.op) {
        case wire::Op::getxattr:
            n = nofollow ? ::lgetxattr(full.c_str(), name.c_str(), buf.data(), buf.size())
                         : ::getxattr(full.c_str(), name.c_str(), buf.data(), buf.size());
            break;
        case wire::Op::listxattr:
            n = nofollow ? ::llistxattr(full.c_str(), buf.data(), buf.size())
                         : ::listxattr(full.c_str(), buf.data(), buf.size());
            break;
        case wire::Op::setxattr:
            n = (nofollow ? ::lsetxattr : ::setxattr)(full.c_str(), name.c_str(), rq.data.data(),
                                                      rq.data.size(), static_cast<int>(rq.arg0));
            break;
        default:
            n = nofollow ? ::lremovexattr(full.c_str(), name.c_str())
                         : ::removexattr(full.c_str(), name.c_str());
            break;
    }
    if (n < 0) return push_reply(out, channel, rq, -errno);
    // A value or list comes only when there was room asked for.
    const auto payload = std::as_bytes(std::span(buf).first(buf.empty() ? 0 : static_cast<std::size_t>(n)));
    push_reply(out, channel, rq, static_cast<std::int32_t>(n), payload);
}

std::vector<std::byte> patterned(std::size_t n) {
    std::vector<std::byte> value(n);
    for (std::size_t i = 0; i < n; ++i)
        value[i] = static_cast<std::byte>((i * 7 + i / 251) & 0xffU);
    return value;
}

void write_file(const std::string& path, const std::string& content) {
    unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
}

int in_child(const std::function<int()>& body) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void ClientTest::SetUp() {
    broker_.start();
    std::error_code ec;
    client_ = Client::from_channel(broker_.bootstrap(), ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(client_);
}

std::string abstract_name(const char* what) {
    return "fdbroker-client-test-" + std::to_string(::getpid()) + "-" + what;
}

bool is_listening(int fd) {
    int value = 0;
    socklen_t len = sizeof value;
    return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) == 0 && value == 1;
}

}  // namespace fdbroker::fake
