// Transparent mode (`fdbroker run --transparent`): an unmodified worker's path and socket system calls
// arrive as seccomp user notifications. For each one the broker copies the arguments out of the worker
// once (/proc/TID/mem), makes a relative path absolute from the worker's cwd or dirfd, checks that the
// notification is still pending (SECCOMP_IOCTL_NOTIF_ID_VALID: the thread id still names the caller),
// then decides and performs the call with the same FileOps and SocketOps as library mode, on its own
// copy. The answer is a descriptor installed atomically with the reply (SECCOMP_IOCTL_NOTIF_ADDFD with
// SECCOMP_ADDFD_FLAG_SEND), a result written into the worker's buffer (stat, readlink), or an errno.
// It never answers SECCOMP_USER_NOTIF_FLAG_CONTINUE. docs/security-model.md, "Transparent mode".
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/audit.hpp"
#include "broker/event_loop.hpp"
#include "broker/file_ops.hpp"
#include "broker/socket_ops.hpp"
#include "policy/policy.hpp"

struct seccomp_notif;

namespace fdbroker::broker {

class NotifyCall;

class Transparent {
  public:
    Transparent(EventLoop& loop, const policy::Profile& profile, std::optional<Owner> owner, Audit& audit,
                uid_t worker_uid);
    ~Transparent();
    Transparent(const Transparent&) = delete;
    Transparent& operator=(const Transparent&) = delete;

    // Whether a system call is one transparent mode answers (performed, or refused quietly with
    // EACCES like the filter's own refusals: datagram sockets, sends that name an address).
    [[nodiscard]] static bool handles(int syscall_nr) noexcept;
    // Answers the notification on the listener `notify` (unless its caller is gone). A connect on a
    // blocking socket that cannot finish at once is answered later, from the event loop.
    void answer(int notify, const seccomp_notif& req) noexcept;
    // Destroys the connects that finished: only between loop turns, since the turn that finished one
    // may still hold an event for it (its timer firing with its socket).
    void end_turn() noexcept;

  private:
    class Connecting;
    void answer_call(NotifyCall& call) noexcept;
    void record(const AuditRecord& audit) noexcept;
    bool wait_for_connect(int notify, const seccomp_notif& req, unique_fd& sock, int flags,
                          std::string_view address, const SocketVerdict& verdict) noexcept;

    EventLoop& loop_;
    const policy::Profile& profile_;
    FileOps files_;
    SocketOps sockets_;
    Audit& audit_;
    uid_t uid_;
    std::vector<std::unique_ptr<Connecting>> connecting_;
};

}  // namespace fdbroker::broker
