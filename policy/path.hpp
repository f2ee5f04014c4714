// Lexical rules for paths: what "absolute and normal" means, shared by patterns and requests.
#pragma once

#include <string_view>

namespace fdbroker::policy {

// True for "/" and for "/a/b" style paths: starts with '/', no empty component ("//"), no trailing
// '/', no "." or ".." component, no NUL. Requests that are not normal never match any rule.
[[nodiscard]] bool is_normal_absolute(std::string_view path) noexcept;

// The parent of a normal absolute path ("/a/b" -> "/a", "/a" -> "/"); "/" has no parent: returns "".
[[nodiscard]] std::string_view parent_of(std::string_view path) noexcept;
// The last component of a normal absolute path ("/a/b" -> "b"); "" for "/".
[[nodiscard]] std::string_view name_of(std::string_view path) noexcept;

}  // namespace fdbroker::policy
