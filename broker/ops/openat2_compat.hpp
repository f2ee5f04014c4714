// openat2(2) where the kernel, or a seccomp filter in front of it, answers it with ENOSYS. systemd's
// RestrictSUIDSGID=yes is such a filter: it cannot read the mode inside openat2's struct open_how, so
// it refuses every openat2 with ENOSYS. The broker resolves every granted path with RESOLVE_* flags,
// so it then walks the path itself, one component at a time with openat(O_PATH | O_NOFOLLOW), making
// the decisions the kernel would make for those flags and reporting the errno the kernel would report.
#pragma once

#include <linux/openat2.h>

namespace fdbroker::broker {

// openat2(dirfd, path, &how, sizeof how): a new descriptor, or -1 with errno. When openat2 answers
// ENOSYS (or FDBROKER_SIMULATE_ABSENT names openat2, kernel_features.hpp), this is remembered for the
// whole process and every call takes openat2_walk instead. A path longer than the kernel takes in one
// call (PATH_MAX - 1 bytes: an absolute path the broker formed from a deep directory and a relative
// name) is opened in steps, each a directory prefix ending at a '/' opened with the same RESOLVE_*
// flags, the next step walked from it: under RESOLVE_BENEATH each step is then confined beneath the one
// before (stricter than one walk), and RESOLVE_IN_ROOT, whose meaning steps would change, is
// ENAMETOOLONG.
[[nodiscard]] int openat2_compat(int dirfd, const char* path, const open_how& how) noexcept;

// The walk alone, with openat2's contract for how.resolve made of RESOLVE_NO_SYMLINKS,
// RESOLVE_NO_MAGICLINKS and RESOLVE_BENEATH, at least one of the first two among them (a /proc magic
// link is never followed): anything else is EINVAL. Each symlink met is followed by its text, at most
// 40 in one walk. Under RESOLVE_BENEATH, ".." returns to the directory the walk came from (it holds a
// descriptor of each, so a walk deeper than 2048 directories is ENAMETOOLONG), and at dirfd itself is
// EXDEV; it never returns EAGAIN for a rename meanwhile: what it reaches is where its own descriptors
// led. Otherwise ".." is the real parent, as in the kernel.
[[nodiscard]] int openat2_walk(int dirfd, const char* path, const open_how& how) noexcept;

}  // namespace fdbroker::broker
