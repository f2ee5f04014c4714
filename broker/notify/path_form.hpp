// What the form of a path means to the kernel (path_resolution(7)) beyond its normal form, which
// decoding keeps: a ".." after a name goes to the parent of where the name really leads (a symlink's
// target), and a trailing '/' (or a last "." or "..") wants a directory, reached through a final
// symlink if there is one. This puts that meaning back before the operation is performed.
#pragma once

#include "broker/notify/decode_notification.hpp"
#include "broker/ops/perform.hpp"

namespace fdbroker::broker {

// 0 to go ahead (the operation's paths walked through their ".." for real, and following a final
// symlink where a slash makes the kernel follow it), or the errno the kernel gives: what walking a ".."
// meets (ENOTDIR, ENOENT, EACCES where the policy hides it), ENOTDIR for a non-directory, EISDIR for O_CREAT
// or an unlink of a directory, ENOENT or EEXIST for a new non-directory name, EINVAL for readlink of a
// directory, or whatever looking the path up gives (EACCES where the policy hides it).
[[nodiscard]] int apply_path_form(Decoded& decoded, const Performer& performer,
                                  const Caller& caller) noexcept;

}  // namespace fdbroker::broker
