// The broker's state for one policy profile: its sessions, the file and socket operations (with the
// connects still in progress), the audit stream, and the rule that says which processes may attach.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "broker/audit.hpp"
#include "broker/event_loop.hpp"
#include "broker/file_ops.hpp"
#include "broker/pending_connect.hpp"
#include "broker/process_tree.hpp"
#include "broker/session.hpp"
#include "broker/socket_ops.hpp"
#include "policy/policy.hpp"
#include "proto/channel.hpp"
#include "proto/wire.hpp"

namespace fdbroker::broker {

class Broker {
  public:
    Broker(EventLoop& loop, std::shared_ptr<const policy::Policy> policy, const policy::Profile& profile,
           std::optional<Owner> owner, Audit& audit);

    // Serves a bootstrap channel: a spawned worker's (run mode, pools) or an accepted client's.
    bool add_bootstrap(unique_fd channel, Admission admission);

    // Applies a reloaded policy: requests from now on are judged by `profile` (same name, from
    // `policy`); channels stay open. Answers to connects still in progress keep the old rules alive.
    void reload(std::shared_ptr<const policy::Policy> policy, const policy::Profile& profile);
    // Stops reading new requests: peers can no longer send (EPIPE), requests already queued are still
    // read and answered. True once nothing is queued, in progress or unsent any more.
    void drain() noexcept;
    // Ends every channel (its profile is gone from a reloaded policy).
    void close_all() noexcept;
    [[nodiscard]] bool drained() const noexcept;
    [[nodiscard]] std::size_t channels() const noexcept;
    // Bootstrap channels (serve-mode connections) open for processes of this uid.
    [[nodiscard]] std::size_t connections_of(uid_t uid) const noexcept;
    [[nodiscard]] const policy::Profile& profile() const noexcept { return *profile_; }

    EventLoop& loop() noexcept { return loop_; }
    // The receive buffer every session reads into: one byte larger than the largest legal request so
    // that an oversized one is seen as truncated.
    std::span<std::byte> receive_buffer() noexcept { return buffer_; }

    // An attach request arrived on a bootstrap channel; false means the sender is refused.
    bool attach(const Admission& admission, const proto::Credentials& sender, unique_fd sender_pidfd,
                unique_fd channel, const wire::Request& request, const char*& why);
    // Performs a request from a private channel's owner and sends the reply.
    void handle(Session& session, const proto::Credentials& sender, const wire::Request& request) noexcept;

    // A private channel of this process was closed (Session::close).
    void channel_closed(pid_t owner) noexcept;

    // A pending connect ended: error 0 and the connected socket, or why it failed (ETIMEDOUT after
    // connect_timeout, ECANCELED when its session went first). Answers the worker and audits.
    void connect_finished(const PendingConnect& connect, int error, const unique_fd& socket) noexcept;

    // Destroys sessions closed during the last loop turn, with the connects they were waiting for, and
    // flushes the audit stream.
    void end_turn() noexcept;

  private:
    void handle_socket(Session& session, const proto::Credentials& sender,
                       const wire::Request& request) noexcept;
    bool wait_for_connect(Session& session, const proto::Credentials& sender, const wire::Request& request,
                          SocketResult& result) noexcept;
    void answer_socket(Session& session, const proto::Credentials& sender, wire::Op op, std::uint32_t id,
                       std::string_view address, const SocketVerdict& verdict, int fd) noexcept;

    EventLoop& loop_;
    std::shared_ptr<const policy::Policy> policy_;
    const policy::Profile* profile_;
    std::optional<Owner> owner_;
    FileOps ops_;
    SocketOps sockets_;
    Audit& audit_;
    // Policies replaced by a reload while connects judged by them were still in progress.
    std::vector<std::shared_ptr<const policy::Policy>> retired_;
    bool draining_ = false;
    // Open private channels per owning process, for the per-process cap: counted as sessions open and
    // close rather than by scanning every session per attach. Before sessions_, which report their
    // closing to it as they are destroyed.
    std::unordered_map<pid_t, long> channels_by_pid_;
    std::vector<std::unique_ptr<Session>> sessions_;
    // After sessions_, so that destruction ends the connects before the sessions they answer to.
    std::vector<std::unique_ptr<PendingConnect>> connecting_;
    std::array<std::byte, wire::kMaxRequestSize + 1> buffer_{};
};

}  // namespace fdbroker::broker
