#include "broker/channels/session.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <span>

#include "broker/channels/broker.hpp"
#include "broker/core/log.hpp"

namespace fdbroker::broker {

namespace {

// Frames read from one channel per readiness event. One: epoll is level-triggered, so a channel with
// more queued is reported again in the next turn, and reading on until EAGAIN would cost one more
// system call per request in the common case of a worker waiting for each reply.
constexpr int kFramesPerTurn = 1;
// Replies a worker may leave unread before the broker gives up on it. Few can queue: a channel with a
// queued reply is not read, so only replies to requests already read (connects finishing) pile up.
constexpr std::size_t kMaxPendingReplies = 1024;

// Where requests are read to, one per thread: a request stays in use while its thread is stuck in a
// blocking section, and another thread may read meanwhile. One byte larger than the largest legal
// request, so that an oversized one is seen as truncated. Allocated, uninitialized, by the first read
// of each thread: as a thread_local array its 70 KiB would be zeroed at every start of the program
// (and of every thread), page by page, whether or not it ever reads a channel; this way a request
// touches only the pages its bytes land on. Empty when the allocation failed.
std::span<std::byte> receive_buffer() noexcept {
    thread_local std::unique_ptr<std::byte[]> buffer;
    constexpr std::size_t size = wire::kMaxRequestSize + 1;
    if (!buffer) {
        try {
            buffer = std::make_unique_for_overwrite<std::byte[]>(size);
        } catch (const std::bad_alloc&) {
            return {};
        }
    }
    return {buffer.get(), size};
}

// What a read is when there is no buffer to read into: a failed read, logged, that ends this channel
// and keeps no other one waiting.
proto::Received out_of_memory() noexcept {
    proto::Received r;
    r.status = proto::RecvStatus::error;
    r.error = ENOMEM;
    return r;
}

// A send that failed for want of kernel resources (ETOOMANYREFS: the broker's user has more
// descriptors in flight than its RLIMIT_NOFILE; ENOBUFS, ENOMEM): not the worker's fault, so its reply
// is kept and sent again later rather than its channel being closed.
bool out_of_resources(int err) noexcept {
    return err == ETOOMANYREFS || err == ENOBUFS || err == ENOMEM || err == EMFILE || err == ENFILE;
}

}  // namespace

Session::Session(Broker& broker, unique_fd channel, Admission admission,
                 std::shared_ptr<const ClientCredentials> client)
    : broker_(&broker),
      kind_(Kind::bootstrap),
      admission_(admission),
      client_(std::move(client)),
      channel_(std::move(channel)) {
    watch_.session = this;
}

Session::Session(Broker& broker, unique_fd channel, proto::Credentials owner, unique_fd owner_pidfd,
                 std::shared_ptr<const ClientCredentials> client)
    : broker_(&broker),
      kind_(Kind::owned),
      client_(std::move(client)),
      channel_(std::move(channel)),
      owner_(owner),
      owner_pidfd_(std::move(owner_pidfd)) {
    watch_.session = this;
}

Session::~Session() {
    close();
}

bool Session::start() noexcept {
    if (!broker_->loop().add(channel_.get(), EPOLLIN, this)) return false;
    return !owner_pidfd_ || broker_->loop().add(owner_pidfd_.get(), EPOLLIN, &watch_);
}

void Session::close() noexcept {
    if (!channel_) return;
    broker_->loop().remove(channel_.get());
    if (owner_pidfd_) broker_->loop().remove(owner_pidfd_.get());
    channel_.reset();
    owner_pidfd_.reset();
    if (paused_ || retrying_send_) broker_->tenants().forget(*this);
    unreceived_ = 0;
    // Queued replies may hold files whose file system makes a close wait (a FUSE flush).
    for (Pending& p : pending_)
        for (unique_fd& fd : p.fds)
            broker_->loop().close_later(std::move(fd));
    pending_.clear();
    broker_->channel_closed(*this);
}

void Session::drain() noexcept {
    // On a unix socket, shutting down our receiving side makes the peer's next send fail with EPIPE,
    // while what it sent before stays queued here to be read.
    if (channel_) ::shutdown(channel_.get(), SHUT_RD);
}

void Session::on_event(std::uint32_t events) noexcept {
    if (closed()) return;
    if (events & EPOLLOUT) flush_pending();
    if (closed()) return;
    // Paused, the channel is watched for nothing; a hang-up still arrives, and ends it.
    if (paused_ && (events & (EPOLLHUP | EPOLLERR))) return close();
    if (!paused_ && pending_.empty() && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_requests();
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
    for (int i = 0; i < kFramesPerTurn && !closed() && pending_.empty() && !paused_; ++i) {
        if (kind_ == Kind::owned && !admitted()) return pause();
        if (!read_one()) return;
    }
}

// Whether the owner may have another request performed now: this channel's descriptors in flight
// within its share, and the owner's user within its quota of requests and rate (which then counts the
// request).
bool Session::admitted() noexcept {
    if (!within_share()) return false;
    return broker_->tenants().admit(owner_.uid, broker_->limits(), broker_->profile().name().c_str());
}

// Each channel may have sent at most its share of its user's `descriptors` quota (and at most
// kMaxUnreceived) that its owner has not received: the channels of one user together then never hold
// more than the quota, without counting anything per reply. Sends are counted since the socket was
// last seen empty, and looked at again (one SIOCOUTQ) only when the count reaches the share.
bool Session::within_share() noexcept {
    const std::uint32_t share =
        broker_->tenants().descriptor_share(owner_.uid, broker_->limits(), kMaxUnreceived);
    if (unreceived_ < share) return true;
    int queued = 0;
    // SIOCOUTQ: the bytes this end sent that the owner has not read yet. None: everything sent,
    // descriptors included, has been received.
    if (::ioctl(channel_.get(), SIOCOUTQ, &queued) == 0 && queued == 0) {
        unreceived_ = 0;
        return true;
    }
    broker_->tenants().note_unreceived(owner_.uid, broker_->limits(), broker_->profile().name().c_str());
    return false;
}

void Session::pause() noexcept {
    if (paused_ || closed()) return;
    paused_ = true;
    broker_->loop().modify(channel_.get(), pending_.empty() ? 0U : static_cast<std::uint32_t>(EPOLLOUT),
                           this);
    broker_->tenants().wait(*this);
}

bool Session::resume() noexcept {
    if (closed()) return true;
    if (retrying_send_) {
        flush_pending();
        if (closed() || retrying_send_) return closed();
    }
    if (!paused_) return true;
    if (closed() || !within_share()) return false;
    paused_ = false;
    broker_->loop().modify(channel_.get(), pending_.empty() ? static_cast<std::uint32_t>(EPOLLIN) : EPOLLOUT,
                           this);
    return true;
}

// Reads and dispatches one message; false when there is nothing more to read for now.
bool Session::read_one() noexcept {
    const std::span<std::byte> buffer = receive_buffer();
    // (One Received, built in place: it holds a descriptor slot for every fd a message could bring.)
    proto::Received msg = buffer.empty() ? out_of_memory()
                                         : proto::receive(channel_.get(), buffer, MSG_DONTWAIT,
                                                          kind_ == Kind::bootstrap ? 1 : 0);
    const bool more = dispatch(msg, buffer);
    // Whatever the sender attached that nothing took is closed off the loop: closing a descriptor a
    // peer chose may wait (a FUSE flush, a TCP socket set to linger).
    EventLoop& loop = broker_->loop();
    if (msg.fd) loop.close_later(std::move(msg.fd));
    for (std::size_t i = 0; i < msg.fds.size(); ++i)
        if (unique_fd fd = msg.fds.take(i)) loop.close_later(std::move(fd));
    return more;
}

// Checks and performs one received message, its bytes in `buffer` (an attach on a bootstrap channel, a
// request on a worker channel); false when the channel ended or nothing more should be read now.
bool Session::dispatch(proto::Received& msg, std::span<const std::byte> buffer) noexcept {
    const bool request_taken = kind_ == Kind::owned;  // admitted() counted it
    auto untake = [&] {
        if (request_taken) broker_->tenants().give_back(owner_.uid, Resource::requests);
    };
    switch (msg.status) {
        case proto::RecvStatus::ok:
            break;
        case proto::RecvStatus::would_block:
            untake();
            return false;
        case proto::RecvStatus::eof:
            untake();
            close();
            return false;
        case proto::RecvStatus::error: {
            static LogLimit failures("reading a channel failed");
            log_limited(failures, "reading a channel failed: %s", std::strerror(msg.error));
            untake();
            close();
            return false;
        }
        case proto::RecvStatus::dropped: {
            // Out of descriptors: the sender sees its channel end and may try again; nothing ends.
            static LogLimit lost("a request lost for want of descriptors");
            log_limited(lost, "a request was lost: the broker is out of file descriptors (%s)",
                        std::strerror(msg.error));
            untake();
            return false;
        }
        case proto::RecvStatus::violation:
            untake();
            refuse(msg.why, msg.credentials ? &*msg.credentials : nullptr);
            return false;
    }
    if (!msg.credentials) {
        untake();
        refuse("a request without SCM_CREDENTIALS", nullptr);
        return false;
    }
    const proto::Credentials& sender = *msg.credentials;
    const wire::DecodedRequest decoded = wire::decode_request(buffer.first(msg.size));
    if (!decoded.request) {
        untake();
        refuse(wire::describe(decoded.error).data(), &sender);
        return false;
    }
    const wire::Request& request = *decoded.request;
    if (kind_ == Kind::bootstrap) {
        if (request.op != wire::Op::attach || !msg.fd) {
            refuse("a bootstrap channel carries only attach requests with a channel", &sender);
            return false;
        }
        const char* why = "";
        if (!broker_->attach(*this, sender, std::move(msg.pidfd), std::move(msg.fd), request, why)) {
            refuse(why, &sender);
            return false;
        }
        return true;
    }
    const char* why = request.op == wire::Op::attach ? "an attach request on a worker channel"
                      : sender.pid != owner_.pid || sender.uid != owner_.uid
                          ? "a request from a process that does not own the channel"
                          : nullptr;
    if (why) {
        untake();
        refuse(why, &sender);
        return false;
    }
    // In flight (admitted() counted it) until it is answered.
    const uid_t uid = owner_.uid;
    Tenants& tenants = broker_->tenants();
    broker_->handle(*this, sender, request);
    tenants.give_back(uid, Resource::requests);
    return true;
}

void Session::reply(const wire::Reply& reply, int fd) noexcept {
    this->reply(reply, fd >= 0 ? std::span<const int>(&fd, 1) : std::span<const int>());
}

std::uint32_t Session::descriptor_room() noexcept {
    const std::uint32_t share =
        broker_->tenants().descriptor_share(owner_.uid, broker_->limits(), kMaxUnreceived);
    // What was sent may have been received since the count was last reset (within_share).
    int queued = 0;
    if (unreceived_ != 0 && ::ioctl(channel_.get(), SIOCOUTQ, &queued) == 0 && queued == 0) unreceived_ = 0;
    return share > unreceived_ ? share - unreceived_ : 0;
}

void Session::reply(const wire::Reply& reply, std::span<const int> fds) noexcept {
    if (closed()) return;
    // The payload (up to 64 KiB) is sent from where it lies, after the header.
    std::array<std::byte, wire::kReplyHeaderSize> header;
    if (wire::encode_reply_head(reply, header) == 0) return close();
    if (pending_.empty()) {
        const int err = send_now(header, reply.payload, fds);
        if (err == 0 || closed()) return;
        if (err != EAGAIN && !out_of_resources(err)) return close();  // the worker went away
    }
    queue(header, reply.payload, fds);
}

// Sends one frame now: 0, or the errno (EAGAIN: the worker is not reading).
int Session::send_now(std::span<const std::byte> head, std::span<const std::byte> tail,
                      std::span<const int> fds) noexcept {
    proto::SendOptions options;
    options.fds = fds;
    options.flags = MSG_DONTWAIT;
    const int err = proto::send(channel_.get(), head, tail, options);
    if (err == 0) unreceived_ += static_cast<std::uint32_t>(fds.size());
    if (out_of_resources(err)) {
        static LogLimit failures("a reply could not be sent");
        log_limited(failures, "a reply to pid %d could not be sent (%s): it is sent again shortly",
                    static_cast<int>(owner_.pid), std::strerror(err));
    }
    return err;
}

void Session::queue(std::span<const std::byte> head, std::span<const std::byte> tail,
                    std::span<const int> fds) noexcept {
    if (pending_.size() >= kMaxPendingReplies) return refuse("too many unread replies", &owner_);
    try {
        Pending p{std::vector<std::byte>(head.begin(), head.end()), {}};
        p.frame.insert(p.frame.end(), tail.begin(), tail.end());
        p.fds.reserve(fds.size());
        for (const int fd : fds) {
            p.fds.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
            // Without its descriptor the reply would say what is not so.
            if (!p.fds.back()) return refuse("out of descriptors queueing a reply", &owner_);
        }
        pending_.push_back(std::move(p));
    } catch (const std::bad_alloc&) {
        return refuse("out of memory queueing a reply", &owner_);
    }
    watch(EPOLLOUT);
}

void Session::flush_pending() noexcept {
    while (!pending_.empty() && !closed()) {
        std::array<int, proto::kMaxFdsPerMessage> fds{};
        const std::vector<unique_fd>& held = pending_.front().fds;
        for (std::size_t i = 0; i < held.size() && i < fds.size(); ++i)
            fds[i] = held[i].get();
        const int err = send_now(pending_.front().frame, {}, std::span(fds).first(held.size()));
        if (err == EAGAIN) return;
        if (out_of_resources(err)) {
            // Nothing will wake this channel (the socket is writable): the quota timer retries.
            if (!retrying_send_) {
                retrying_send_ = true;
                broker_->tenants().wait(*this);
            }
            return;
        }
        if (err != 0) return close();
        // The broker's copies of files: closing one may wait for its file system (a FUSE flush).
        for (unique_fd& fd : pending_.front().fds)
            broker_->loop().close_later(std::move(fd));
        pending_.pop_front();
    }
    if (closed()) return;
    retrying_send_ = false;
    watch(paused_ ? 0U : static_cast<std::uint32_t>(EPOLLIN));
}

void Session::watch(std::uint32_t events) noexcept {
    if (!closed()) broker_->loop().modify(channel_.get(), events, this);
}

}  // namespace fdbroker::broker
