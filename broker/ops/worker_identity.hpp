// The worker's identity, taken by the calling thread for the length of one operation. A root broker
// performs as the worker what the kernel should judge as the worker: changes to a file's metadata
// (mode, owner, times, size, links, extended attributes) always, and in transparent mode every file
// operation, so that the worker's user gets exactly the kernel's own answers and never more than it
// could do natively. Unix connects and listens take it too, so that peers see the worker's credentials.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace fdbroker::broker {

// Who owns what the broker creates for a worker, when the broker runs as root.
struct FileOwner {
    uid_t uid;
    gid_t gid;
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
    uid_t uid_ = 0;
    gid_t gid_ = 0;
};

}  // namespace fdbroker::broker
