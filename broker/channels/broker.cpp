#include "broker/channels/broker.hpp"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "broker/core/log.hpp"
#include "broker/ops/decode_wire.hpp"

namespace fdbroker::broker {

// A library-mode connect in progress, for the session that asked (PendingConnect). It lives in the
// broker of that session, and moves with it when a reload hands the session to another.
class Broker::Connecting final : public PendingConnect::Waiter {
  public:
    // What the eventual reply and audit line need. The connect was judged by `profile`, whose rule
    // allowed it: `policy` keeps both alive whatever reloads replace meanwhile.
    struct Request {
        Session* session = nullptr;
        proto::Credentials sender{};
        std::uint32_t id = 0;
        std::shared_ptr<const policy::Policy> policy;
        const policy::Profile* profile = nullptr;
        const policy::AddressRule* rule = nullptr;
        std::string address;  // the address reached
    };

    Connecting(Broker& home, Request request, unique_fd socket) noexcept
        : home_(&home), request_(std::move(request)), connect_(home.loop(), std::move(socket), *this) {}

    bool start() noexcept { return connect_.start(request_.profile->connect_timeout()); }
    void cancel() noexcept { connect_.cancel(); }
    // From now on it reports to `broker`, which its session was handed to (Broker::hand_over).
    void move_to(Broker& broker) noexcept { home_ = &broker; }
    [[nodiscard]] const Request& request() const noexcept { return request_; }

    void connect_done(int error, unique_fd socket) noexcept override {
        home_->connect_finished(*this, error, std::move(socket));
    }

  private:
    Broker* home_;
    Request request_;
    PendingConnect connect_;
};

namespace {

// Live private channels one process may hold: one, and a second while the first is being replaced.
constexpr long kMaxChannelsPerProcess = 4;
// The send buffer of a private channel (the kernel doubles it): room for the largest reply, a 64 KiB
// extended attribute (a unix datagram larger than the buffer is refused with EMSGSIZE), or about a
// hundred small ones. A worker that does not read its replies then meets back-pressure after little
// memory, and what it leaves unread is bounded.
constexpr int kChannelSendBuffer = 40960;
static_assert(2 * kChannelSendBuffer - 32 >= static_cast<int>(wire::kMaxReplySize),
              "unix_dgram_sendmsg refuses a message longer than the send buffer less 32 bytes");

bool is_seqpacket_unix(int fd) noexcept {
    int domain = 0, type = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return false;
    len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return false;
    return domain == AF_UNIX && type == SOCK_SEQPACKET;
}

}  // namespace

Broker::Broker(EventLoop& loop, Tenants& tenants, std::shared_ptr<const policy::Policy> policy,
               const policy::Profile& profile, std::optional<FileOwner> owner, Audit& audit)
    : loop_(loop),
      tenants_(tenants),
      policy_(std::move(policy)),
      profile_(&profile),
      limits_(tenants.limits(profile.quota())),
      owner_(owner),
      performer_(profile, owner),
      audit_(audit) {
    audit_.set_policy_file(policy_->file());
}

Broker::~Broker() {
    // In this order: the connects answer to sessions, and each session gives back what it holds as it
    // closes, to the counts here.
    connecting_.clear();
    for (const auto& session : sessions_)
        session->close();
    sessions_.clear();
}

bool Broker::add_bootstrap(unique_fd channel, Admission admission,
                           std::shared_ptr<const ClientCredentials> client) {
    // With SCM_PIDFD (Linux 6.5+) each attach names its sender exactly; without it the sender's
    // pidfd is opened by pid on arrival, and attach() checks it is still alive after the tree walk.
    // Spawned workers' channels have this set before the worker runs (run_mode.cpp, pool.cpp); an
    // accepted connection inherits SO_PASSCRED from the listening socket.
    proto::enable_credentials(channel.get(), /*want_pidfd=*/true);
    // A serve-mode connection costs the broker a descriptor: it counts against the client's channels.
    const bool counted = !admission.tree;
    if (counted && !tenants_.take(admission.uid, Resource::channels, limits_, profile_->name().c_str())) {
        errno = EMFILE;
        return false;
    }
    auto session = std::make_unique<Session>(*this, std::move(channel), admission, std::move(client));
    if (!session->start()) {
        const int saved = errno;
        session->close();  // gives the channel back
        errno = saved;
        return false;
    }
    sessions_.push_back(std::move(session));
    return true;
}

void Broker::reload(std::shared_ptr<const policy::Policy> policy, const policy::Profile& profile) {
    // Requests performed on another thread right now still use the old profile: it is released only
    // once none of them can (EventLoop::retire).
    loop_.retire(std::make_unique<std::shared_ptr<const policy::Policy>>(std::move(policy_)));
    policy_ = std::move(policy);
    profile_ = &profile;
    performer_ = Performer(profile, owner_);
    limits_ = tenants_.limits(profile.quota());
    audit_.set_policy_file(policy_->file());
}

void Broker::drain() noexcept {
    draining_ = true;
    for (const auto& session : sessions_)
        session->drain();
}

void Broker::close_all() noexcept {
    for (const auto& session : sessions_)
        session->close();
}

std::size_t Broker::channels_of(const ClientCredentials& client) const noexcept {
    return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(), [&](const auto& s) {
        return !s->closed() && s->client().get() == &client;
    }));
}

void Broker::close_client(const ClientCredentials& client) noexcept {
    for (const auto& session : sessions_)
        if (!session->closed() && session->client().get() == &client) session->close();
    cancel_orphaned_connects();
}

bool Broker::hand_over(const ClientCredentials& client, Broker& to) noexcept {
    if (&to == this) return true;
    auto moving = [&](const Session& s) { return !s.closed() && s.client().get() == &client; };
    const std::size_t sessions = channels_of(client);
    const auto connects = std::count_if(connecting_.begin(), connecting_.end(),
                                        [&](const auto& c) { return moving(*c->request().session); });
    // Everything that may fail comes first, so that the client is either moved whole or not at all.
    try {
        to.sessions_.reserve(to.sessions_.size() + sessions);
        to.connecting_.reserve(to.connecting_.size() + static_cast<std::size_t>(connects));
        for (const auto& s : sessions_)
            if (moving(*s) && s->kind() == Session::Kind::owned)
                to.channels_by_pid_.try_emplace(s->owner_pid(), 0);
    } catch (const std::bad_alloc&) {
        std::erase_if(to.channels_by_pid_, [](const auto& entry) { return entry.second == 0; });
        return false;
    }
    for (auto& s : sessions_) {
        if (!moving(*s)) continue;
        if (s->kind() == Session::Kind::owned) {
            forget_channel(s->owner_pid());
            ++to.channels_by_pid_[s->owner_pid()];
        }
        s->move_to(to);
        to.sessions_.push_back(std::move(s));
    }
    std::erase(sessions_, nullptr);
    // A connect answers to its session wherever that session is served.
    for (auto& c : connecting_) {
        if (&c->request().session->broker() != &to) continue;
        c->move_to(to);
        to.connecting_.push_back(std::move(c));
    }
    std::erase(connecting_, nullptr);
    return true;
}

bool Broker::drained() const noexcept {
    return connecting_.empty() &&
           std::all_of(sessions_.begin(), sessions_.end(), [](const auto& s) { return s->closed(); });
}

std::size_t Broker::channels() const noexcept {
    return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(), [](const auto& s) {
        return !s->closed() && s->owner_pid() != 0;
    }));
}

bool Broker::attach(const Session& through, const proto::Credentials& sender, unique_fd sender_pidfd,
                    unique_fd channel, const wire::Request& request, const char*& why) {
    // Until it is known to be a unix socket, the channel is any descriptor the sender chose, and
    // closing it could wait (a FUSE flush, a TCP socket set to linger): it is closed off the loop.
    if (!is_seqpacket_unix(channel.get())) {
        loop_.close_later(std::move(channel));
        return why = "the attached channel is not a unix seqpacket socket", false;
    }
    const Admission& admission = through.admission();
    if (sender.uid != admission.uid) return why = "credentials of another user", false;
    wire::Reply reply;
    reply.op = wire::Op::attach;
    reply.id = request.id;
    // Declines an attach for a reason that is not the sender's fault: the channel it brought gets the
    // errno, nothing is ended, and the process may try again later.
    auto decline = [&](int error) {
        reply.result = -error;
        std::array<std::byte, wire::kReplyHeaderSize> frame;
        const std::size_t size = wire::encode_reply(reply, frame);
        [[maybe_unused]] int err = proto::send(channel.get(), std::span(frame.data(), size),
                                               {.credentials = nullptr, .fd = -1, .flags = MSG_DONTWAIT});
        return true;
    };
    auto out_of_resources = [] { return errno == EMFILE || errno == ENFILE || errno == ENOMEM; };

    if (!sender_pidfd) sender_pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, sender.pid, 0)));
    if (!sender_pidfd) return out_of_resources() ? decline(errno) : (why = "the sender has exited", false);
    const auto membership =
        admission.tree ? admission.tree->membership(sender.pid) : ProcessTree::Membership::member;
    switch (membership) {
        case ProcessTree::Membership::member:
            break;
        case ProcessTree::Membership::unknown:
            return decline(EMFILE);
        case ProcessTree::Membership::outsider:
            return why = "the sender is not the worker or one of its descendants", false;
    }
    // The walk above read /proc by pid; the pidfd proves that pid still named the sender throughout.
    if (!pidfd_alive(sender_pidfd.get())) return why = "the sender exited during the check", false;
    // A process needs one channel (a second while the first is being replaced); more would only let a
    // worker exhaust the broker's descriptors. Its user's quota bounds all its processes together.
    if (const auto it = channels_by_pid_.find(sender.pid);
        it != channels_by_pid_.end() && it->second >= kMaxChannelsPerProcess)
        return decline(EMFILE);
    if (draining_) return decline(ESHUTDOWN);
    if (!tenants_.take(sender.uid, Resource::channels, limits_, profile_->name().c_str()))
        return decline(EMFILE);
    proto::enable_credentials(channel.get(), false);
    ::setsockopt(channel.get(), SOL_SOCKET, SO_SNDBUF, &kChannelSendBuffer, sizeof kChannelSendBuffer);

    long& open_channels = channels_by_pid_[sender.pid];
    auto session = std::make_unique<Session>(*this, std::move(channel), sender, std::move(sender_pidfd),
                                             through.client());
    ++open_channels;  // from here on, closing the session gives both counts back, whatever happens next
    if (!session->start()) {
        session->close();
        return why = "cannot watch the new channel", false;
    }
    session->reply(reply);
    sessions_.push_back(std::move(session));
    return true;
}

void Broker::channel_closed(const Session& session) noexcept {
    ++closed_;
    if (session.kind() == Session::Kind::bootstrap) {
        // Only serve-mode connections were counted (add_bootstrap).
        if (!session.admission().tree) tenants_.give_back(session.uid(), Resource::channels);
        return;
    }
    forget_channel(session.owner_pid());
    tenants_.give_back(session.uid(), Resource::channels);
}

void Broker::forget_channel(pid_t pid) noexcept {
    const auto it = channels_by_pid_.find(pid);
    if (it != channels_by_pid_.end() && --it->second <= 0) channels_by_pid_.erase(it);
}

void Broker::handle(Session& session, const proto::Credentials& sender,
                    const wire::Request& request) noexcept {
    if (request.op == wire::Op::attach) return;  // sessions never pass it here
    if (request.op == wire::Op::open_many) return open_many(session, sender, request);
    Outcome out;
    op::Operation operation;
    if ((out.error = decode_wire(request, operation)) != 0) return reply(session, request, out);
    // Performed with the loop released (event_loop.hpp): a file system may make it wait for good. It
    // works on its own copy of the performer, since a reload may replace it meanwhile; the policy it
    // points into outlives it (reload() retires the old one through the loop).
    const Performer performer = performer_;
    // Only a connect may go on waiting, judged by this policy whatever reloads come: only it takes a
    // reference (two atomic operations fewer for every other request).
    const Judged judged{request.op == wire::Op::connect ? policy_ : nullptr, profile_};
    loop_.blocking([&] { performer.perform({sender.pid, sender.uid}, operation, out); });
    if (out.pending && wait_for_connect(session, sender, request, judged, out)) return;
    if (out.audited) audit_.record(out.audit);
    reply(session, request, out);
    loop_.close_later(std::move(out.fd));
}

// A whole batch fits what one channel may have in flight when its user's quota allows it.
static_assert(Session::kMaxUnreceived >= wire::kMaxBatch);

void Broker::open_many(Session& session, const proto::Credentials& sender,
                       const wire::Request& request) noexcept {
    std::array<std::int32_t, wire::kMaxBatch> results{};
    std::array<unique_fd, wire::kMaxBatch> fds;
    std::size_t count = 0;
    std::size_t granted = 0;
    // Every descriptor of the batch counts as one sent (Session::within_share): an entry that would
    // go beyond what the channel may have in flight is not performed, and fails as an open(2) past
    // the descriptor limit does.
    const std::uint32_t room = session.descriptor_room();
    const Performer performer = performer_;  // as in handle(): a reload may replace performer_
    std::span<const std::byte> entries = request.data;
    while (const std::optional<wire::OpenEntry> entry = wire::next_open_entry(entries)) {
        std::int32_t& result = results[count++];
        if (granted >= room) {
            result = -EMFILE;
            continue;
        }
        Outcome out;
        op::Operation operation;
        if (const int err = decode_open_entry(*entry, operation); err != 0) {
            result = -err;
            continue;
        }
        loop_.blocking([&] { performer.perform({sender.pid, sender.uid}, operation, out); });
        if (out.audited) audit_.record(out.audit);
        if (out.error == 0 && out.fd) {
            fds[granted++] = std::move(out.fd);
        } else {
            result = -(out.error != 0 ? out.error : EIO);
        }
    }
    std::array<std::byte, wire::kMaxBatch * wire::kBatchResultSize> payload;
    wire::encode_batch_results(std::span(results).first(count), payload);
    std::array<int, wire::kMaxBatch> raw{};
    for (std::size_t i = 0; i < granted; ++i)
        raw[i] = fds[i].get();
    wire::Reply reply;
    reply.op = wire::Op::open_many;
    reply.id = request.id;
    reply.result = static_cast<std::int32_t>(count);
    reply.payload = std::span(payload).first(count * wire::kBatchResultSize);
    reply.has_fd = granted != 0;
    session.reply(reply, std::span(raw).first(granted));
    for (std::size_t i = 0; i < granted; ++i)
        loop_.close_later(std::move(fds[i]));
}

void Broker::reply(Session& session, const wire::Request& request, Outcome& out) noexcept {
    wire::Reply reply;
    reply.op = request.op;
    reply.id = request.id;
    // Success carries the op's value (the length of a link's target, an xattr's value or list; 0 for
    // the rest); failure carries -errno.
    reply.result = out.error != 0 ? -out.error : static_cast<std::int32_t>(out.value);
    std::array<std::byte, wire::kStatPayloadSize> stat_payload;
    if (out.error == 0 && out.carries == Outcome::Carries::stat) {
        wire::encode_stat(out.st, stat_payload);
        reply.payload = stat_payload;
    }
    if (out.error == 0 && out.carries == Outcome::Carries::link)
        reply.payload = std::as_bytes(std::span(out.link, static_cast<std::size_t>(out.value)));
    // The value or list as long as the kernel said: never more than the buffer it was read into, which
    // is no larger than the caller's.
    if (out.error == 0 && out.carries == Outcome::Carries::data)
        reply.payload = std::as_bytes(std::span(out.data).first(
            std::min(out.data.size(), static_cast<std::size_t>(std::max<std::int64_t>(out.value, 0)))));
    reply.has_fd = out.error == 0 && out.carries == Outcome::Carries::fd && out.fd;
    session.reply(reply, reply.has_fd ? out.fd.get() : -1);
}

bool Broker::wait_for_connect(Session& session, const proto::Credentials& sender,
                              const wire::Request& request, const Judged& judged, Outcome& out) noexcept {
    // The audit line of a connect that cannot wait names the address reached, like any other.
    const std::string_view address = out.socket.reached ? out.socket.reached->view() : request.path;
    auto cannot_wait = [&](int error) {
        out.fd.reset();
        out.socket.error = error;
        out.audit = Performer::socket_record({sender.pid, sender.uid}, judged.profile->name(), "connect",
                                             address, out.socket);
        out.audited = true;
        out.error = error;
        return false;
    };
    // While the address was resolved, a reload may have closed the session or handed it to another
    // broker: a connect waits in the broker of the session it answers to, and only for an open one.
    if (session.closed()) return cannot_wait(ECANCELED);
    Broker& home = session.broker();
    // Each connect in progress holds a socket and a timer in the broker.
    if (!tenants_.take(sender.uid, Resource::connects, limits_, judged.profile->name().c_str()))
        return cannot_wait(EAGAIN);
    try {
        Connecting::Request pending{&session,       sender,          request.id,          judged.policy,
                                    judged.profile, out.socket.rule, std::string(address)};
        auto connect = std::make_unique<Connecting>(home, std::move(pending), std::move(out.fd));
        if (!connect->start()) {
            const int error = errno;
            tenants_.give_back(sender.uid, Resource::connects);
            return cannot_wait(error);
        }
        home.connecting_.push_back(std::move(connect));
        return true;
    } catch (const std::bad_alloc&) {
        tenants_.give_back(sender.uid, Resource::connects);
        return cannot_wait(ENOMEM);
    }
}

void Broker::connect_finished(Connecting& connecting, int error, unique_fd socket) noexcept {
    const Connecting::Request& r = connecting.request();
    tenants_.give_back(r.sender.uid, Resource::connects);
    if (error == 0) error = SocketOps::make_blocking(socket.get());
    const SocketVerdict verdict{true, r.rule, nullptr, error, std::nullopt};
    audit_.record(Performer::socket_record({r.sender.pid, r.sender.uid}, r.profile->name(), "connect",
                                           r.address, verdict));
    wire::Reply reply;
    reply.op = wire::Op::connect;
    reply.id = r.id;
    reply.result = -error;
    reply.has_fd = error == 0;
    r.session->reply(reply, reply.has_fd ? socket.get() : -1);
    // The broker made this socket and nobody else can have set it to linger: closed now, so that a
    // cancelled connect is gone from the network by the time the reload that cancelled it is done.
    socket.reset();
    // Called from the connect's own event: the loop destroys it once the turn is over.
    loop_.retire_from(connecting_, connecting);
}

void Broker::cancel_orphaned_connects() noexcept {
    // Backwards: a cancelled connect leaves the list at once, and the one swapped into its place has
    // been looked at already.
    for (std::size_t i = connecting_.size(); i-- > 0;)
        if (i < connecting_.size() && connecting_[i]->request().session->closed()) connecting_[i]->cancel();
}

void Broker::end_turn() noexcept {
    cancel_orphaned_connects();
    // A closed session may still be in use by a request stuck in a file system: the loop destroys it
    // once nothing can be.
    if (closed_ > 0) {
        closed_ = 0;
        for (auto& session : sessions_)
            if (session->closed()) loop_.retire(std::move(session));
        std::erase(sessions_, nullptr);
    }
    audit_.flush();
    flush_log_limits();
}

}  // namespace fdbroker::broker
