// The broker's state for one policy profile: its sessions, the file and socket operations (with the
// connects still in progress), the audit stream, and the rule that says which processes may attach.
// A reload may hand a serve-mode client's sessions to another Broker, whose profile then judges them.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "broker/channels/session.hpp"
#include "broker/core/audit.hpp"
#include "broker/core/event_loop.hpp"
#include "broker/core/process_tree.hpp"
#include "broker/core/tenants.hpp"
#include "broker/ops/pending_connect.hpp"
#include "broker/ops/perform.hpp"
#include "policy/policy.hpp"
#include "proto/channel.hpp"
#include "proto/wire.hpp"

namespace fdbroker::broker {

class Broker {
  public:
    Broker(EventLoop& loop, Tenants& tenants, std::shared_ptr<const policy::Policy> policy,
           const policy::Profile& profile, std::optional<FileOwner> owner, Audit& audit);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Serves a bootstrap channel: a spawned worker's (run mode, pools) or an accepted client's, whose
    // credentials at accept `client` records.
    bool add_bootstrap(unique_fd channel, Admission admission,
                       std::shared_ptr<const ClientCredentials> client = {});

    // Applies a reloaded policy: requests from now on are judged by `profile` (same name, from
    // `policy`); channels stay open. Connects still in progress are answered as they were judged.
    void reload(std::shared_ptr<const policy::Policy> policy, const policy::Profile& profile);

    // The first serve-mode client with a channel open here for which `pred` holds; null if none.
    template <class Pred>
    [[nodiscard]] std::shared_ptr<const ClientCredentials> find_client(Pred pred) const {
        for (const auto& session : sessions_)
            if (!session->closed() && session->client() && pred(*session->client())) return session->client();
        return nullptr;
    }
    // The channels `client` has open here: its bootstrap channel and those attached through it.
    [[nodiscard]] std::size_t channels_of(const ClientCredentials& client) const noexcept;
    // Ends every channel of `client` (a reload left no profile that names it), and the connects they
    // were waiting for.
    void close_client(const ClientCredentials& client) noexcept;
    // Hands every channel `client` has open here to `to`, with the connects they wait for: from its
    // next request on, `to`'s profile judges it. False, with nothing moved, when out of memory.
    bool hand_over(const ClientCredentials& client, Broker& to) noexcept;
    // Stops reading new requests: peers can no longer send (EPIPE), requests already queued are still
    // read and answered. True once nothing is queued, in progress or unsent any more.
    void drain() noexcept;
    // Ends every channel (its profile is gone from a reloaded policy).
    void close_all() noexcept;
    [[nodiscard]] bool drained() const noexcept;
    [[nodiscard]] std::size_t channels() const noexcept;
    [[nodiscard]] const policy::Profile& profile() const noexcept { return *profile_; }
    // The quota of this profile's users, as in force (the profile's, and the broker's defaults).
    [[nodiscard]] const policy::QuotaLimits& limits() const noexcept { return limits_; }

    EventLoop& loop() noexcept { return loop_; }
    Tenants& tenants() noexcept { return tenants_; }

    // An attach request arrived on bootstrap channel `through`; false means the sender is refused.
    bool attach(const Session& through, const proto::Credentials& sender, unique_fd sender_pidfd,
                unique_fd channel, const wire::Request& request, const char*& why);
    // Performs a request from a private channel's owner and sends the reply.
    void handle(Session& session, const proto::Credentials& sender, const wire::Request& request) noexcept;

    // Complain mode (Performer::complain), for `fdbroker learn`.
    void complain(const policy::Profile& permissive, Recorder& recorder) noexcept {
        performer_.complain(permissive, recorder);
    }

    // A private channel was closed (Session::close).
    void channel_closed(const Session& session) noexcept;

    // Hands sessions closed during the last loop turn to the loop for destruction, cancels the connects
    // they were waiting for, and flushes the audit stream.
    void end_turn() noexcept;

  private:
    class Connecting;
    // The profile a request was judged by, and the policy that keeps it alive through a reload.
    struct Judged {
        std::shared_ptr<const policy::Policy> policy;
        const policy::Profile* profile;
    };
    // An open_many request: each entry decided, performed and audited as a lone open, then one reply
    // with every descriptor granted (as many as the session may have in flight; the rest EMFILE).
    void open_many(Session& session, const proto::Credentials& sender, const wire::Request& request) noexcept;
    // The reply step of library mode: a frame, with the descriptor (SCM_RIGHTS) the outcome carries.
    static void reply(Session& session, const wire::Request& request, Outcome& out) noexcept;
    // Hands a connect in progress to the event loop; false (with out.error set) when it cannot wait.
    bool wait_for_connect(Session& session, const proto::Credentials& sender, const wire::Request& request,
                          const Judged& judged, Outcome& out) noexcept;
    // A pending connect ended (Connecting): answers the worker, audits, and lets the loop destroy it.
    void connect_finished(Connecting& connecting, int error, unique_fd socket) noexcept;
    // Cancels the connects whose session has closed: none may outlive the session it answers to.
    void cancel_orphaned_connects() noexcept;
    // A private channel of `pid` left this broker (closed, or handed to another).
    void forget_channel(pid_t pid) noexcept;

    EventLoop& loop_;
    Tenants& tenants_;
    std::shared_ptr<const policy::Policy> policy_;
    const policy::Profile* profile_;
    policy::QuotaLimits limits_;
    std::optional<FileOwner> owner_;
    Performer performer_;
    Audit& audit_;
    bool draining_ = false;
    // Open private channels per owning process, for the per-process cap: counted as sessions open and
    // close rather than by scanning every session per attach.
    std::unordered_map<pid_t, long> channels_by_pid_;
    std::vector<std::unique_ptr<Session>> sessions_;
    std::size_t closed_ = 0;  // sessions closed since end_turn() last collected them
    // Connects in progress, each answering to a session of this broker; the destructor ends them first.
    std::vector<std::unique_ptr<Connecting>> connecting_;
};

}  // namespace fdbroker::broker
