// Transparent mode (`fdbroker run --transparent`): an unmodified worker's path and socket system calls
// arrive as seccomp user notifications, and each goes the way every request goes: decoded from the call
// and the caller's memory (decode_notification.hpp, which copies the arguments out of the worker once
// and makes relative paths absolute from its cwd or dirfd), confirmed still pending
// (SECCOMP_IOCTL_NOTIF_ID_VALID: the thread id still names the caller), performed on the broker's own
// copy with the same Performer as library mode (perform.hpp), and answered (notify_call.hpp).
// docs/security-model.md, "Transparent mode".
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <vector>

#include "broker/core/audit.hpp"
#include "broker/core/event_loop.hpp"
#include "broker/notify/address_spaces.hpp"
#include "broker/ops/perform.hpp"
#include "policy/policy.hpp"

struct seccomp_notif;

namespace fdbroker::broker {

class NotifyCall;
struct Decoded;

class Transparent {
  public:
    Transparent(EventLoop& loop, const policy::Profile& profile, std::optional<FileOwner> owner, Audit& audit,
                uid_t worker_uid);
    ~Transparent();
    Transparent(const Transparent&) = delete;
    Transparent& operator=(const Transparent&) = delete;

    // Answers the notification on the listener `notify` (unless its caller is gone). A connect on a
    // blocking socket that cannot finish at once is answered later, from the event loop.
    void answer(int notify, const seccomp_notif& req) noexcept;
    // Complain mode (Performer::complain).
    void complain(const policy::Profile& permissive, Recorder& recorder) noexcept {
        performer_.complain(permissive, recorder);
    }

  private:
    class Connecting;
    void answer_call(NotifyCall& call) noexcept;
    static void reply(NotifyCall& call, const Decoded& decoded, const Outcome& out) noexcept;
    void record(const AuditRecord& audit) noexcept;
    void wait_for_connect(NotifyCall& call, const Decoded& decoded, Outcome& out) noexcept;
    void connect_ended(Connecting& connecting) noexcept;

    EventLoop& loop_;
    Performer performer_;
    Audit& audit_;
    uid_t uid_;
    AddressSpaces address_spaces_;  // callers' memory descriptors, kept between their calls
    std::vector<std::unique_ptr<Connecting>> connecting_;
};

}  // namespace fdbroker::broker
