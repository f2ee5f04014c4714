// One channel to the broker. A bootstrap channel (FDBROKER_FD, shared by a whole process tree) only
// carries attach requests; each attach creates a private channel owned by exactly one process, which
// carries that process's file requests. Anything unexpected on either ends the channel.
//
// A private channel is read only while its owner's user is within its quota (tenants.hpp) and while
// fewer than its share of the user's `descriptors` quota (at most kMaxUnreceived) sent on it are still
// waiting in the socket: a worker that sends requests and never reads the replies stops being read,
// rather than making the broker queue descriptors that count against the kernel's limit for every
// broker of the same user.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "broker/core/event_loop.hpp"
#include "broker/core/process_tree.hpp"
#include "broker/core/tenants.hpp"
#include "fdbroker/unique_fd.hpp"
#include "proto/channel.hpp"
#include "proto/wire.hpp"

namespace fdbroker::broker {

class Broker;

// Who may attach through one bootstrap channel: processes of one uid and, for a worker the broker
// spawned, only that worker and its descendants.
struct Admission {
    uid_t uid = 0;
    std::optional<ProcessTree> tree;  // none: any process of that uid (a serve-mode client)
};

// A serve-mode client as the kernel recorded it when it connected (listener.hpp): what chose its
// profile, and what chooses it again when the policy is reloaded. Shared by the client's bootstrap
// channel and every private channel attached through it, so that the channels stay one client's
// whichever of them closes first.
struct ClientCredentials {
    pid_t pid = 0;  // the process that connected
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups
};

class Session final : public EventHandler, public Waiter {
  public:
    enum class Kind { bootstrap, owned };
    // Descriptors one channel may have sent and not yet had received.
    static constexpr std::uint32_t kMaxUnreceived = 64;

    // A bootstrap channel: the processes `admission` names may send attach requests on it. `client`
    // is set for a serve-mode client's connection.
    Session(Broker& broker, unique_fd channel, Admission admission,
            std::shared_ptr<const ClientCredentials> client = {});
    // A private channel owned by one process, identified by its pidfd; `client` is the one whose
    // bootstrap channel it was attached through (none for a worker the broker spawned).
    Session(Broker& broker, unique_fd channel, proto::Credentials owner, unique_fd owner_pidfd,
            std::shared_ptr<const ClientCredentials> client);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    bool start() noexcept;  // registers with the event loop
    void on_event(std::uint32_t events) noexcept override;
    // Ends the channel: unregistered now, destroyed by the broker after the current loop turn.
    void close() noexcept;
    // No more requests may be sent; those already queued are still read and answered, then the
    // channel closes at its end of file.
    void drain() noexcept;
    [[nodiscard]] bool closed() const noexcept { return !channel_; }
    // The process a private channel belongs to (pid 0 for a bootstrap channel).
    [[nodiscard]] pid_t owner_pid() const noexcept { return owner_.pid; }
    [[nodiscard]] int fd() const noexcept { return channel_.get(); }
    // The uid a bootstrap channel admits, or a private channel's owner's.
    [[nodiscard]] uid_t uid() const noexcept {
        return kind_ == Kind::bootstrap ? admission_.uid : owner_.uid;
    }
    [[nodiscard]] Kind kind() const noexcept { return kind_; }
    [[nodiscard]] const Admission& admission() const noexcept { return admission_; }
    [[nodiscard]] const std::shared_ptr<const ClientCredentials>& client() const noexcept { return client_; }
    // The broker whose profile judges this channel's requests.
    [[nodiscard]] Broker& broker() const noexcept { return *broker_; }
    // From now on `broker` serves this channel (a reload gave its client another profile). Only for
    // Broker::hand_over, which moves the session itself and what the broker counts for it.
    void move_to(Broker& broker) noexcept { broker_ = &broker; }

    // Sends a reply, queueing it if the worker is not reading (and then reading nothing more from it
    // until the queue drains, so a worker cannot make the broker buffer without bound).
    void reply(const wire::Reply& reply, int fd = -1) noexcept;
    // The same with several descriptors in the one message (an open_many reply).
    void reply(const wire::Reply& reply, std::span<const int> fds) noexcept;
    // How many more descriptors this channel may send before its owner has received those it was sent
    // (its share of the user's `descriptors` quota): what an open_many may hand out at once.
    [[nodiscard]] std::uint32_t descriptor_room() noexcept;

    bool resume() noexcept override;  // Waiter: over quota, or a send to retry

  private:
    // Watches the owner's pidfd: when the owner exits its channel goes with it.
    struct OwnerWatch final : EventHandler {
        Session* session = nullptr;
        void on_event(std::uint32_t) noexcept override { session->close(); }
    };
    struct Pending {
        std::vector<std::byte> frame;
        std::vector<unique_fd> fds;
    };

    void read_requests() noexcept;
    bool read_one() noexcept;
    bool dispatch(proto::Received& msg, std::span<const std::byte> buffer) noexcept;
    [[nodiscard]] bool admitted() noexcept;
    [[nodiscard]] bool within_share() noexcept;
    void pause() noexcept;
    void flush_pending() noexcept;
    // A frame is a header and a payload (perhaps empty), sent together as one message.
    [[nodiscard]] int send_now(std::span<const std::byte> head, std::span<const std::byte> tail,
                               std::span<const int> fds) noexcept;
    void queue(std::span<const std::byte> head, std::span<const std::byte> tail,
               std::span<const int> fds) noexcept;
    void watch(std::uint32_t events) noexcept;
    void refuse(const char* why, const proto::Credentials* who) noexcept;

    Broker* broker_;
    Kind kind_;
    Admission admission_;
    std::shared_ptr<const ClientCredentials> client_;
    unique_fd channel_;
    proto::Credentials owner_{};
    unique_fd owner_pidfd_;
    OwnerWatch watch_;
    std::deque<Pending> pending_;
    std::uint32_t unreceived_ = 0;  // descriptors sent since the socket was last seen empty
    bool paused_ = false;           // not read: over quota, or a reply could not be sent
    bool retrying_send_ = false;    // the first queued reply failed for want of kernel resources
};

}  // namespace fdbroker::broker
