#include "broker/broker.hpp"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "broker/log.hpp"

namespace fdbroker::broker {

namespace {

// Live private channels one process may hold: one, and a second while the first is being replaced.
constexpr long kMaxChannelsPerProcess = 4;
// The send buffer of a private channel: room for a few dozen replies. A worker that does not read its
// replies then meets back-pressure after little memory, and what it leaves unread is bounded.
constexpr int kChannelSendBuffer = 16384;

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
               const policy::Profile& profile, std::optional<Owner> owner, Audit& audit)
    : loop_(loop),
      tenants_(tenants),
      policy_(std::move(policy)),
      profile_(&profile),
      limits_(tenants.limits(profile.quota())),
      owner_(owner),
      ops_(profile, owner),
      sockets_(profile, owner),
      audit_(audit) {
    audit_.set_policy_file(policy_->file());
}

Broker::~Broker() {
    // Each session gives back what it holds as it closes; everything it reports to is still here.
    for (const auto& session : sessions_)
        session->close();
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
    auto session =
        std::make_unique<Session>(*this, std::move(channel), std::move(admission), std::move(client));
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
    ops_ = FileOps(profile, owner_);
    sockets_ = SocketOps(profile, owner_);
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
    const bool connecting =
        std::any_of(connecting_.begin(), connecting_.end(), [](const auto& c) { return !c->finished(); });
    return !connecting &&
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
    if (request.op == wire::Op::connect || request.op == wire::Op::listen)
        return handle_socket(session, sender, request);
    if (request.op == wire::Op::attach) return;  // sessions never pass it here
    AuditRecord audit{sender.pid, sender.uid, profile_->name(), wire::op_name(request.op), request.path,
                      {},         0};
    wire::Reply reply;
    reply.op = request.op;
    reply.id = request.id;
    std::array<std::byte, wire::kStatPayloadSize> stat_payload;
    std::array<char, wire::kMaxPath> link;
    struct ::stat st {};
    if (request.op == wire::Op::open || request.op == wire::Op::access || request.op == wire::Op::mkdir)
        audit.flags = request.arg0;
    if (request.op == wire::Op::rename) audit.path2 = request.path2;

    // Performed with the loop released (event_loop.hpp): a file system may make it wait for good. It
    // works on its own copy of the operations, since a reload may replace them meanwhile; the policy
    // they point into outlives it (reload() retires the old one through the loop).
    const FileOps ops = ops_;
    OpResult result = loop_.blocking([&] { return perform(ops, request, st, link); });
    if (result.verdict.error == 0 && request.op == wire::Op::stat) {
        wire::encode_stat(st, stat_payload);
        reply.payload = stat_payload;
    }
    if (result.verdict.error == 0 && request.op == wire::Op::readlink)
        reply.payload = std::as_bytes(std::span(link.data(), static_cast<std::size_t>(result.value)));
    // Success carries the op's value (readlink's length, 0 for the rest); failure carries -errno.
    reply.result = result.verdict.error != 0 ? -result.verdict.error : result.value;
    reply.has_fd = static_cast<bool>(result.fd);
    audit.allowed = result.verdict.allowed;
    audit.rule = result.verdict.rule;
    audit.error = result.verdict.error;
    audit_.record(audit);
    session.reply(reply, result.fd.get());
    loop_.close_later(std::move(result.fd));
}

OpResult Broker::perform(const FileOps& ops, const wire::Request& request, struct ::stat& st,
                         std::span<char> link) noexcept {
    const FileOps& op = ops;
    switch (request.op) {
        case wire::Op::open:
            return op.open(request.path, request.arg0, static_cast<mode_t>(request.arg1));
        case wire::Op::access:
            return op.access(request.path, request.arg0);
        case wire::Op::stat:
            return op.stat(request.path, st);
        case wire::Op::readlink:
            return op.readlink(request.path, link);
        case wire::Op::mkdir:
            return op.mkdir(request.path, static_cast<mode_t>(request.arg0));
        case wire::Op::unlink:
            return op.unlink(request.path);
        case wire::Op::rmdir:
            return op.rmdir(request.path);
        case wire::Op::rename:
            return op.rename(request.path, request.path2);
        case wire::Op::connect:
        case wire::Op::listen:
        case wire::Op::attach:
            break;
    }
    OpResult refused;
    refused.verdict = {false, nullptr, EINVAL};
    return refused;
}

void Broker::handle_socket(Session& session, const proto::Credentials& sender,
                           const wire::Request& request) noexcept {
    // A unix path is resolved like a file's: in a blocking section, on copies a reload cannot replace.
    const SocketOps sockets = sockets_;
    const Judged judged{policy_, profile_};
    SocketResult result = loop_.blocking([&] {
        return request.op == wire::Op::connect ? sockets.connect(request.path)
                                               : sockets.listen(request.path, static_cast<int>(request.arg0));
    });
    if (result.pending && wait_for_connect(session, sender, request, judged, result)) return;
    // The audit line names the address reached (a connect to 0.0.0.0 reaches 127.0.0.1).
    const std::string_view target = result.verdict.reached ? result.verdict.reached->view() : request.path;
    answer_socket(session, sender, judged.profile->name(), request.op, request.id, target, result.verdict,
                  result.fd.get());
}

// Hands a connect in progress to the event loop; false (with the socket closed and the reason in
// result.verdict.error) when it cannot wait for it.
bool Broker::wait_for_connect(Session& session, const proto::Credentials& sender,
                              const wire::Request& request, const Judged& judged,
                              SocketResult& result) noexcept {
    int& error = result.verdict.error;
    // While the address was resolved, a reload may have closed the session or handed it to another
    // broker: a connect waits in the broker of the session it answers to, and only for an open one.
    if (session.closed()) {
        error = ECANCELED;
        result.fd.reset();
        return false;
    }
    Broker& home = session.broker();
    // Each connect in progress holds a socket and a timer in the broker.
    if (!tenants_.take(sender.uid, Resource::connects, limits_, judged.profile->name().c_str())) {
        error = EAGAIN;
        result.fd.reset();
        return false;
    }
    try {
        PendingConnect::Request pending{
            &session,
            sender,
            request.id,
            judged.policy,
            judged.profile,
            result.verdict.rule,
            std::string(result.verdict.reached ? result.verdict.reached->view() : request.path)};
        auto connect = std::make_unique<PendingConnect>(home, std::move(pending), std::move(result.fd));
        if (!connect->start(judged.profile->connect_timeout())) {
            error = errno;
            tenants_.give_back(sender.uid, Resource::connects);
            return false;
        }
        home.connecting_.push_back(std::move(connect));
        return true;
    } catch (const std::bad_alloc&) {
        error = ENOMEM;
        result.fd.reset();
        tenants_.give_back(sender.uid, Resource::connects);
        return false;
    }
}

void Broker::connect_finished(const PendingConnect& connect, int error, const unique_fd& socket) noexcept {
    const PendingConnect::Request& r = connect.request();
    tenants_.give_back(r.sender.uid, Resource::connects);
    const SocketVerdict verdict{true, r.rule, nullptr, error, std::nullopt};
    answer_socket(*r.session, r.sender, r.profile->name(), wire::Op::connect, r.id, r.address, verdict,
                  error == 0 ? socket.get() : -1);
}

void Broker::answer_socket(Session& session, const proto::Credentials& sender, std::string_view profile,
                           wire::Op op, std::uint32_t id, std::string_view address,
                           const SocketVerdict& verdict, int fd) noexcept {
    AuditRecord audit{sender.pid, sender.uid, profile, wire::op_name(op), address, {}, 0};
    audit.allowed = verdict.allowed;
    audit.rule = verdict.deny;
    audit.address_rule = verdict.rule;
    audit.error = verdict.error;
    audit_.record(audit);
    wire::Reply reply;
    reply.op = op;
    reply.id = id;
    reply.result = -verdict.error;
    reply.has_fd = verdict.error == 0 && fd >= 0;
    session.reply(reply, reply.has_fd ? fd : -1);
}

void Broker::cancel_orphaned_connects() noexcept {
    for (const auto& connect : connecting_)
        if (connect->request().session->closed()) connect->cancel();
}

void Broker::end_turn() noexcept {
    cancel_orphaned_connects();
    std::erase_if(connecting_, [](const std::unique_ptr<PendingConnect>& c) { return c->finished(); });
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
