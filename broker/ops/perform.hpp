// The middle of every request, in both modes: decide an Operation with the profile, do it, and fill in
// the audit record. Decoding comes before (decode_wire.hpp, decode_notification.hpp) and replying after
// (Broker::handle: a frame with SCM_RIGHTS; Transparent: SECCOMP_IOCTL_NOTIF_ADDFD or an errno), and
// only those differ between the modes. perform() may block in a file system, so callers run it in a
// blocking section (event_loop.hpp); it touches nothing shared.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "broker/core/audit.hpp"
#include "broker/core/recorder.hpp"
#include "broker/ops/file_ops.hpp"
#include "broker/ops/operation.hpp"
#include "broker/ops/socket_ops.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

// Who asked: the process (or thread) and its user, for the audit line.
struct Caller {
    pid_t pid = 0;
    uid_t uid = 0;
};

// What an operation came to. Filled in place: the audit record points into it and the operation.
struct Outcome {
    // What the reply carries besides the errno.
    enum class Carries { nothing, fd, stat, statx, link, data };

    int error = 0;  // what the caller sees; 0 = success
    Carries carries = Carries::nothing;
    std::int64_t value = 0;  // readlink, xattrs: the length
    unique_fd fd;            // Carries::fd; for a pending connect, the socket still connecting
    struct ::stat st {};
    struct ::statx stx {};
    char link[PATH_MAX];
    std::vector<char> data;  // Carries::data: an xattr's value or the list of names, `value` bytes
    // A connect still in progress: the mode waits for `fd` (pending_connect.hpp) and writes the audit
    // line when it ends; `restore_flags` >= 0 are the caller's socket flags, to put back then.
    bool pending = false;
    bool maybe_device = false;  // an open whose descriptor may be a device (OpResult::maybe_device)
    int restore_flags = -1;
    SocketVerdict socket;  // sockets: the verdict (its rule and the address reached)
    // The decision, for the audit stream; `audited` is false for what asks the policy nothing.
    AuditRecord audit;
    bool audited = false;
};

class Performer {
  public:
    // Whose identity the file operations run with (worker_identity.hpp), and how descriptors reach the
    // worker. Changes to metadata always run as the worker, so that the kernel says who may change
    // what. In library and serve mode the broker opens, creates and looks up with its own privileges:
    // handing a worker what its user could not open itself is the point of asking a broker. In
    // transparent mode everything runs as the worker: an unmodified program gets the kernel's own
    // answers, and the policy only narrows them; and its descriptors are installed with
    // SECCOMP_IOCTL_NOTIF_ADDFD, which cannot install an O_PATH descriptor (open() says what it gets).
    enum class Mode : std::uint8_t { library, transparent };

    Performer(const policy::Profile& profile, std::optional<FileOwner> owner, Mode mode = Mode::library)
        : profile_(&profile), owner_(owner), mode_(mode), files_(profile, owner), sockets_(profile, owner) {}

    void perform(const Caller& caller, op::Operation& operation, Outcome& out) const noexcept;

    // Complain mode (`fdbroker learn`): a request this performer's profile refuses is handed to
    // `recorder`, then performed again under `permissive` with the worker's whole identity (AsWorker),
    // so that the program gets what its user could do natively and never more. Both must outlive the
    // performer.
    void complain(const policy::Profile& permissive, Recorder& recorder) noexcept {
        permissive_ = &permissive;
        recorder_ = &recorder;
    }

    [[nodiscard]] const policy::Profile& profile() const noexcept { return *profile_; }

    // The audit record of a socket call judged by `verdict`, naming the address it reached.
    [[nodiscard]] static AuditRecord socket_record(const Caller& caller, std::string_view profile,
                                                   std::string_view op, std::string_view address,
                                                   const SocketVerdict& verdict) noexcept;

  private:
    void visit_operation(op::Operation& operation, Outcome& out) const;
    void as_absent(const op::Operation& operation, Outcome& out) const noexcept;
    void perform_refused(const Caller& caller, op::Operation& operation, Outcome& out) const noexcept;
    void open(op::Open& o, Outcome& out) const noexcept;
    void readable_instead(OpResult& result) const noexcept;
    void stat(op::Stat& o, Outcome& out) const noexcept;
    void statx(op::Statx& o, Outcome& out) const noexcept;
    static void stat_held(op::StatHeld& o, Outcome& out) noexcept;
    void access(op::Access& o, Outcome& out) const noexcept;
    void readlink(op::Readlink& o, Outcome& out) const noexcept;
    void mkdir(op::Mkdir& o, Outcome& out) const noexcept;
    void unlink(op::Unlink& o, Outcome& out) const noexcept;
    void rmdir(op::Rmdir& o, Outcome& out) const noexcept;
    void rename(op::Rename& o, Outcome& out) const noexcept;
    void symlink(op::Symlink& o, Outcome& out) const noexcept;
    void chmod(op::Chmod& o, Outcome& out) const noexcept;
    void chown(op::Chown& o, Outcome& out) const noexcept;
    void truncate(op::Truncate& o, Outcome& out) const noexcept;
    void utimens(op::Utimens& o, Outcome& out) const noexcept;
    void link(op::Link& o, Outcome& out) const noexcept;
    void mknod(op::Mknod& o, Outcome& out) const noexcept;
    void xattr(op::Xattr& o, Outcome& out) const noexcept;
    void lookup(op::Lookup& o, Outcome& out) const noexcept;
    // Whether `operation` runs with the worker's identity (Mode).
    // Who performs an operation: the broker; the worker's file-system ids, kept for its next call
    // (thread_identity::files_as); or the worker's whole identity for this operation (AsWorker).
    enum class Identity : std::uint8_t { broker, files, worker };
    [[nodiscard]] Identity identity_for(const op::Operation& operation) const noexcept;
    void connect(op::Connect& o, Outcome& out) const noexcept;
    void bind(op::Bind& o, Outcome& out) const noexcept;
    void listen(op::Listen& o, Outcome& out) const noexcept;

    // Records a file decision: `result` gives the errno, the fd and the deciding rule.
    static void decided(std::string_view op, std::string_view path, OpResult& result, Outcome& out) noexcept;
    // Records a socket decision on `address` (or the address it reached).
    static void decided_socket(std::string_view op, std::string_view address, Outcome& out) noexcept;

    const policy::Profile* profile_;
    std::optional<FileOwner> owner_;
    Mode mode_;
    FileOps files_;
    SocketOps sockets_;
    const policy::Profile* permissive_ = nullptr;  // complain mode only
    Recorder* recorder_ = nullptr;
};

}  // namespace fdbroker::broker
