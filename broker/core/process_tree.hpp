// Who may talk to a run-mode broker: the worker and its descendants, nobody else.
#pragma once

#include <sys/types.h>

#include <span>
#include <string_view>

namespace fdbroker::broker {

class ProcessTree {
  public:
    // The broker must be the worker's parent and a child subreaper, so that descendants orphaned
    // by their parents are re-parented to the broker and still count as part of the tree.
    ProcessTree(pid_t worker, pid_t broker) noexcept : worker_(worker), broker_(broker) {}

    enum class Membership { member, outsider, unknown };
    // Whether pid is the worker or descends from it. Reads the parent chain from /proc; the caller
    // holds a pidfd of pid and checks it is still alive afterwards, so a recycled pid cannot pass.
    // `unknown` when the broker itself could not look (out of descriptors or memory): not the
    // sender's fault, and not to be mistaken for an outsider.
    [[nodiscard]] Membership membership(pid_t pid) const noexcept;
    [[nodiscard]] bool contains(pid_t pid) const noexcept { return membership(pid) == Membership::member; }

  private:
    pid_t worker_;
    pid_t broker_;
};

// Reads /proc/PID/FILE into buf (one read: these files are small); empty on failure.
[[nodiscard]] std::string_view read_proc(pid_t pid, const char* file, std::span<char> buf) noexcept;

// The parent of pid from /proc/PID/stat, or -1 with errno set.
[[nodiscard]] pid_t parent_pid(pid_t pid) noexcept;

// Whether the process a pidfd refers to has not been reaped (a zombie still holds its pid).
[[nodiscard]] bool pidfd_alive(int pidfd) noexcept;

// A pidfd for thread tid itself (PIDFD_THREAD, Linux 6.9), readable once that thread has exited; -1
// with errno set where the kernel has no thread pidfds (EINVAL) or tid is gone.
[[nodiscard]] int open_thread_pidfd(pid_t tid) noexcept;

}  // namespace fdbroker::broker
