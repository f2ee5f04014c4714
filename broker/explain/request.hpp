// A request as `fdbroker explain` is given it (OP TARGET... [MODE]), made into the typed operation the
// broker's decoders make of a frame or a system call (broker/ops/operation.hpp), so that it is judged
// by exactly the code that judges the worker's request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/ops/operation.hpp"

namespace fdbroker::broker::explain {

struct Request {
    std::string op;                    // open, stat, access, ... as written
    op::Operation operation;           // None for exec, which the filter and Landlock judge
    std::vector<std::string> written;  // the paths (or the address) as written
    std::vector<std::string> judged;   // the paths lexically normalised; the address as written
    bool socket = false;               // connect, listen
    bool exec = false;
};

// Parses `words` (OP TARGET... [MODE]). Paths must be absolute; they are normalised lexically
// (policy/path.hpp, join_lexically). Returns nothing, with `error` set, on a mistake.
[[nodiscard]] std::optional<Request> parse_request(const std::vector<std::string>& words, std::string& error);

// The same from an audit line's fields: "op", "path", "path2", "flags" (open flags or access mode).
[[nodiscard]] std::optional<Request> request_from_audit(const std::string& op, const std::string& path,
                                                        const std::string& path2, std::uint32_t flags);

// The operations parse_request knows, for --help and error messages.
[[nodiscard]] const char* known_operations() noexcept;

}  // namespace fdbroker::broker::explain
