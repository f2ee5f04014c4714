// Lexical rules for paths: what "absolute and normal" means, shared by patterns and requests.
#pragma once

#include <string_view>

#include "policy/path_buffer.hpp"

namespace fdbroker::policy {

// True for "/" and for "/a/b" style paths: starts with '/', no empty component ("//"), no trailing
// '/', no "." or ".." component, no NUL. Requests that are not normal never match any rule.
[[nodiscard]] bool is_normal_absolute(std::string_view path) noexcept;

// The parent of a normal absolute path ("/a/b" -> "/a", "/a" -> "/"); "/" has no parent: returns "".
[[nodiscard]] std::string_view parent_of(std::string_view path) noexcept;
// The last component of a normal absolute path ("/a/b" -> "b"); "" for "/".
[[nodiscard]] std::string_view name_of(std::string_view path) noexcept;

// Writes to `out` the normal absolute path that `path` names lexically when read from directory `base`
// (an absolute path; ignored when `path` is absolute): empty and "." components vanish, ".." removes
// the last component, and ".." at "/" stays at "/". Symlinks are not looked at: the broker judges
// every path it opens by where it really lands, so this only says what the caller wrote (a symlink's
// text, a path relative to the caller's cwd). False when `path` is empty or the result does not fit.
// `out` must not hold `base`.
[[nodiscard]] bool join_lexically(std::string_view base, std::string_view path, PathBuffer& out) noexcept;

}  // namespace fdbroker::policy
