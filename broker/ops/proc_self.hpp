// The requesting process's own /proc entries. In a request, /proc/self and /proc/thread-self name the
// caller, not the broker that resolves the path; and a process may read its own /proc/<pid> entries
// (status, maps, fd/, mountinfo...) natively, so it may through the broker without any rule. Its fd/N
// links are judged on the file they name, like any symlink (walk.hpp); what has no name there (a pipe,
// a socket, a deleted or O_TMPFILE file) is reached through the link only as far as the caller holds it.
// A walk through an fd/N link to a directory (/proc/self/fd/N/name, the kernel's way of naming a file
// relative to a held directory) goes on from the directory's path, judged there. /dev/fd and
// /dev/std{in,out,err}, the links into /proc/self/fd every system has, are followed as the kernel would.
#pragma once

#include <sys/types.h>

#include <string_view>

#include "policy/path_buffer.hpp"

namespace fdbroker::broker {

class ProcSelf {
  public:
    ProcSelf() = default;  // no caller: /proc/self names nothing
    explicit ProcSelf(pid_t tid) noexcept : tid_(tid) {}

    // /proc/self[/...] as /proc/<pid>[/...], /proc/thread-self[/...] as /proc/<pid>/task/<tid>[/...],
    // and the caller's /proc/<pid>/fd/N/rest as <the directory fd N names>/rest: true when `out` holds
    // the rewritten path, false when `path` names none of them (or names them for no known caller, or
    // through a descriptor that names no directory path, or does not fit, when out is left empty:
    // nothing there may be reached).
    [[nodiscard]] bool rewrite(std::string_view path, policy::PathBuffer& out) const noexcept;
    // Whether `path` (normal, absolute) lies in the caller's own /proc/<pid>.
    [[nodiscard]] bool owns(std::string_view path) const noexcept;
    // Whether `dir` is one of the caller's own descriptor directories (/proc/<pid>/fd, .../task/<t>/fd).
    [[nodiscard]] bool is_fd_directory(std::string_view dir) const noexcept;
    // The text of the symlink `path` when it is one of /dev's links into /proc/self/fd (/dev/fd,
    // /dev/stdin, /dev/stdout, /dev/stderr) as this system has it, which rewrite() follows; else empty.
    [[nodiscard]] static std::string_view alias_text(std::string_view path) noexcept;

  private:
    [[nodiscard]] pid_t tgid() const noexcept;  // read once from /proc/<tid>/status
    [[nodiscard]] bool rewrite_self(std::string_view path, policy::PathBuffer& out) const noexcept;
    // One step through an fd/N link: 1 when `out` holds <directory>/rest, 0 when `path` does not walk
    // through one of the caller's fd/N links, -1 when it does but the link names no directory path.
    [[nodiscard]] int through_fd(std::string_view path, policy::PathBuffer& out) const noexcept;

    pid_t tid_ = 0;
    mutable pid_t tgid_ = 0;
};

// Whether `path` (normal, absolute) walks through a /proc magic link (a process's fd/N, cwd, root, exe,
// ns/X or map_files/X), counting its last component only when `follows_last`: what openat2's
// RESOLVE_NO_MAGICLINKS refuses with ELOOP.
[[nodiscard]] bool through_magic_link(std::string_view path, bool follows_last) noexcept;

}  // namespace fdbroker::broker
