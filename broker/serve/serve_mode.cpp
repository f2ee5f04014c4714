#include "broker/serve/serve_mode.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "broker/channels/broker.hpp"
#include "broker/channels/startup.hpp"
#include "broker/core/audit.hpp"
#include "broker/core/event_loop.hpp"
#include "broker/core/log.hpp"
#include "broker/core/tenants.hpp"
#include "broker/core/worker_identity.hpp"
#include "broker/serve/client_acceptor.hpp"
#include "broker/serve/pool.hpp"
#include "broker/serve/serve_socket.hpp"
#include "broker/serve/systemd.hpp"
#include "sandbox/limits.hpp"
#include "sandbox/self_confine.hpp"

namespace fdbroker::broker {

namespace {

constexpr int kSetupFailed = 1;
// How long a stopping broker waits for requests in flight, pending connects and pool workers before it
// kills what is left and exits.
constexpr std::chrono::seconds kDrainTimeout{10};
// Pool workers still running this long after SIGTERM get SIGKILL.
constexpr std::chrono::seconds kStopGrace{5};

using Clock = std::chrono::steady_clock;

// What a root broker creates for a client belongs to the client, as if it had made it itself.
std::optional<FileOwner> client_owner(const ClientCredentials& client) noexcept {
    if (::geteuid() == 0 && client.uid != 0) return FileOwner{client.uid, client.gid};
    return std::nullopt;
}

class Server final : public PoolHost, public EventHandler {
  public:
    explicit Server(std::string policy_file) : policy_file_(std::move(policy_file)) {}

    int run(const ServeOptions& options);

    EventLoop& loop() noexcept override { return loop_; }
    std::shared_ptr<const policy::Policy> policy() const noexcept override { return policy_; }
    Broker* broker_for(const policy::Profile& profile, std::optional<FileOwner> owner) noexcept override;
    sandbox::Containment& containment() noexcept override { return *containment_; }
    Audit& audit() noexcept override { return audit_; }
    void on_event(std::uint32_t) noexcept override;  // the signalfd

  private:
    struct Served {
        std::string profile;
        std::optional<FileOwner> owner;
        std::unique_ptr<Broker> broker;
        bool retired = false;  // its profile left the policy: retired at the end of the turn
    };

    bool load_policy();
    bool open_socket(const ServeOptions& options);
    bool confine_self();
    void accept_client(unique_fd connection, Peer peer) noexcept;
    void reload() noexcept;
    void reload_brokers() noexcept;
    void rejudge_clients() noexcept;
    void rejudge(Broker& from, const ClientCredentials& client, const policy::Profile* now) noexcept;
    void start_pools() noexcept;
    void reap() noexcept;
    void begin_stop() noexcept;
    void end_turn() noexcept;
    [[nodiscard]] bool finished() const noexcept;
    [[nodiscard]] int turn_timeout() const noexcept;
    void notify_status(const char* state) noexcept;

    std::string policy_file_;
    EventLoop loop_;
    // Before the brokers, whose sessions give back what they hold as they are destroyed.
    Tenants tenants_{loop_, sandbox::raise_descriptor_limit()};
    Audit audit_;
    std::optional<Denials> denials_;
    std::shared_ptr<const policy::Policy> policy_;
    std::optional<ServeSocket> socket_;
    std::unique_ptr<ClientAcceptor> listener_;
    unique_fd signals_;
    sandbox::BrokerNeeds held_{};
    std::vector<Served> served_;
    // Pool workers' cgroups (none until run() sets them up: the process tree alone).
    std::unique_ptr<sandbox::Containment> containment_ = std::make_unique<sandbox::Containment>();
    std::vector<std::unique_ptr<PoolWorker>> pool_;
    bool stopping_ = false;
    Clock::time_point stop_started_;
    bool killed_pool_ = false;
    Clock::time_point status_sent_;
    std::string status_;  // the last STATUS= sent
};

bool Server::load_policy() {
    std::shared_ptr<const policy::Policy> loaded = broker::load_policy(policy_file_);
    if (!loaded) return false;
    policy_ = std::move(loaded);
    return true;
}

bool Server::open_socket(const ServeOptions& options) {
    std::string error;
    socket_ = ServeSocket::from_systemd(error);
    if (!socket_ && error.empty()) {
        SocketSpec spec{options.socket.empty() ? ServeSocket::default_address() : options.socket,
                        options.socket_mode, options.socket_group};
        if (spec.address.empty()) {
            log("serve: no socket address: give --socket (XDG_RUNTIME_DIR is not set)");
            return false;
        }
        socket_ = ServeSocket::create(spec, error);
    }
    if (!socket_) {
        log("serve: %s", error.c_str());
        return false;
    }
    listener_ = std::make_unique<ClientAcceptor>(
        loop_, socket_->fd(),
        [this](unique_fd connection, Peer peer) { accept_client(std::move(connection), std::move(peer)); });
    return true;
}

// After set-up the broker keeps only what its policy needs (docs/security-model.md).
bool Server::confine_self() {
    held_.spawns_workers = policy_->has_pools();
    held_.signals_workers = held_.spawns_workers;
    held_.binds_low_ports = policy_->listens_below_1024();
    const sandbox::Confined confined = sandbox::confine_broker(held_);
    if (confined.error != 0) {
        log("serve: %s: %s", confined.step.c_str(), std::strerror(confined.error));
        return false;
    }
    log("serving %s on %s; capabilities kept: %s", policy_file_.c_str(), socket_->name().c_str(),
        confined.kept.c_str());
    if (!confined.missing.empty())
        log("the policy may need capabilities fdbroker was started without: %s (what needs them fails with "
            "EPERM)",
            confined.missing.c_str());
    return true;
}

Broker* Server::broker_for(const policy::Profile& profile, std::optional<FileOwner> owner) noexcept {
    auto same_owner = [&](const std::optional<FileOwner>& o) {
        return o.has_value() == owner.has_value() && (!o || (o->uid == owner->uid && o->gid == owner->gid));
    };
    for (Served& s : served_)
        if (!s.retired && s.profile == profile.name() && same_owner(s.owner)) return s.broker.get();
    try {
        served_.push_back({profile.name(), owner,
                           std::make_unique<Broker>(loop_, tenants_, policy_, profile, owner, audit_)});
        return served_.back().broker.get();
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

void Server::accept_client(unique_fd connection, Peer peer) noexcept {
    if (stopping_) return;
    const policy::Profile* profile = policy_->client_profile(peer.uid, peer.gid, peer.groups);
    if (profile == nullptr) {
        log("refused a client (pid %d, uid %u, gid %u): no profile's 'clients' names it",
            static_cast<int>(peer.pid), static_cast<unsigned>(peer.uid), static_cast<unsigned>(peer.gid));
        return;
    }
    static LogLimit refused("a client could not be served");
    std::shared_ptr<const ClientCredentials> client;
    try {
        // Kept with the connection: a reload judges the client again by what chose its profile now.
        client = std::make_shared<const ClientCredentials>(
            ClientCredentials{peer.pid, peer.uid, peer.gid, std::move(peer.groups)});
    } catch (const std::bad_alloc&) {
        log_limited(refused, "cannot serve a client (pid %d): out of memory", static_cast<int>(peer.pid));
        return;
    }
    Broker* broker = broker_for(*profile, client_owner(*client));
    if (broker == nullptr ||
        !broker->add_bootstrap(std::move(connection), {peer.uid, std::nullopt}, std::move(client))) {
        // Over its user's quota of channels (EMFILE, logged once per episode by Tenants) or out of
        // resources: the client sees its connection closed.
        if (errno != EMFILE)
            log_limited(refused, "cannot serve a client (pid %d): %s", static_cast<int>(peer.pid),
                        std::strerror(errno));
    }
}

void Server::reload() noexcept {
    if (stopping_) return;
    // steady_clock is CLOCK_MONOTONIC, the clock systemd expects here.
    char reloading[64];
    std::snprintf(
        reloading, sizeof reloading, "RELOADING=1\nMONOTONIC_USEC=%llu",
        static_cast<unsigned long long>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count()));
    systemd::notify(reloading);
    if (!load_policy()) {
        log("reload: %s has errors; still serving the policy loaded before", policy_file_.c_str());
        notify_status("READY=1");
        return;
    }
    reload_brokers();
    if (policy_->has_pools() && !held_.spawns_workers)
        log("reload: the new policy declares pools, but the broker gave up what starting them needs at "
            "start-up; "
            "restart fdbroker to run them");
    if (policy_->listens_below_1024() && !held_.binds_low_ports)
        log("reload: the new policy listens below port 1024, but the broker dropped CAP_NET_BIND_SERVICE at "
            "start-up; restart fdbroker for those rules to work");
    for (const auto& worker : pool_) {
        const policy::Profile* p = policy_->profile(worker->profile());
        if (!p || !p->pool().declared() || worker->instance() >= p->pool().instances) worker->stop(false);
    }
    if (held_.spawns_workers) start_pools();
    log("reloaded %s (%zu profiles)", policy_file_.c_str(), policy_->profiles().size());
    notify_status("READY=1");
}

// Gives each broker its profile from the new policy, then judges every client again by it; a broker
// whose profile is gone closes what is left (its pool workers' channels) and is retired.
void Server::reload_brokers() noexcept {
    for (Served& s : served_) {
        if (s.retired) continue;
        if (const policy::Profile* profile = policy_->profile(s.profile)) {
            s.broker->reload(policy_, *profile);
        } else {
            log("reload: profile '%s' is gone", s.profile.c_str());
            s.retired = true;
        }
    }
    rejudge_clients();
    for (Served& s : served_)
        if (s.retired) s.broker->close_all();
}

// A client keeps the profile that its credentials, as recorded when it connected, select under the
// policy in force: the one it had, another one (its channels move to that profile's broker), or none
// (its channels close). By index: broker_for() may add a broker, whose clients are then looked at too.
void Server::rejudge_clients() noexcept {
    auto select = [this](const ClientCredentials& c) {
        return policy_->client_profile(c.uid, c.gid, c.groups);
    };
    for (std::size_t i = 0; i < served_.size(); ++i) {
        Broker& from = *served_[i].broker;
        const std::string& was = from.profile().name();
        auto misjudged = [&](const ClientCredentials& c) {
            const policy::Profile* now = select(c);
            return now == nullptr || now->name() != was;
        };
        // Each client found leaves `from` (moved or closed), so this ends.
        while (const auto client = from.find_client(misjudged))
            rejudge(from, *client, select(*client));
    }
}

void Server::rejudge(Broker& from, const ClientCredentials& client, const policy::Profile* now) noexcept {
    const int pid = static_cast<int>(client.pid);
    const unsigned uid = static_cast<unsigned>(client.uid);
    if (now == nullptr) {
        log("reload: client pid %d (uid %u) no longer matches any profile: closing its %zu channels", pid,
            uid, from.channels_of(client));
        return from.close_client(client);
    }
    Broker* to = broker_for(*now, client_owner(client));
    if (to != nullptr && from.hand_over(client, *to)) {
        log("reload: client pid %d (uid %u) now gets profile '%s' (was '%s')", pid, uid, now->name().c_str(),
            from.profile().name().c_str());
        return;
    }
    // Serving it on under the profile it had is what the reload must not do.
    log("reload: client pid %d (uid %u) now gets profile '%s' (was '%s'), but is out of memory to move: "
        "closing its %zu channels",
        pid, uid, now->name().c_str(), from.profile().name().c_str(), from.channels_of(client));
    from.close_client(client);
}

// Starts every instance the policy declares that is not running yet.
void Server::start_pools() noexcept {
    for (const policy::Profile& profile : policy_->profiles()) {
        if (!profile.pool().declared()) continue;
        for (std::uint32_t i = 0; i < profile.pool().instances; ++i) {
            const bool present = std::any_of(pool_.begin(), pool_.end(), [&](const auto& w) {
                return w->profile() == profile.name() && w->instance() == i && !w->stopping();
            });
            if (present) continue;
            try {
                pool_.push_back(std::make_unique<PoolWorker>(*this, profile.name(), i));
            } catch (const std::bad_alloc&) {
                log("cannot start pool %s: out of memory", profile.name().c_str());
                return;
            }
            pool_.back()->start();
        }
    }
}

void Server::on_event(std::uint32_t) noexcept {
    signalfd_siginfo info{};
    while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        switch (info.ssi_signo) {
            case SIGCHLD:
                reap();
                break;
            case SIGHUP:
                reload();
                break;
            default:
                begin_stop();
                break;
        }
    }
}

// Reaps pool workers and any descendant orphaned to the broker (it is a child subreaper).
void Server::reap() noexcept {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        for (const auto& worker : pool_)
            if (worker->pid() == pid) worker->exited(status);
    }
}

// SIGTERM: no new clients, no new requests; what was sent is answered, pool workers are asked to stop.
void Server::begin_stop() noexcept {
    if (stopping_) return;
    stopping_ = true;
    stop_started_ = Clock::now();
    systemd::notify("STOPPING=1");
    log("stopping: answering the requests in flight");
    listener_->stop();
    socket_->close();
    for (Served& s : served_)
        s.broker->drain();
    for (const auto& worker : pool_)
        worker->stop(false);
}

void Server::end_turn() noexcept {
    for (Served& s : served_)
        s.broker->end_turn();
    // A request stuck in a file system may still be using a retired broker: the loop destroys it once
    // nothing can be.
    for (Served& s : served_)
        if (s.retired) loop_.retire(std::move(s.broker));
    std::erase_if(served_, [](const Served& s) { return s.retired; });
    std::erase_if(pool_, [](const auto& w) { return w->stopping() && !w->running(); });
    // The counts in `systemctl status`, refreshed at most once a second: counting walks every session.
    if (!stopping_ && Clock::now() - status_sent_ >= std::chrono::seconds(1)) notify_status(nullptr);
    if (!stopping_) return;
    const auto elapsed = Clock::now() - stop_started_;
    if (elapsed >= kStopGrace && !killed_pool_) {
        killed_pool_ = true;
        for (const auto& worker : pool_)
            worker->stop(true);
    }
}

bool Server::finished() const noexcept {
    if (!stopping_) return false;
    if (Clock::now() - stop_started_ >= kDrainTimeout) {
        log("stopping: gave up waiting after %lld s", static_cast<long long>(kDrainTimeout.count()));
        return true;
    }
    const bool brokers_done =
        std::all_of(served_.begin(), served_.end(), [](const Served& s) { return s.broker->drained(); });
    return brokers_done && pool_.empty();
}

int Server::turn_timeout() const noexcept {
    return stopping_ ? 100 : -1;  // while stopping, the deadlines are checked a few times a second
}

// Sends STATUS= with the current counts, after `state` (READY=1) when given; a status that did not
// change is not sent again.
void Server::notify_status(const char* state) noexcept {
    std::size_t channels = 0;
    for (const Served& s : served_)
        channels += s.broker->channels();
    const auto workers =
        std::count_if(pool_.begin(), pool_.end(), [](const auto& w) { return w->running(); });
    char status[160];
    std::snprintf(status, sizeof status, "STATUS=%zu profiles, %zu worker channels, %zu pool workers",
                  policy_->profiles().size(), channels, static_cast<std::size_t>(workers));
    status_sent_ = Clock::now();
    if (state == nullptr && status_ == status) return;
    status_ = status;
    const std::string message = state ? std::string(state) + "\n" + status : std::string(status);
    systemd::notify(message.c_str());
}

int Server::run(const ServeOptions& options) {
    if (!load_policy() || !open_audit(options.audit, audit_)) return kSetupFailed;
    if (options.verbose) audit_.watch(&denials_.emplace(/*verbose=*/true));
    if (policy_->has_pools() && !landlock_for("pool workers")) return kSetupFailed;
    constexpr int kHandled[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};
    sigset_t handled;
    if (!take_signals(kHandled, handled)) return kSetupFailed;
    signals_.reset(::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!loop_.valid() || !signals_ || !loop_.add(signals_.get(), EPOLLIN, this)) {
        log("serve: setting up the event loop: %s", std::strerror(errno));
        return kSetupFailed;
    }
    if (!open_socket(options) || !listener_->start()) return kSetupFailed;
    if (policy_->has_pools()) {
        std::string note;
        containment_ = sandbox::Containment::create(note);
        if (!note.empty()) log("pools: %s", note.c_str());
    }
    if (!confine_self()) return kSetupFailed;
    start_pools();
    notify_status("READY=1");

    loop_.start_watchdog();
    EventLoop::Hooks hooks;
    hooks.timeout = [this] { return turn_timeout(); };
    hooks.end_of_turn = [this] {
        // Pools are stopped and systemd told from here: as the broker, whatever the turn's last
        // transparent call left the thread holding (worker_identity.hpp).
        thread_identity::as_broker();
        end_turn();
        return finished();
    };
    // Stopped while a request is still stuck in a file system: exit without waiting for it.
    hooks.abandon = [this] {
        containment_->end_all();
        for (Served& s : served_)
            s.broker->end_turn();
        flush_log_limits(/*force=*/true);
        ::_exit(0);
    };
    if (!loop_.run(std::move(hooks))) {
        log("event loop: %s", std::strerror(errno));
        return kSetupFailed;
    }
    for (Served& s : served_)
        s.broker->end_turn();  // the last audit lines
    // Retired brokers report to tenants_ and audit_, which go before the loop does.
    loop_.free_all_retired();
    if (!pool_.empty()) containment_->end_all();
    flush_log_limits(/*force=*/true);
    return 0;
}

}  // namespace

int serve(const ServeOptions& options) {
    Server server(options.policy_file);
    return server.run(options);
}

}  // namespace fdbroker::broker
