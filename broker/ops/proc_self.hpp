// The requesting process's own /proc entries. In a request, /proc/self and /proc/thread-self name the
// caller, not the broker that resolves the path; and a process may read its own /proc/<pid> entries
// (status, maps, fd/, mountinfo...) natively, so it may through the broker without any rule. Its fd/N
// links are judged on the file they name, like any symlink (walk.hpp); what has no name there (a pipe,
// a socket, a deleted or O_TMPFILE file) is reached through the link only as far as the caller holds it.
#pragma once

#include <sys/types.h>

#include <string_view>

#include "policy/path_buffer.hpp"

namespace fdbroker::broker {

class ProcSelf {
  public:
    ProcSelf() = default;  // no caller: /proc/self names nothing
    explicit ProcSelf(pid_t tid) noexcept : tid_(tid) {}

    // /proc/self[/...] as /proc/<pid>[/...], /proc/thread-self[/...] as /proc/<pid>/task/<tid>[/...]:
    // true when `out` holds the rewritten path, false when `path` names neither (or names them for no
    // known caller, or does not fit, when out is left empty: nothing there may be reached).
    [[nodiscard]] bool rewrite(std::string_view path, policy::PathBuffer& out) const noexcept;
    // Whether `path` (normal, absolute) lies in the caller's own /proc/<pid>.
    [[nodiscard]] bool owns(std::string_view path) const noexcept;
    // Whether `dir` is one of the caller's own descriptor directories (/proc/<pid>/fd, .../task/<t>/fd).
    [[nodiscard]] bool is_fd_directory(std::string_view dir) const noexcept;

  private:
    [[nodiscard]] pid_t tgid() const noexcept;  // read once from /proc/<tid>/status

    pid_t tid_ = 0;
    mutable pid_t tgid_ = 0;
};

}  // namespace fdbroker::broker
