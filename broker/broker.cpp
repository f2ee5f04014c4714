#include "broker/broker.hpp"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "broker/log.hpp"

namespace fdbroker::broker {

namespace {

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
    : loop_(loop), policy_(std::move(policy)), profile_(profile), ops_(profile, owner), audit_(audit) {
    audit_.set_policy_file(policy_->file());
}

bool Broker::add_bootstrap(unique_fd channel, ProcessTree tree, uid_t worker_uid) {
    tree_ = tree;
    worker_uid_ = worker_uid;
    // With SCM_PIDFD (Linux 6.5+) each attach names its sender exactly; without it the sender's
    // pidfd is opened by pid on arrival, and attach() checks it is still alive after the tree walk.
    proto::enable_credentials(channel.get(), /*want_pidfd=*/true);
    auto session = std::make_unique<Session>(*this, std::move(channel));
    if (!session->start()) return false;
    sessions_.push_back(std::move(session));
    return true;
}

bool Broker::attach(const proto::Credentials& sender, unique_fd sender_pidfd, unique_fd channel,
                    const wire::Request& request, const char*& why) {
    if (!tree_) return why = "attach is not accepted here", false;
    if (sender.uid != worker_uid_) return why = "credentials of another user", false;
    if (!sender_pidfd) sender_pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, sender.pid, 0)));
    if (!sender_pidfd) return why = "the sender has exited", false;
    if (!tree_->contains(sender.pid))
        return why = "the sender is not the worker or one of its descendants", false;
    // The walk above read /proc by pid; the pidfd proves that pid still named the sender throughout.
    if (!pidfd_alive(sender_pidfd.get())) return why = "the sender exited during the check", false;
    if (!is_seqpacket_unix(channel.get()))
        return why = "the attached channel is not a unix seqpacket socket", false;
    proto::enable_credentials(channel.get(), false);

    auto session = std::make_unique<Session>(*this, std::move(channel), sender, std::move(sender_pidfd));
    if (!session->start()) return why = "cannot watch the new channel", false;
    wire::Reply reply;
    reply.op = wire::Op::attach;
    reply.id = request.id;
    session->reply(reply);
    sessions_.push_back(std::move(session));
    return true;
}

void Broker::handle(Session& session, const proto::Credentials& sender,
                    const wire::Request& request) noexcept {
    AuditRecord audit{sender.pid, sender.uid, profile_.name(), wire::op_name(request.op), request.path,
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

void Broker::end_turn() noexcept {
    std::erase_if(sessions_, [](const std::unique_ptr<Session>& s) { return s->closed(); });
    audit_.flush();
}

}  // namespace fdbroker::broker
