// Transparent mode's decode step: a system call a worker made (its number and arguments, from a seccomp
// notification) and the caller's memory, as the Operation that perform.hpp performs.
//
// The table of brokered system calls lives here, once: each entry names a call and its decoder, and the
// worker's seccomp filter sends exactly these calls to the broker (brokered_call_names()), so adding a
// call is one line in the table plus its decoder. Decoding reads the caller only through CallerView,
// so it is tested without a notification, a second process or root (decode_notification_test.cpp).
#pragma once

#include <linux/openat2.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "broker/ops/operation.hpp"
#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

// The caller of a system call, as decoding sees it. Every read may fail as the kernel's own copy from
// user memory would (EFAULT); the caller is confirmed afterwards (SECCOMP_IOCTL_NOTIF_ID_VALID).
class CallerView {
  public:
    // A NUL-terminated string: 0, EFAULT or ENAMETOOLONG.
    virtual int read_string(std::uint64_t addr, op::PathBuffer& out) noexcept = 0;
    virtual int read_bytes(std::uint64_t addr, void* buf, std::size_t size) noexcept = 0;
    // Where a relative path starts, as an absolute path: the cwd for AT_FDCWD, else the directory that
    // descriptor `dirfd` refers to. 0, ENOENT (no cwd), EBADF, ENOTDIR (a socket, a pipe), or
    // ENAMETOOLONG for a directory whose path is PATH_MAX long or more, which the kernel cannot name.
    virtual int directory(int dirfd, op::PathBuffer& out) noexcept = 0;
    // A path naming the open file behind the caller's descriptor `fd` (/proc/TID/fd/N).
    virtual int descriptor_link(int fd, op::PathBuffer& out) noexcept = 0;
    // The caller's umask, which the kernel would apply to a creation mode.
    [[nodiscard]] virtual mode_t umask() noexcept = 0;
    // The caller's descriptor `fd`, duplicated into the broker: 0 or errno.
    virtual int take_fd(int fd, unique_fd& out) noexcept = 0;

  protected:
    ~CallerView() = default;
};

struct SystemCall {
    int nr = -1;  // in the native ABI (the supervisor has refused any other)
    std::array<std::uint64_t, 6> args{};
};

// What the end of a path says beyond its normal form.
struct PathEnd {
    bool directory = false;  // a trailing '/', or a last component "." or ".."
    std::uint8_t dots = 0;   // 1: the last component was ".", 2: ".."
    // A ".." after a name: the kernel goes to the parent of where that name really leads (a symlink's
    // target), which normalising cannot know. `unresolved` is then the absolute path as written.
    bool walk = false;
    op::PathBuffer unresolved;
    // NOLINTNEXTLINE(google-explicit-constructor): reads as "wants a directory"
    operator bool() const noexcept { return directory; }
};

struct Decoded {
    op::Operation operation;
    int error = 0;                    // not 0: answer with this errno and perform nothing
    std::uint64_t result_buffer = 0;  // stat, statx, readlink: where the result goes in the caller
    bool cloexec = false;             // open: the new descriptor's close-on-exec flag
    // How the path (and a rename's or link's second path) ended, which normalising drops: a '/', "."
    // or ".." wants a directory there (path_form.hpp).
    std::array<PathEnd, 2> trailing_slash{};
    // openat2's scoping flags (RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV): the
    // path as written is then in trailing_slash[0].unresolved, and `scope_root` is the directory it starts
    // at.
    std::uint64_t scope = 0;
    op::PathBuffer scope_root;
};

inline constexpr std::uint64_t kScoping =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_IN_ROOT | RESOLVE_NO_XDEV;

// Whether transparent mode answers system call `nr` (performed, or refused quietly with EACCES like
// the filter's own refusals: datagram sockets, sends that name an address).
[[nodiscard]] bool is_brokered(int nr) noexcept;

// Whether a brokered call is one transparent mode refuses outright (EACCES): the forms of socket,
// socketpair and the send calls the filter does not allow itself. No other form reaches the broker.
[[nodiscard]] bool is_refused_form(int nr) noexcept;

// Decodes `call` into `out`: out.error, or out.operation. Only for calls is_brokered() accepts.
void decode_notification(const SystemCall& call, CallerView& caller, Decoded& out) noexcept;

// The calls the worker's filter leaves to the broker in transparent mode. The rest of the table (the
// forms of socket and send calls the filter does not allow itself) reach it through the filter's own
// rules.
[[nodiscard]] std::span<const char* const> brokered_call_names() noexcept;

}  // namespace fdbroker::broker
