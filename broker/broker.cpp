#include "broker/broker.hpp"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "broker/log.hpp"

namespace fdbroker::broker {

namespace {

// Connects one session may have in progress at once: each holds a socket and a timer in the broker.
constexpr std::size_t kMaxConnectsPerSession = 64;
// Live private channels one process may hold: one, and a second while the first is being replaced.
constexpr long kMaxChannelsPerProcess = 4;

bool is_seqpacket_unix(int fd) noexcept {
    int domain = 0, type = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return false;
    len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return false;
    return domain == AF_UNIX && type == SOCK_SEQPACKET;
}

}  // namespace

Broker::Broker(EventLoop& loop, std::shared_ptr<const policy::Policy> policy, const policy::Profile& profile,
               std::optional<Owner> owner, Audit& audit)
    : loop_(loop),
      policy_(std::move(policy)),
      profile_(&profile),
      owner_(owner),
      ops_(profile, owner),
      sockets_(profile, owner),
      audit_(audit) {
    audit_.set_policy_file(policy_->file());
}

bool Broker::add_bootstrap(unique_fd channel, Admission admission) {
    // With SCM_PIDFD (Linux 6.5+) each attach names its sender exactly; without it the sender's
    // pidfd is opened by pid on arrival, and attach() checks it is still alive after the tree walk.
    proto::enable_credentials(channel.get(), /*want_pidfd=*/true);
    auto session = std::make_unique<Session>(*this, std::move(channel), admission);
    if (!session->start()) return false;
    sessions_.push_back(std::move(session));
    return true;
}

void Broker::reload(std::shared_ptr<const policy::Policy> policy, const policy::Profile& profile) {
    if (!connecting_.empty()) retired_.push_back(policy_);
    policy_ = std::move(policy);
    profile_ = &profile;
    ops_ = FileOps(profile, owner_);
    sockets_ = SocketOps(profile, owner_);
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

bool Broker::drained() const noexcept {
    const bool connecting =
        std::any_of(connecting_.begin(), connecting_.end(), [](const auto& c) { return !c->finished(); });
    return !connecting &&
           std::all_of(sessions_.begin(), sessions_.end(), [](const auto& s) { return s->closed(); });
}

std::size_t Broker::connections_of(uid_t uid) const noexcept {
    return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(), [&](const auto& s) {
        return !s->closed() && s->owner_pid() == 0 && s->admission_uid() == uid;
    }));
}

std::size_t Broker::channels() const noexcept {
    return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(), [](const auto& s) {
        return !s->closed() && s->owner_pid() != 0;
    }));
}

bool Broker::attach(const Admission& admission, const proto::Credentials& sender, unique_fd sender_pidfd,
                    unique_fd channel, const wire::Request& request, const char*& why) {
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
    if (!is_seqpacket_unix(channel.get()))
        return why = "the attached channel is not a unix seqpacket socket", false;
    // A process needs one channel (a second while the first is being replaced); more would only let a
    // worker exhaust the broker's descriptors.
    if (const auto it = channels_by_pid_.find(sender.pid);
        it != channels_by_pid_.end() && it->second >= kMaxChannelsPerProcess)
        return decline(EMFILE);
    if (draining_) return decline(ESHUTDOWN);
    proto::enable_credentials(channel.get(), false);

    long& open_channels = channels_by_pid_[sender.pid];
    auto session = std::make_unique<Session>(*this, std::move(channel), sender, std::move(sender_pidfd));
    ++open_channels;  // from here on, closing the session uncounts it, whatever happens next
    if (!session->start()) return why = "cannot watch the new channel", false;
    session->reply(reply);
    sessions_.push_back(std::move(session));
    return true;
}

void Broker::channel_closed(pid_t owner) noexcept {
    const auto it = channels_by_pid_.find(owner);
    if (it != channels_by_pid_.end() && --it->second <= 0) channels_by_pid_.erase(it);
}

void Broker::handle(Session& session, const proto::Credentials& sender,
                    const wire::Request& request) noexcept {
    AuditRecord audit{sender.pid, sender.uid, profile_->name(), wire::op_name(request.op), request.path,
                      {},         0};
    wire::Reply reply;
    reply.op = request.op;
    reply.id = request.id;
    OpResult result;
    std::array<std::byte, wire::kStatPayloadSize> stat_payload;
    std::array<char, wire::kMaxPath> link;
    struct ::stat st {};

    switch (request.op) {
        case wire::Op::open:
            audit.flags = request.arg0;
            result = ops_.open(request.path, request.arg0, static_cast<mode_t>(request.arg1));
            break;
        case wire::Op::access:
            audit.flags = request.arg0;
            result = ops_.access(request.path, request.arg0);
            break;
        case wire::Op::stat:
            result = ops_.stat(request.path, st);
            if (result.verdict.error == 0) {
                wire::encode_stat(st, stat_payload);
                reply.payload = stat_payload;
            }
            break;
        case wire::Op::readlink:
            result = ops_.readlink(request.path, link);
            if (result.verdict.error == 0)
                reply.payload = std::as_bytes(std::span(link.data(), static_cast<std::size_t>(result.value)));
            break;
        case wire::Op::mkdir:
            audit.flags = request.arg0;
            result = ops_.mkdir(request.path, static_cast<mode_t>(request.arg0));
            break;
        case wire::Op::unlink:
            result = ops_.unlink(request.path);
            break;
        case wire::Op::rmdir:
            result = ops_.rmdir(request.path);
            break;
        case wire::Op::rename:
            audit.path2 = request.path2;
            result = ops_.rename(request.path, request.path2);
            break;
        case wire::Op::connect:
        case wire::Op::listen:
            return handle_socket(session, sender, request);
        case wire::Op::attach:
            return;  // sessions never pass it here
    }
    // Success carries the op's value (readlink's length, 0 for the rest); failure carries -errno.
    reply.result = result.verdict.error != 0 ? -result.verdict.error : result.value;
    reply.has_fd = static_cast<bool>(result.fd);
    audit.allowed = result.verdict.allowed;
    audit.rule = result.verdict.rule;
    audit.error = result.verdict.error;
    audit_.record(audit);
    session.reply(reply, result.fd.get());
}

void Broker::handle_socket(Session& session, const proto::Credentials& sender,
                           const wire::Request& request) noexcept {
    SocketResult result = request.op == wire::Op::connect
                              ? sockets_.connect(request.path)
                              : sockets_.listen(request.path, static_cast<int>(request.arg0));
    if (result.pending && wait_for_connect(session, sender, request, result)) return;
    // The audit line names the address reached (a connect to 0.0.0.0 reaches 127.0.0.1).
    const std::string_view target = result.verdict.reached ? result.verdict.reached->view() : request.path;
    answer_socket(session, sender, request.op, request.id, target, result.verdict, result.fd.get());
}

// Hands a connect in progress to the event loop; false (with the socket closed and the reason in
// result.verdict.error) when it cannot wait for it.
bool Broker::wait_for_connect(Session& session, const proto::Credentials& sender,
                              const wire::Request& request, SocketResult& result) noexcept {
    int& error = result.verdict.error;
    const auto waiting = std::count_if(connecting_.begin(), connecting_.end(), [&](const auto& c) {
        return !c->finished() && c->request().session == &session;
    });
    if (static_cast<std::size_t>(waiting) >= kMaxConnectsPerSession) {
        error = EAGAIN;
        result.fd.reset();
        return false;
    }
    try {
        PendingConnect::Request pending{
            &session, sender, request.id, result.verdict.rule,
            std::string(result.verdict.reached ? result.verdict.reached->view() : request.path)};
        auto connect = std::make_unique<PendingConnect>(*this, std::move(pending), std::move(result.fd));
        if (!connect->start(profile_->connect_timeout())) {
            error = errno;
            return false;
        }
        connecting_.push_back(std::move(connect));
        return true;
    } catch (const std::bad_alloc&) {
        error = ENOMEM;
        result.fd.reset();
        return false;
    }
}

void Broker::connect_finished(const PendingConnect& connect, int error, const unique_fd& socket) noexcept {
    const PendingConnect::Request& r = connect.request();
    const SocketVerdict verdict{true, r.rule, nullptr, error, std::nullopt};
    answer_socket(*r.session, r.sender, wire::Op::connect, r.id, r.address, verdict,
                  error == 0 ? socket.get() : -1);
}

void Broker::answer_socket(Session& session, const proto::Credentials& sender, wire::Op op, std::uint32_t id,
                           std::string_view address, const SocketVerdict& verdict, int fd) noexcept {
    AuditRecord audit{sender.pid, sender.uid, profile_->name(), wire::op_name(op), address, {}, 0};
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

void Broker::end_turn() noexcept {
    // A connect must not outlive the session that waits for it.
    for (const auto& connect : connecting_)
        if (connect->request().session->closed()) connect->cancel();
    std::erase_if(connecting_, [](const std::unique_ptr<PendingConnect>& c) { return c->finished(); });
    if (connecting_.empty()) retired_.clear();
    std::erase_if(sessions_, [](const std::unique_ptr<Session>& s) { return s->closed(); });
    audit_.flush();
}

}  // namespace fdbroker::broker
