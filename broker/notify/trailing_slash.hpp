// What a trailing '/' on a path means to the kernel (path_resolution(7)): the name must be a directory,
// reached through a final symlink if there is one. Decoding normalises paths and so drops the slash;
// this puts its meaning back before the operation is performed.
#pragma once

#include "broker/notify/decode_notification.hpp"
#include "broker/ops/perform.hpp"

namespace fdbroker::broker {

// 0 to go ahead (the operation now follows a final symlink where the slash makes the kernel follow
// it), or the errno the kernel gives: ENOTDIR for a non-directory, EISDIR for O_CREAT or an unlink of
// a directory, ENOENT or EEXIST for a new non-directory name, EINVAL for readlink of a directory, or
// whatever looking the path up gives (EACCES where the policy hides it).
[[nodiscard]] int apply_trailing_slash(Decoded& decoded, const Performer& performer,
                                       const Caller& caller) noexcept;

}  // namespace fdbroker::broker
