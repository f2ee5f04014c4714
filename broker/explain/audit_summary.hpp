// `fdbroker explain --audit FILE`: the denials of an audit stream (broker/core/audit.hpp), grouped by
// profile, operation, permission asked and directory, each judged again by the current policy, with
// the rule that would grant the group and where it would go in the policy file.
#pragma once

#include <cstddef>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace fdbroker::broker::explain {

// One audit line's fields: strings as they are (unescaped), numbers, true/false and null as their text.
// Nothing for a line that is not a flat JSON object.
[[nodiscard]] std::optional<std::map<std::string, std::string>> parse_audit_line(std::string_view line);

struct DenialGroup {
    std::string profile;
    std::string op;
    std::string need;                // as the audit line says ("read", "write+create"; "" for sockets)
    std::string directory;           // the paths' parent directory; the address for sockets
    std::vector<std::string> paths;  // distinct, in order of first denial
    std::size_t requests = 0;
    // Judged again by the current policy:
    bool now_allowed = false;  // something changed since: the policy grants it now
    std::string denied_by;     // "FILE:LINE:COL deny \"PATTERN\"" when a deny pattern refuses it
    std::string missing;       // the kinds no rule grants ("read", "connect" ...)
    std::string suggestion;    // e.g. read = ["/srv/a/*"]
    std::string where;         // where the suggestion would go
};

struct AuditSummary {
    std::vector<DenialGroup> groups;
    std::size_t lines = 0;
    std::size_t denials = 0;
    std::size_t unreadable = 0;                   // lines that are not audit records
    std::map<std::string, std::size_t> syscalls;  // "profile\tname" -> refusals by the filter
};

// `threshold`: from this many distinct paths in one directory on, the suggestion is DIR/* instead of
// each file.
[[nodiscard]] AuditSummary summarise_audit(std::istream& in, const policy::Policy& policy,
                                           std::size_t threshold = 3);

[[nodiscard]] std::string render_summary_text(const AuditSummary& s);
[[nodiscard]] std::string render_summary_json(const AuditSummary& s);

}  // namespace fdbroker::broker::explain
