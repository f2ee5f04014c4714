// `fdbroker explain` for one request: the broker's own decision (Profile::decide, decide_move,
// decide_socket: the functions the broker calls), every rule that matches, the one that won and why,
// and which layers enforce it. The path is judged as written, lexically normalised; the broker judges
// it again where it really lands, which only a symlink on the way can change.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "broker/explain/request.hpp"
#include "policy/policy.hpp"
#include "policy/rule_query.hpp"

namespace fdbroker::broker::explain {

struct PathJudgement {
    std::string role;     // "path", or "from" and "to"
    std::string written;  // as given
    std::string judged;   // lexically normalised
    std::uint8_t needs = 0;
    policy::PathExplanation why;
};

struct Explanation {
    std::string op;
    bool allowed = false;
    int error = 0;  // what the worker sees when refused: EACCES, or ENOENT under denied_paths = "absent"
    std::vector<PathJudgement> paths;
    // rename, link: no amplification (Profile::decide_move), for a file and for a directory.
    std::optional<policy::Decision> move;
    std::optional<policy::Decision> move_directory;
    // connect, listen
    std::string address;
    std::optional<policy::SocketDecision> socket;
    std::vector<const policy::AddressRule*> socket_matching;
    std::vector<std::string> layers;  // what enforces the answer, outermost first
    std::vector<std::string> notes;   // what the answer depends on beyond the policy
};

[[nodiscard]] Explanation explain_request(const policy::Profile& profile, const Request& request);

// Human-readable, and JSON (one object) for tools. `file` names the policy in rule positions.
[[nodiscard]] std::string render_text(const Explanation& e, const std::string& file,
                                      const policy::Profile& profile);
[[nodiscard]] std::string render_json(const Explanation& e, const std::string& file,
                                      const policy::Profile& profile);

}  // namespace fdbroker::broker::explain
