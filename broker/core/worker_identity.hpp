// The worker's identity, taken by a broker thread for what the kernel should judge as the worker. A
// root broker performs as the worker changes to a file's metadata (mode, owner, times, size, links,
// extended attributes) always, and in transparent mode every file operation, so that the worker's user
// gets exactly the kernel's own answers and never more than it could do natively. Unix connects and
// listens take it too, so that peers see the worker's credentials.
//
// Two forms, because a credential change costs about as much as the open it guards:
// - AsWorker, for one operation: the effective ids, and so no capability at all.
// - files_as(), transparent mode's file operations (metadata changes outside /proc included): the
//   file-system ids only, and of the capabilities only CAP_SYS_PTRACE, which the broker needs to read
//   the next caller's memory and which no file operation consults outside /proc (where AsWorker is
//   used, and a walk that reaches /proc by a symlink is made again without it: without_ptrace()). The
//   thread keeps this identity after the operation, so a worker's next call costs no credential change;
//   every event handler that is not a transparent listener, and the loop's own work, first takes the
//   broker's identity back (as_broker()).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace fdbroker::broker {

// Who owns what the broker creates for a worker, when the broker runs as root.
struct FileOwner {
    uid_t uid;
    gid_t gid;

    friend bool operator==(const FileOwner&, const FileOwner&) = default;
};

// Switches the effective uid and gid of the calling thread (and so its file-system ids) to the
// worker's, with no supplementary groups (spawned workers have none), and back when it goes. The raw
// system calls change only this thread, so other threads of the broker serving other workers keep
// their own identity. Leaving uid 0 empties the thread's effective capabilities, CAP_SYS_PTRACE and
// CAP_DAC_OVERRIDE included (capabilities(7), "Effect of user ID changes on capabilities"); coming back
// restores them from the permitted set. Nothing happens when there is no owner (the worker is the
// broker's own user) or the broker is not root.
class AsWorker {
  public:
    explicit AsWorker(const std::optional<FileOwner>& owner) noexcept;
    ~AsWorker();
    AsWorker(const AsWorker&) = delete;
    AsWorker& operator=(const AsWorker&) = delete;

    // 0, or why the switch failed: the operation must then not be done with the broker's identity.
    [[nodiscard]] int error() const noexcept { return error_; }

  private:
    enum class Stage : std::uint8_t { none, groups, gid, uid };

    int switch_to(const FileOwner& owner) noexcept;
    void restore() noexcept;

    Stage stage_ = Stage::none;
    int error_ = 0;
};

namespace thread_identity {

// Gives the calling thread `owner`'s file-system ids and no capability but CAP_SYS_PTRACE, and leaves
// it so (no system call when it has them already). 0, or why it could not: the operation must then
// not be done at all. Only for a root broker.
int files_as(const FileOwner& owner) noexcept;

// After files_as(): drops CAP_SYS_PTRACE too, for the rest of an operation that walked into /proc.
// True if it was held (and so what was done with it must be done again).
bool without_ptrace() noexcept;

// Ends what without_ptrace() began: CAP_SYS_PTRACE back, when the operation is over, since the thread
// reads the next caller's memory with it (no system call unless it was dropped).
void ptrace_back() noexcept;

// The broker's own identity back, full capabilities (no system call when the thread has it).
void as_broker() noexcept;

// Whether the calling thread holds a worker's identity now (files_as or AsWorker): what it creates is
// the worker's already, with the group the kernel chose.
[[nodiscard]] bool acting_as_worker() noexcept;

}  // namespace thread_identity

}  // namespace fdbroker::broker
