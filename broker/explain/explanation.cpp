#include "broker/explain/explanation.hpp"

#include <cerrno>
#include <cstring>
#include <string_view>

#include "broker/core/audit.hpp"
#include "broker/ops/needs.hpp"

namespace fdbroker::broker::explain {

namespace {

using policy::Why;

constexpr std::uint8_t kAllowNeeds = policy::need_read | policy::need_write | policy::need_create;

std::string rule_at(const std::string& file, std::uint32_t line, std::uint32_t column) {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string rule_text(const policy::Rule& r, const std::string& file) {
    return rule_at(file, r.line, r.column) + " " + std::string(policy::kind_name(r.kind)) + " \"" +
           r.pattern.text() + "\"";
}

std::string address_rule_text(const policy::AddressRule& r, const std::string& file, std::string_view kind) {
    return rule_at(file, r.line, r.column) + " " + std::string(kind) + " \"" + r.text + "\"";
}

// The runtime path (Confinement::runtime) that `path` lies beneath, lexically; "" for none.
std::string runtime_beneath(const policy::Profile& profile, std::string_view path) {
    for (const std::string& dir : profile.confinement().runtime) {
        const bool beneath =
            path == dir || (path.starts_with(dir) && (dir == "/" || path[dir.size()] == '/'));
        if (beneath) return dir;
    }
    return {};
}

bool is_metadata(const std::string& op) {
    for (const char* m : {"chmod", "chown", "truncate", "utimens", "utimes", "touch", "setxattr",
                          "removexattr", "link", "mknod", "mkfifo"})
        if (op == m) return true;
    return false;
}

void file_layers(const policy::Profile& profile, const Request& r, std::uint8_t needs, Explanation& e) {
    e.layers.emplace_back(
        "broker: judges the request with the policy (library mode, serve mode and run --transparent)");
    if (r.op == "open" && needs == policy::need_read) {
        const std::string runtime = runtime_beneath(profile, r.judged.front());
        if (!runtime.empty())
            e.layers.push_back(
                "Landlock and the seccomp filter: in fdbroker run without --transparent the worker "
                "may also open it read-only by itself, since it lies beneath the runtime path " +
                runtime + "; the kernel then checks its user's permissions");
        else
            e.layers.emplace_back(
                "Landlock: the worker's own read-only opens reach only its runtime paths, so it "
                "gets this file only from the broker");
    } else if (r.op == "open") {
        e.layers.emplace_back(
            "seccomp filter: the worker's own opens for writing or creating fail with EACCES, so only the "
            "broker can grant this");
    }
    if (is_metadata(r.op))
        e.layers.emplace_back(
            "kernel: the broker performs it with the worker's identity, so the worker user's "
            "own permissions (owner, mode) apply after the policy");
    if (r.op == "stat" && profile.confinement().stat == policy::StatTier::kernel)
        e.layers.emplace_back(
            "kernel, in run --transparent (stat = \"kernel\"): the decision above is not consulted for "
            "the worker's own stat calls, which the kernel answers for any path its user can look up");
    if (const auto* access = std::get_if<op::Access>(&r.operation); access && (access->mode & X_OK))
        e.layers.emplace_back("kernel: whether X_OK holds is the kernel's answer for the worker's user");
    e.layers.emplace_back(
        "kernel, in run --transparent: every file operation runs with the worker's identity, "
        "so its user's permissions apply on top of the policy");
}

void path_notes(const policy::Profile& profile, const std::string& op, const PathJudgement& p,
                Explanation& e) {
    if (p.written != p.judged)
        e.notes.push_back("'" + p.written + "' is judged as " + p.judged + " (lexically normalised)");
    if (p.judged.starts_with("/proc/self") || p.judged.starts_with("/proc/thread-self"))
        e.notes.emplace_back(
            "/proc/self names the caller: its own /proc entries are readable without a rule");
    if (p.why.why == Why::on_the_way)
        e.notes.push_back(p.judged + " may only be looked up: it is a directory on the way to what " +
                          p.why.decision.rule->pattern.text() + " grants; listing it needs read");
    const std::uint8_t specific = p.needs & kAllowNeeds;
    if (op == "open" && p.why.decision.allowed && specific != 0 &&
        !profile.grants_exactly(p.judged, specific))
        e.notes.push_back("if " + p.judged +
                          " is a FIFO or a device, it is refused: those need a rule that names them exactly");
}

void explain_socket(const policy::Profile& profile, const Request& r, Explanation& e) {
    e.address = r.written.front();
    const policy::SocketUse use = r.op == "connect" ? policy::SocketUse::connect : policy::SocketUse::listen;
    policy::SocketAddress address;
    const policy::SocketDecision d = profile.decide_socket(use, e.address, address);
    e.socket = d;
    e.allowed = d.allowed;
    e.error = d.error;
    if (d.error == EINVAL) {
        e.notes.emplace_back(
            "not a request address: a request names one tcp:HOST:PORT, udp:HOST:PORT, "
            "unix:/path or unix:@name, with HOST an IPv4 address or [IPv6] (no host names, "
            "ranges or blocks)");
        return;
    }
    e.socket_matching = policy::address_rules_matching(
        use == policy::SocketUse::connect ? profile.connect_rules() : profile.listen_rules(), address);
    if (d.reaches_loopback)
        e.notes.push_back("judged as " + std::string(policy::InetText(address).view()) +
                          ": a connect to the unspecified address reaches the local host");
    if (address.transport == policy::Transport::unix_path)
        e.notes.emplace_back(
            "the broker reaches the socket file without following symlinks: a path through a "
            "symlink fails with ELOOP");
    e.layers.emplace_back(
        "broker: the worker gets the socket from the broker; in library mode its own "
        "sockets are refused by the seccomp filter, in run --transparent its connect and "
        "bind calls are brokered");
}

void explain_exec(const policy::Profile& profile, const Request& r, Explanation& e) {
    const std::string runtime = runtime_beneath(profile, r.judged.front());
    const bool exec = profile.confinement().exec;
    e.allowed = exec && !runtime.empty();
    e.error = e.allowed ? 0 : EACCES;
    if (!exec) {
        e.layers.emplace_back(
            "seccomp filter: exec = false, so every execve after the program starts fails "
            "with EACCES (the first, of PROGRAM itself, always works)");
        return;
    }
    e.layers.push_back(runtime.empty()
                           ? "Landlock: " + r.judged.front() +
                                 " is beneath none of the runtime paths, where alone the worker "
                                 "may execute"
                           : "Landlock: the worker may execute beneath the runtime path " + runtime);
    e.layers.emplace_back("kernel: the worker user's execute permission on the file");
    e.notes.emplace_back("exec is decided by exec = true and the runtime paths, not by read/write rules");
}

}  // namespace

Explanation explain_request(const policy::Profile& profile, const Request& r) {
    Explanation e;
    e.op = r.op;
    if (r.socket) {
        explain_socket(profile, r, e);
        return e;
    }
    if (r.exec) {
        explain_exec(profile, r, e);
        return e;
    }
    const std::uint8_t needs = needs_of(r.operation);
    const bool two = r.judged.size() == 2;
    e.allowed = true;
    for (std::size_t i = 0; i < r.judged.size(); ++i) {
        PathJudgement p;
        p.role = two ? (i == 0 ? "from" : "to") : "path";
        p.written = r.written[i];
        p.judged = r.judged[i];
        // A link looks its source up and creates its new name.
        p.needs = r.op == "link" && i == 0 ? static_cast<std::uint8_t>(policy::need_any) : needs;
        p.why = policy::explain_path(profile, p.judged, p.needs);
        e.allowed = e.allowed && p.why.decision.allowed;
        e.paths.push_back(std::move(p));
    }
    if (two) {
        e.move = profile.decide_move(r.judged[0], r.judged[1], false);
        e.allowed = e.allowed && e.move->allowed;
        if (r.op == "rename") e.move_directory = profile.decide_move(r.judged[0], r.judged[1], true);
    }
    if (!e.allowed) {
        e.error = EACCES;
        // Performer::as_absent: a refused path operation on a path the worker may see nothing of.
        if (profile.denied_paths() == policy::DeniedPaths::absent)
            for (const PathJudgement& p : e.paths)
                if (!profile.decide(p.judged, policy::need_any).allowed) e.error = ENOENT;
    }
    file_layers(profile, r, needs, e);
    for (const PathJudgement& p : e.paths)
        path_notes(profile, r.op, p, e);
    const bool makes_name = r.op == "mkdir" || r.op == "symlink" || r.op == "mknod" || r.op == "mkfifo";
    if (makes_name && !e.allowed && profile.decide(r.judged.front(), policy::need_any).allowed)
        e.notes.push_back("if something exists at " + r.judged.front() +
                          " already, the answer is EEXIST: the kernel gives it before it checks the right to "
                          "create, and the worker may look the path up anyway");
    if (e.move_directory && e.allowed && !e.move_directory->allowed)
        e.notes.emplace_back(
            "allowed for a file; a directory could not be moved: its subtree would not keep "
            "the same rules (no amplification)");
    e.notes.emplace_back(
        "judged by the path as written; the broker judges it again where it really lands, so a "
        "symlink on the way is followed only to a target the policy grants too, and files need "
        "not exist for this answer");
    if (e.error == ENOENT)
        e.notes.emplace_back(
            "denied_paths = \"absent\": the worker sees ENOENT, as if the path did not exist");
    return e;
}

namespace {

std::string why_text(const PathJudgement& p, const std::string& file) {
    const policy::Decision& d = p.why.decision;
    switch (p.why.why) {
        case Why::not_normal:
            return "the path is not absolute and normal: no rule matches it";
        case Why::deny_wins:
            return rule_text(*d.rule, file) + " matches: a deny beats every grant";
        case Why::granted:
            return "granted by " + rule_text(*d.rule, file) +
                   " (of the matching rules of the kinds needed, the one with the longest anchor decides)";
        case Why::on_the_way:
            return "a directory on the way to " + rule_text(*d.rule, file) + ": it may be looked up";
        case Why::no_grant:
            break;
    }
    return "no matching rule grants " + policy::needs_text(p.why.missing) + ": denied by default";
}

void append_string(std::string& out, std::string_view s) {
    out += '"';
    append_json_escaped(out, s);
    out += '"';
}

void append_key(std::string& out, const char* key) {
    if (out.back() != '{' && out.back() != '[') out += ',';
    append_string(out, key);
    out += ':';
}

void append_rule(std::string& out, const policy::Rule* r, const std::string& file) {
    if (r == nullptr) {
        out += "null";
        return;
    }
    out += '{';
    append_key(out, "at");
    append_string(out, rule_at(file, r->line, r->column));
    append_key(out, "kind");
    append_string(out, policy::kind_name(r->kind));
    append_key(out, "pattern");
    append_string(out, r->pattern.text());
    out += '}';
}

void append_address_rule(std::string& out, const policy::AddressRule* r, const std::string& file,
                         std::string_view kind) {
    if (r == nullptr) {
        out += "null";
        return;
    }
    out += '{';
    append_key(out, "at");
    append_string(out, rule_at(file, r->line, r->column));
    append_key(out, "kind");
    append_string(out, kind);
    append_key(out, "pattern");
    append_string(out, r->text);
    out += '}';
}

void append_strings(std::string& out, const char* key, const std::vector<std::string>& list) {
    append_key(out, key);
    out += '[';
    for (const std::string& s : list) {
        if (out.back() != '[') out += ',';
        append_string(out, s);
    }
    out += ']';
}

const char* why_name(Why why) {
    switch (why) {
        case Why::not_normal:
            return "not_normal";
        case Why::deny_wins:
            return "deny_wins";
        case Why::granted:
            return "granted";
        case Why::on_the_way:
            return "on_the_way";
        case Why::no_grant:
            break;
    }
    return "no_grant";
}

void append_path(std::string& out, const PathJudgement& p, const std::string& file) {
    out += '{';
    append_key(out, "role");
    append_string(out, p.role);
    append_key(out, "written");
    append_string(out, p.written);
    append_key(out, "judged");
    append_string(out, p.judged);
    append_key(out, "need");
    append_string(out, policy::needs_text(p.needs));
    append_key(out, "decision");
    append_string(out, p.why.decision.allowed ? "allow" : "deny");
    append_key(out, "why");
    append_string(out, why_name(p.why.why));
    append_key(out, "missing");
    append_string(out, policy::needs_text(p.why.missing));
    append_key(out, "rule");
    append_rule(out, p.why.decision.rule, file);
    append_key(out, "matching");
    out += '[';
    for (const policy::Rule* r : p.why.matching) {
        if (out.back() != '[') out += ',';
        append_rule(out, r, file);
    }
    out += "]}";
}

const char* error_name(int error) {
    const char* name = error != 0 ? ::strerrorname_np(error) : nullptr;
    return name != nullptr ? name : "";
}

}  // namespace

std::string render_text(const Explanation& e, const std::string& file, const policy::Profile& profile) {
    std::string out = e.op;
    for (const PathJudgement& p : e.paths)
        out += " " + p.judged;
    if (!e.address.empty()) out += " " + e.address;
    out += " (profile " + profile.name() + " of " + file + "): ";
    out += e.allowed ? "allowed\n" : std::string("denied (") + error_name(e.error) + ")\n";
    for (const PathJudgement& p : e.paths) {
        out += "  " + p.role + " " + p.judged + " needs " + policy::needs_text(p.needs) + ": " +
               (p.why.decision.allowed ? "allowed" : "denied") + "\n";
        out += p.why.matching.empty() ? "    matching rules: none\n" : "    matching rules:\n";
        for (const policy::Rule* r : p.why.matching)
            out += "      " + rule_text(*r, file) + (r == p.why.decision.rule ? "   <- decides" : "") + "\n";
        out += "    why: " + why_text(p, file) + "\n";
    }
    if (e.move) {
        out += std::string("  no amplification (") +
               (e.op == "link" ? "the new name may grant nothing the old one "
                                 "does not"
                               : "what moves may gain nothing") +
               "): ";
        out +=
            e.move->allowed
                ? "passes\n"
                : "refused" + (e.move->rule ? " by " + rule_text(*e.move->rule, file) : std::string()) + "\n";
    }
    if (e.socket) {
        const char* kind = e.op == "connect" ? "connect" : "listen";
        out += e.socket_matching.empty() ? "  matching rules: none\n" : "  matching rules:\n";
        for (const policy::AddressRule* r : e.socket_matching)
            out += "    " + address_rule_text(*r, file, kind) + (r == e.socket->rule ? "   <- decides" : "") +
                   "\n";
        out += "  why: ";
        if (e.socket->error == EINVAL)
            out += "not an address a request may name (EINVAL)\n";
        else if (e.socket->deny)
            out += rule_text(*e.socket->deny, file) + " matches the socket path: a deny beats every grant\n";
        else if (e.socket->rule)
            out += "granted by " + address_rule_text(*e.socket->rule, file, kind) +
                   " (the first matching rule in file order decides)\n";
        else
            out += std::string("no ") + kind + " rule covers it: denied by default\n";
    }
    out += "  enforced by:\n";
    for (const std::string& l : e.layers)
        out += "    - " + l + "\n";
    for (const std::string& n : e.notes)
        out += "  note: " + n + "\n";
    return out;
}

std::string render_json(const Explanation& e, const std::string& file, const policy::Profile& profile) {
    std::string out = "{";
    append_key(out, "op");
    append_string(out, e.op);
    append_key(out, "profile");
    append_string(out, profile.name());
    append_key(out, "policy");
    append_string(out, file);
    append_key(out, "decision");
    append_string(out, e.allowed ? "allow" : "deny");
    append_key(out, "errno");
    out += std::to_string(e.error);
    append_key(out, "error");
    append_string(out, error_name(e.error));
    append_key(out, "paths");
    out += '[';
    for (const PathJudgement& p : e.paths) {
        if (out.back() != '[') out += ',';
        append_path(out, p, file);
    }
    out += ']';
    if (e.move) {
        append_key(out, "no_amplification");
        out += '{';
        append_key(out, "decision");
        append_string(out, e.move->allowed ? "allow" : "deny");
        append_key(out, "rule");
        append_rule(out, e.move->rule, file);
        if (e.move_directory) {
            append_key(out, "directory_decision");
            append_string(out, e.move_directory->allowed ? "allow" : "deny");
        }
        out += '}';
    }
    if (e.socket) {
        const char* kind = e.op == "connect" ? "connect" : "listen";
        append_key(out, "address");
        append_string(out, e.address);
        append_key(out, "rule");
        if (e.socket->deny)
            append_rule(out, e.socket->deny, file);
        else
            append_address_rule(out, e.socket->rule, file, kind);
        append_key(out, "matching");
        out += '[';
        for (const policy::AddressRule* r : e.socket_matching) {
            if (out.back() != '[') out += ',';
            append_address_rule(out, r, file, kind);
        }
        out += ']';
    }
    append_strings(out, "layers", e.layers);
    append_strings(out, "notes", e.notes);
    out += "}\n";
    return out;
}

}  // namespace fdbroker::broker::explain
