// Where a broker's workers and everything they start live, so that nothing a worker started outlives
// it or the broker: a process left behind could, for one, take the user's terminal and read what they
// type next.
//
// With cgroup v2 (mounted, and the broker allowed to create cgroups beneath its own), every worker is
// spawned into a cgroup of its own, beneath one cgroup for the whole broker; ending a worker or the
// broker writes cgroup.kill, which the kernel applies to every process in the cgroup at once, however
// fast they fork. A *keeper* process, started first, holds the broker's cgroup.kill and a pipe from
// the broker: when the broker ends in any way — even killed with SIGKILL — the pipe closes, and the
// keeper kills whatever is left and removes the cgroups. The keeper runs as the broker's user with no
// capabilities, in a session of its own, under a filter allowing only what that takes; it shares the
// broker's memory (start_keeper says why) and allocates nothing.
//
// Without cgroups, the broker is the tree's subreaper: when its worker ends it kills every descendant
// it can find in /proc (orphans are re-parented to it) until none is left. What that cannot cover — a
// broker killed with SIGKILL — the worker's parent-death signal covers for the worker itself only.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::sandbox {

class Containment {
  public:
    // Sets up the broker's cgroup and keeper, or explains in `note` why the process tree alone must do.
    // Call while the broker is single-threaded (the keeper is cloned from it).
    [[nodiscard]] static std::unique_ptr<Containment> create(std::string& note);
    // The process tree alone (what create() falls back to).
    Containment() = default;
    ~Containment();
    Containment(const Containment&) = delete;
    Containment& operator=(const Containment&) = delete;

    [[nodiscard]] bool uses_cgroups() const noexcept { return static_cast<bool>(cgroup_); }
    [[nodiscard]] pid_t keeper() const noexcept { return keeper_; }

    // A new cgroup for one worker, named `name` (unique among this broker's), to spawn it into
    // (clone3's CLONE_INTO_CGROUP); empty without cgroups, or if it cannot be made (errno set).
    [[nodiscard]] unique_fd cgroup_for(std::string_view name) noexcept;
    // Kills every process of the worker cgroup `name` and removes it when it is empty. Does not wait.
    void end(std::string_view name) noexcept;
    // Kills every process any worker started and reaps what it can: cgroup.kill of the broker's
    // cgroup, or, without cgroups, every descendant of the broker but the keeper, until none is left.
    void end_all() noexcept;

  private:
    bool make_cgroup(std::string& note) noexcept;
    bool start_keeper(std::string& note) noexcept;
    pid_t clone_keeper(void* start) noexcept;
    void release_keeper_stack() noexcept;

    static constexpr std::size_t kKeeperStack = std::size_t{128} * 1024;
    static constexpr std::size_t kGuard = 4096;

    unique_fd base_;    // the cgroup the broker was started in
    std::string name_;  // the broker's cgroup, beneath base_
    unique_fd cgroup_;  // ... open
    unique_fd kill_;    // ... its cgroup.kill
    unique_fd keeper_pipe_;
    pid_t keeper_ = -1;
    void* keeper_stack_ = nullptr;  // the keeper shares the broker's memory and runs on this
};

// Kills every descendant of the calling process except `spare` (and its own descendants), until none
// is left or `rounds` scans of /proc found some each time; reaps the ones that are its children.
// Returns how many were killed.
int kill_descendants(pid_t spare, int rounds = 200) noexcept;

// The keeper's filter as libseccomp compiles it now (what the build compiles ahead of time,
// prebuilt_filters.hpp). 0 or an errno value.
[[nodiscard]] int compile_keeper_filter(std::vector<sock_filter>& program) noexcept;

}  // namespace fdbroker::sandbox
