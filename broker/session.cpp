#include "broker/session.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "broker/broker.hpp"
#include "broker/log.hpp"

namespace fdbroker::broker {

namespace {

// Frames read from one channel per readiness event. One: epoll is level-triggered, so a channel with
// more queued is reported again in the next turn, and reading on until EAGAIN would cost one more
// system call per request in the common case of a worker waiting for each reply.
constexpr int kFramesPerTurn = 1;
// Replies a worker may leave unread before the broker gives up on it.
constexpr std::size_t kMaxPendingReplies = 1024;

}  // namespace

Session::Session(Broker& broker, unique_fd channel, Admission admission)
    : broker_(broker), kind_(Kind::bootstrap), admission_(admission), channel_(std::move(channel)) {
    watch_.session = this;
}

Session::Session(Broker& broker, unique_fd channel, proto::Credentials owner, unique_fd owner_pidfd)
    : broker_(broker),
      kind_(Kind::owned),
      channel_(std::move(channel)),
      owner_(owner),
      owner_pidfd_(std::move(owner_pidfd)) {
    watch_.session = this;
}

Session::~Session() {
    close();
}

bool Session::start() noexcept {
    if (!broker_.loop().add(channel_.get(), EPOLLIN, this)) return false;
    return !owner_pidfd_ || broker_.loop().add(owner_pidfd_.get(), EPOLLIN, &watch_);
}

void Session::close() noexcept {
    if (!channel_) return;
    broker_.loop().remove(channel_.get());
    if (owner_pidfd_) broker_.loop().remove(owner_pidfd_.get());
    channel_.reset();
    owner_pidfd_.reset();
    pending_.clear();
    if (kind_ == Kind::owned) broker_.channel_closed(owner_.pid);
}

void Session::drain() noexcept {
    // On a unix socket, shutting down our receiving side makes the peer's next send fail with EPIPE,
    // while what it sent before stays queued here to be read.
    if (channel_) ::shutdown(channel_.get(), SHUT_RD);
}

void Session::on_event(std::uint32_t events) noexcept {
    if (closed()) return;
    if (events & EPOLLOUT) flush_pending();
    if (!closed() && pending_.empty() && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_requests();
}

void Session::refuse(const char* why, const proto::Credentials* who) noexcept {
    // A worker can make a channel to refuse per message it sends: rate-limited, summarised.
    static LogLimit closings("closing a channel a worker misused");
    const char* kind = kind_ == Kind::bootstrap ? "bootstrap" : "worker";
    if (who)
        log_limited(closings, "closing a %s channel: %s (pid %d, uid %u)", kind, why,
                    static_cast<int>(who->pid), static_cast<unsigned>(who->uid));
    else
        log_limited(closings, "closing a %s channel: %s", kind, why);
    close();
}

void Session::read_requests() noexcept {
    const std::span<std::byte> buffer = broker_.receive_buffer();
    for (int i = 0; i < kFramesPerTurn && !closed() && pending_.empty(); ++i) {
        proto::Received msg =
            proto::receive(channel_.get(), buffer, MSG_DONTWAIT, kind_ == Kind::bootstrap ? 1 : 0);
        switch (msg.status) {
            case proto::RecvStatus::would_block:
                return;
            case proto::RecvStatus::eof:
                close();
                return;
            case proto::RecvStatus::error: {
                static LogLimit failures("reading a channel failed");
                log_limited(failures, "reading a channel failed: %s", std::strerror(msg.error));
                close();
                return;
            }
            case proto::RecvStatus::dropped: {
                // Out of descriptors: the sender sees its channel end and may try again; nothing ends.
                static LogLimit lost("a request lost for want of descriptors");
                log_limited(lost, "a request was lost: the broker is out of file descriptors (%s)",
                            std::strerror(msg.error));
                return;
            }
            case proto::RecvStatus::violation:
                refuse(msg.why, msg.credentials ? &*msg.credentials : nullptr);
                return;
            case proto::RecvStatus::ok:
                break;
        }
        if (!msg.credentials) return refuse("a request without SCM_CREDENTIALS", nullptr);
        const proto::Credentials& sender = *msg.credentials;
        const wire::DecodedRequest decoded = wire::decode_request(buffer.first(msg.size));
        if (!decoded.request) return refuse(wire::describe(decoded.error).data(), &sender);
        const wire::Request& request = *decoded.request;

        if (kind_ == Kind::bootstrap) {
            if (request.op != wire::Op::attach || !msg.fd)
                return refuse("a bootstrap channel carries only attach requests with a channel", &sender);
            const char* why = "";
            if (!broker_.attach(admission_, sender, std::move(msg.pidfd), std::move(msg.fd), request, why))
                return refuse(why, &sender);
            continue;
        }
        if (request.op == wire::Op::attach) return refuse("an attach request on a worker channel", &sender);
        if (sender.pid != owner_.pid || sender.uid != owner_.uid)
            return refuse("a request from a process that does not own the channel", &sender);
        broker_.handle(*this, sender, request);
    }
}

void Session::reply(const wire::Reply& reply, int fd) noexcept {
    if (closed()) return;
    std::array<std::byte, wire::kMaxReplySize> frame;
    const std::size_t size = wire::encode_reply(reply, frame);
    const std::span<const std::byte> bytes(frame.data(), size);
    if (pending_.empty()) {
        proto::SendOptions options;
        options.fd = fd;
        options.flags = MSG_DONTWAIT;
        const int err = proto::send(channel_.get(), bytes, options);
        if (err == 0) return;
        if (err != EAGAIN) {
            close();  // the worker went away; its process exit closes the rest
            return;
        }
    }
    if (pending_.size() >= kMaxPendingReplies) return refuse("too many unread replies", &owner_);
    try {
        Pending p{std::vector<std::byte>(bytes.begin(), bytes.end()), unique_fd()};
        if (fd >= 0) p.fd.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
        pending_.push_back(std::move(p));
    } catch (const std::bad_alloc&) {
        return refuse("out of memory queueing a reply", &owner_);
    }
    broker_.loop().modify(channel_.get(), EPOLLOUT, this);
}

void Session::flush_pending() noexcept {
    while (!pending_.empty()) {
        proto::SendOptions options;
        options.fd = pending_.front().fd.get();
        options.flags = MSG_DONTWAIT;
        const int err = proto::send(channel_.get(), pending_.front().frame, options);
        if (err == EAGAIN) return;
        if (err != 0) return close();
        pending_.pop_front();
    }
    broker_.loop().modify(channel_.get(), EPOLLIN, this);
}

}  // namespace fdbroker::broker
