// The private channel of each process and the leader/follower demultiplexing of its replies.
//
// Any thread may have a request in flight. Each registers a Waiter on its own stack, sends, and
// then either waits for its reply to be handed to it or, if no thread is reading, becomes the reader:
// it receives replies and delivers each to the waiter with that id until its own has come, then
// hands the role to a waiter whose request is out. No allocation happens per request.
#include "client/connection.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

namespace fdbroker {
namespace {

// Every live Connection, so that the fork handlers (which cannot be unregistered) can reach them.
struct ForkRegistry {
    std::mutex mu;
    Connection* head = nullptr;
};
constinit ForkRegistry registry;

// An xattr value or list comes in a buffer of the size the caller gave, and fills as much as the
// result says; asked for its size only (no room), it comes without one. (A readlink reply brings the
// whole target, which the library cuts to the caller's size.)
bool fits_the_room(const wire::Reply& reply, std::size_t room) noexcept {
    // open_many: one result per entry of the request, whose room was made for exactly that many.
    if (reply.op == wire::Op::open_many) return reply.result < 0 || reply.payload.size() == room;
    if ((reply.op != wire::Op::getxattr && reply.op != wire::Op::listxattr) || reply.result < 0) return true;
    if (room == 0) return reply.payload.empty();
    return reply.payload.size() == static_cast<std::size_t>(reply.result) && reply.payload.size() <= room;
}

// As many descriptors as the reply announces: one with a flagged reply, one per successful entry of
// an open_many reply.
bool fds_as_announced(const wire::Reply& reply, std::size_t fds) noexcept {
    if (reply.op == wire::Op::open_many && reply.result >= 0) return fds == wire::batch_descriptors(reply);
    return fds == (reply.has_fd ? 1U : 0U);
}

// The errors with which a send or receive says the other end is gone.
bool is_disconnect(int err) noexcept {
    return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ECONNREFUSED;
}

// The calling process's pid without a system call per request. It is kept in a page the kernel empties
// in every child that a fork, or a raw clone() without CLONE_VM, makes (MADV_WIPEONFORK), so that a
// child reads 0 and asks the kernel. Where the page cannot be had, every call asks.
std::atomic<pid_t>* make_pid_cache() noexcept {
    void* page = ::mmap(nullptr, sizeof(std::atomic<pid_t>), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return nullptr;
    if (::madvise(page, sizeof(std::atomic<pid_t>), MADV_WIPEONFORK) != 0) {
        ::munmap(page, sizeof(std::atomic<pid_t>));
        return nullptr;
    }
    return new (page) std::atomic<pid_t>(0);  // in the page itself, never freed
}

pid_t current_pid() noexcept {
    static std::atomic<pid_t>* const cache = make_pid_cache();
    if (cache == nullptr) return ::getpid();
    pid_t pid = cache->load(std::memory_order_relaxed);
    if (pid == 0) {
        pid = ::getpid();
        cache->store(pid, std::memory_order_relaxed);
    }
    return pid;
}

}  // namespace

Connection::Connection(unique_fd bootstrap)
    : bootstrap_(std::move(bootstrap)),
      replies_(std::make_unique_for_overwrite<std::byte[]>(kReplyBufferSize)) {
    // Once per process. Should it fail (ENOMEM), the pid check in call() still notices a fork.
    static const bool registered =
        ::pthread_atfork(&prepare_fork, &parent_after_fork, &child_after_fork) == 0;
    static_cast<void>(registered);
    const std::lock_guard lock(registry.mu);
    fork_next_ = registry.head;
    if (fork_next_ != nullptr) fork_next_->fork_prev_ = this;
    registry.head = this;
}

Connection::~Connection() {
    const std::lock_guard lock(registry.mu);
    if (fork_prev_ != nullptr) {
        fork_prev_->fork_next_ = fork_next_;
    } else {
        registry.head = fork_next_;
    }
    if (fork_next_ != nullptr) fork_next_->fork_prev_ = fork_prev_;
}

std::uint32_t Connection::take_id() noexcept {
    std::uint32_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
    // 0 marks state waiters, so it is never a request id.
    if (id == 0) id = next_id_.fetch_add(1, std::memory_order_relaxed);
    return id;
}

int Connection::call(wire::Request& request, std::span<std::byte> payload, CallResult& out) noexcept {
    if (!bootstrap_) return ENOTCONN;
    request.id = take_id();
    // The header and paths; the data (an xattr's value) goes from the caller's buffer as it is.
    std::array<std::byte, wire::kMaxRequestHeadSize> frame;
    const std::size_t size = wire::encode_request_head(request, frame);
    if (size == 0) return EINVAL;
    // The broker learns who sent each request from the credentials the kernel attaches itself (its end
    // has SO_PASSCRED), which no unprivileged sender can forge; sending them explicitly would only add
    // system calls. The pid still tells a forked child that it needs a channel of its own.
    const pid_t pid = current_pid();

    Waiter self;
    self.id = request.id;
    self.op = request.op;
    self.payload = payload;
    self.out = &out;

    std::unique_lock lock(mu_);
    if (const int err = ensure_attached_locked(lock, pid); err != 0) return err;
    // Registered before sending, so that whichever thread reads the reply finds its owner.
    link(self);
    ++users_;
    const int fd = private_.get();
    lock.unlock();
    const int sent = proto::send(fd, std::span(frame.data(), size), request.data, {});
    lock.lock();
    if (sent != 0) {
        if (self.done) {  // the channel broke meanwhile
            release_user_locked();
            return self.error;
        }
        unlink(self);
        if (is_disconnect(sent)) mark_broken_locked();
        release_user_locked();
        return is_disconnect(sent) ? ECONNRESET : sent;
    }
    release_user_locked();
    self.sent = true;
    while (!self.done) {
        if (!reader_active_) {
            read_replies_locked(lock, self);
        } else {
            self.cv.wait(lock);
        }
    }
    return self.error;
}

int Connection::ensure_attached_locked(std::unique_lock<std::mutex>& lock, pid_t pid) noexcept {
    for (;;) {
        if (state_ != State::detached && owner_pid_ != pid) {
            // A child made without the fork handlers (a raw clone()): nothing here is ours. The fd
            // is abandoned rather than closed, since such a child may share its parent's fd table.
            static_cast<void>(private_.release());
            waiters_ = nullptr;
            state_waiters_ = 0;
            users_ = 0;
            reader_active_ = false;
            state_ = State::detached;
        }
        switch (state_) {
            case State::attached:
                return 0;
            case State::attaching:
            case State::broken:
                wait_for_state_locked(lock);
                break;
            case State::detached: {
                state_ = State::attaching;
                owner_pid_ = pid;
                lock.unlock();
                unique_fd channel;
                const int err = attach(channel);
                lock.lock();
                if (err == 0) {
                    private_ = std::move(channel);
                    state_ = State::attached;
                } else {
                    state_ = State::detached;  // the next call tries again
                }
                notify_state_locked();
                return err;
            }
        }
    }
}

int Connection::attach(unique_fd& channel) noexcept {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return errno;
    unique_fd mine(sv[0]);
    unique_fd peer(sv[1]);

    wire::Request request;
    request.op = wire::Op::attach;
    request.id = take_id();
    std::array<std::byte, wire::kRequestHeaderSize> frame;
    const std::size_t size = wire::encode_request(request, frame);
    const int sent = send_bootstrap(std::span(frame.data(), size), peer.get());
    // Our copy of the broker's end goes at once: if the broker drops the channel, the read below
    // must see end of file rather than wait on a reference we hold ourselves.
    peer.reset();
    if (sent != 0) return is_disconnect(sent) ? ECONNRESET : sent;

    // The reply comes on the new channel, never on the shared bootstrap one, where another process
    // could read it. It has no payload: a longer one shows up as truncated.
    std::array<std::byte, wire::kReplyHeaderSize + 1> buf;
    const proto::Received received = proto::receive(mine.get(), buf, 0, 0);
    if (received.status == proto::RecvStatus::error && !is_disconnect(received.error)) return received.error;
    if (received.status != proto::RecvStatus::ok) return ECONNRESET;
    const wire::DecodedReply decoded = wire::decode_reply(std::span(buf.data(), received.size));
    if (!decoded.reply) return ECONNRESET;
    const wire::Reply& reply = *decoded.reply;
    if (reply.op != wire::Op::attach || reply.id != request.id || !wire::reply_shape_ok(reply))
        return ECONNRESET;
    if (reply.result < 0) return -reply.result;
    channel = std::move(mine);
    return 0;
}

int Connection::send_bootstrap(std::span<const std::byte> frame, int peer) noexcept {
    const proto::Credentials creds = proto::own_credentials();
    for (;;) {
        const int err = proto::send(bootstrap_.get(), frame, {.credentials = &creds, .fd = peer});
        if (err != EAGAIN) return err;
        // An inherited channel may have been made non-blocking by another process sharing it; wait
        // for room rather than fail.
        pollfd p{bootstrap_.get(), POLLOUT, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR) return errno;
    }
}

void Connection::read_replies_locked(std::unique_lock<std::mutex>& lock, Waiter& self) noexcept {
    reader_active_ = true;
    ++users_;
    const int fd = private_.get();
    const std::span<std::byte> buf(replies_.get(), kReplyBufferSize);
    while (!self.done) {
        lock.unlock();
        proto::Received received = proto::receive(fd, buf, 0, static_cast<int>(proto::kMaxFdsPerMessage));
        lock.lock();
        // If the channel broke meanwhile, self has been completed along with everyone else.
        if (state_ != State::attached) break;
        dispatch_locked(received, buf);
    }
    reader_active_ = false;
    release_user_locked();
    if (state_ != State::attached) return;
    // Pass the role to a thread whose request is out: its reply, and everyone else's, keep flowing.
    // (A thread still sending takes the role itself when it comes back and finds no reader.)
    for (Waiter* w = waiters_; w != nullptr; w = w->next) {
        if (w->id != 0 && w->sent) {
            w->cv.notify_one();
            break;
        }
    }
}

void Connection::dispatch_locked(proto::Received& received, std::span<const std::byte> buf) noexcept {
    // End of file, a receive error or a violating message: the broker is gone or misbehaving.
    if (received.status != proto::RecvStatus::ok) {
        mark_broken_locked();
        return;
    }
    const wire::DecodedReply decoded = wire::decode_reply(buf.first(received.size));
    if (!decoded.reply || decoded.reply->has_fd != (received.fd_count != 0) ||
        !wire::reply_shape_ok(*decoded.reply) || !fds_as_announced(*decoded.reply, received.fd_count)) {
        mark_broken_locked();
        return;
    }
    const wire::Reply& reply = *decoded.reply;
    Waiter* w = find(reply.id);
    if (w == nullptr) return;  // a stray reply: dropped, and its fds closed with `received`
    if (w->op != reply.op || !fits_the_room(reply, w->payload.size())) {
        mark_broken_locked();
        return;
    }
    w->out->result = reply.result;
    w->out->payload_size = reply.payload.size();
    const std::size_t n = std::min(w->payload.size(), reply.payload.size());
    if (n != 0) std::memcpy(w->payload.data(), reply.payload.data(), n);
    if (reply.op == wire::Op::open_many) {
        // fits_the_room saw one result per entry the request had, so there is room for each fd.
        for (std::size_t i = 0; i < received.fd_count; ++i)
            w->out->fds[i] = received.fds.take(i);
        w->out->fd_count = received.fd_count;
    } else if (received.fd_count == 1) {
        w->out->fd = received.fds.take(0);
    }
    complete(*w, reply.result < 0 ? -reply.result : 0);
}

void Connection::mark_broken_locked() noexcept {
    if (state_ != State::attached) return;
    state_ = State::broken;
    // Wakes a reader blocked in recvmsg and makes further sends fail, while the fd number stays
    // allocated (and so cannot be reused under a thread still holding it) until the last user leaves.
    ::shutdown(private_.get(), SHUT_RDWR);
    for (Waiter* w = waiters_; w != nullptr;) {
        Waiter* next = w->next;
        if (w->id != 0) complete(*w, ECONNRESET);
        w = next;
    }
    if (users_ == 0) forget_channel_locked();
    notify_state_locked();
}

void Connection::release_user_locked() noexcept {
    if (--users_ > 0) return;
    if (state_ == State::broken) forget_channel_locked();
    notify_state_locked();
}

void Connection::forget_channel_locked() noexcept {
    private_.reset();
    state_ = State::detached;
}

void Connection::wait_for_state_locked(std::unique_lock<std::mutex>& lock) noexcept {
    Waiter w;  // id 0: woken on every state change; the caller re-examines the state
    link(w);
    ++state_waiters_;
    w.cv.wait(lock);
    --state_waiters_;
    unlink(w);
}

void Connection::notify_state_locked() noexcept {
    if (state_waiters_ == 0) return;
    for (Waiter* w = waiters_; w != nullptr; w = w->next) {
        if (w->id == 0) w->cv.notify_one();
    }
}

void Connection::link(Waiter& w) noexcept {
    w.prev = nullptr;
    w.next = waiters_;
    if (waiters_ != nullptr) waiters_->prev = &w;
    waiters_ = &w;
}

void Connection::unlink(Waiter& w) noexcept {
    if (w.prev != nullptr) {
        w.prev->next = w.next;
    } else {
        waiters_ = w.next;
    }
    if (w.next != nullptr) w.next->prev = w.prev;
    w.prev = w.next = nullptr;
}

void Connection::complete(Waiter& w, int error) noexcept {
    unlink(w);
    w.error = error;
    w.done = true;
    // Notified under mu_: the owner cannot return (and destroy w.cv) until we release it.
    w.cv.notify_one();
}

Connection::Waiter* Connection::find(std::uint32_t id) noexcept {
    for (Waiter* w = waiters_; w != nullptr; w = w->next) {
        if (w->id == id) return w;
    }
    return nullptr;
}

void Connection::prepare_fork() noexcept {
    registry.mu.lock();
    for (Connection* c = registry.head; c != nullptr; c = c->fork_next_)
        c->mu_.lock();
}

void Connection::parent_after_fork() noexcept {
    for (Connection* c = registry.head; c != nullptr; c = c->fork_next_)
        c->mu_.unlock();
    registry.mu.unlock();
}

void Connection::child_after_fork() noexcept {
    for (Connection* c = registry.head; c != nullptr; c = c->fork_next_) {
        c->reset_in_child();
        c->mu_.unlock();
    }
    registry.mu.unlock();
}

void Connection::reset_in_child() noexcept {
    // The threads that were waiting, reading or attaching exist only in the parent, and the private
    // channel is the parent's: a reply read here would be stolen from it. fork() copied the fd
    // table, so closing drops only this process's reference. The next call attaches anew.
    waiters_ = nullptr;
    state_waiters_ = 0;
    users_ = 0;
    reader_active_ = false;
    private_.reset();
    state_ = State::detached;
    owner_pid_ = 0;
}

}  // namespace fdbroker
