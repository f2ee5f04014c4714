#include "broker/explain/audit_summary.hpp"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <string_view>

#include "broker/core/audit.hpp"
#include "broker/explain/explanation.hpp"
#include "broker/explain/request.hpp"
#include "policy/confinement.hpp"
#include "policy/path.hpp"

namespace fdbroker::broker::explain {

namespace {

// A JSON string body up to its closing quote; `at` ends past the quote. The audit writer escapes only
// '"', '\\' and bytes as \u00XX.
bool read_string(std::string_view line, std::size_t& at, std::string& out) {
    if (at >= line.size() || line[at] != '"') return false;
    for (++at; at < line.size(); ++at) {
        const char c = line[at];
        if (c == '"') {
            ++at;
            return true;
        }
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++at >= line.size()) return false;
        const char e = line[at];
        if (e == 'u' && at + 4 < line.size()) {
            unsigned v = 0;
            const auto [end, ec] = std::from_chars(line.data() + at + 1, line.data() + at + 5, v, 16);
            if (ec != std::errc() || end != line.data() + at + 5 || v > 0xff) return false;
            out += static_cast<char>(v);
            at += 4;
        } else if (e == 'n') {
            out += '\n';
        } else if (e == 't') {
            out += '\t';
        } else {
            out += e;
        }
    }
    return false;
}

// The rule that would grant `kinds` (Need text, "read+write") on `pattern`: one line per kind.
std::string suggestion_for(const std::string& kinds, const std::string& pattern) {
    std::string out;
    std::size_t start = 0;
    while (start <= kinds.size()) {
        const std::size_t end = std::min(kinds.find('+', start), kinds.size());
        std::string kind = kinds.substr(start, end - start);
        if (kind == "any") kind = "read";  // a lookup needs any grant: read is the narrowest
        if (!out.empty()) out += "; ";
        out.append(kind).append(" = [\"").append(pattern).append("\"]");
        start = end + 1;
    }
    return out;
}

// Where a rule of `kind` goes in `profile`: its list of that kind, or a new key.
// Whether `rule` is one of the rules `include = ["runtime"]` adds (docs/policy.md): those sit on the
// include's line, which is no place to add a rule.
bool from_include(const policy::Profile& profile, const policy::Rule& rule) {
    if (!profile.includes_runtime()) return false;
    const std::string& text = rule.pattern.text();
    if (text == "/") return true;
    const auto& runtime = policy::default_runtime();
    return std::any_of(runtime.begin(), runtime.end(),
                       [&text](const std::string& path) { return text == path || text == path + "/**"; });
}

std::string where_for(const policy::Policy& policy, const policy::Profile& profile,
                      const std::string& kinds) {
    const std::string first = kinds.substr(0, kinds.find('+'));
    for (const policy::Rule& r : profile.rules())
        if (policy::kind_name(r.kind) == first && !from_include(profile, r))
            return "add it to the '" + first + "' list of [profile." + profile.name() + "] (" +
                   policy.file() + ":" + std::to_string(r.line) + ")";
    return "add a '" + first + "' key to [profile." + profile.name() + "] in " + policy.file();
}

// Judges one denied path again: now allowed, refused by a deny, or missing which kinds.
void judge_path(const policy::Policy& policy, const policy::Profile& profile, DenialGroup& g,
                std::uint32_t flags, const std::string& path2) {
    const auto request = request_from_audit(g.op, g.paths.front(), path2, flags);
    if (!request) return;
    const Explanation e = explain_request(profile, *request);
    g.now_allowed = e.allowed;
    for (const PathJudgement& p : e.paths) {
        if (p.why.why == policy::Why::deny_wins) {
            g.denied_by = policy.file() + ":" + std::to_string(p.why.decision.rule->line) + ":" +
                          std::to_string(p.why.decision.rule->column) + " deny \"" +
                          p.why.decision.rule->pattern.text() + "\"";
            return;
        }
        if (p.why.missing != 0 && g.missing.empty()) g.missing = policy::needs_text(p.why.missing);
    }
}

// The rule that would grant a group of paths that miss the same kinds.
void suggest_for_paths(const policy::Policy& policy, const policy::Profile& profile, DenialGroup& g,
                       std::size_t threshold) {
    if (g.now_allowed || g.missing.empty()) return;
    const bool many = g.paths.size() >= threshold;
    const std::string pattern = many ? (g.directory == "/" ? "/*" : g.directory + "/*") : g.paths.front();
    g.suggestion = suggestion_for(g.missing, pattern);
    if (!many && g.paths.size() > 1)
        for (std::size_t i = 1; i < g.paths.size(); ++i)
            g.suggestion += "; " + suggestion_for(g.missing, g.paths[i]);
    g.where = where_for(policy, profile, g.missing);
}

void judge_socket_group(const policy::Policy& policy, const policy::Profile& profile, DenialGroup& g) {
    const auto request = request_from_audit(g.op, g.directory, {}, 0);
    if (!request) return;
    const Explanation e = explain_request(profile, *request);
    g.now_allowed = e.allowed;
    if (e.socket && e.socket->deny) {
        g.denied_by = policy.file() + ":" + std::to_string(e.socket->deny->line) + " deny \"" +
                      e.socket->deny->pattern.text() + "\"";
        return;
    }
    if (e.allowed || (e.socket && e.socket->error == EINVAL)) return;
    const std::string kind = request->op;  // bind is judged by the listen rules
    g.missing = kind;
    g.suggestion = kind + " = [\"" + g.directory + "\"]";
    bool listed = false;
    for (const policy::AddressRule& r :
         kind == "connect" ? profile.connect_rules() : profile.listen_rules()) {
        g.where = "add it to the '" + kind + "' list of [profile." + profile.name() + "] (" + policy.file() +
                  ":" + std::to_string(r.line) + ")";
        listed = true;
        break;
    }
    if (!listed) g.where = "add a '" + kind + "' key to [profile." + profile.name() + "] in " + policy.file();
}

bool is_socket(const std::string& op) {
    return op == "connect" || op == "listen" || op == "bind";
}

// One denial judged on its own: a group of one, whose verdict decides which group it joins.
DenialGroup judge_denial(const policy::Policy& policy, const std::map<std::string, std::string>& fields) {
    const auto field = [&fields](const char* key) {
        const auto it = fields.find(key);
        return it == fields.end() ? std::string() : it->second;
    };
    DenialGroup g;
    g.profile = field("profile");
    g.op = field("op");
    g.need = field("need");
    const std::string path = field("path");
    g.directory = is_socket(g.op) ? path : std::string(policy::parent_of(path));
    if (g.directory.empty()) g.directory = "/";
    g.paths = {path};
    const policy::Profile* profile = policy.profile(g.profile);
    if (profile == nullptr) return g;
    if (is_socket(g.op)) {
        judge_socket_group(policy, *profile, g);
        return g;
    }
    std::uint32_t flags = 0;
    const std::string f = field("flags");
    std::from_chars(f.data(), f.data() + f.size(), flags);
    judge_path(policy, *profile, g, flags, field("path2"));
    return g;
}

}  // namespace

std::optional<std::map<std::string, std::string>> parse_audit_line(std::string_view line) {
    std::map<std::string, std::string> fields;
    std::size_t at = 0;
    while (at < line.size() && (line[at] == ' ' || line[at] == '\r'))
        ++at;
    if (at >= line.size() || line[at++] != '{') return std::nullopt;
    while (at < line.size() && line[at] != '}') {
        std::string key, value;
        if (!read_string(line, at, key) || at >= line.size() || line[at++] != ':') return std::nullopt;
        if (at < line.size() && line[at] == '"') {
            if (!read_string(line, at, value)) return std::nullopt;
        } else {
            const std::size_t end = line.find_first_of(",}", at);
            if (end == std::string_view::npos) return std::nullopt;
            value = line.substr(at, end - at);
            at = end;
        }
        fields[key] = value;
        if (at < line.size() && line[at] == ',') ++at;
    }
    if (at >= line.size()) return std::nullopt;
    return fields;
}

AuditSummary summarise_audit(std::istream& in, const policy::Policy& policy, std::size_t threshold) {
    AuditSummary s;
    std::map<std::string, std::size_t> index;  // group key -> position in s.groups
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        ++s.lines;
        const auto fields = parse_audit_line(line);
        if (!fields || !fields->contains("op") || !fields->contains("decision")) {
            ++s.unreadable;
            continue;
        }
        const auto field = [&fields](const char* key) {
            const auto it = fields->find(key);
            return it == fields->end() ? std::string() : it->second;
        };
        if (field("decision") != "deny") continue;
        ++s.denials;
        const std::string op = field("op"), profile = field("profile"), path = field("path");
        if (op == "syscall") {
            ++s.syscalls[profile + "\t" + field("syscall")];
            continue;
        }
        DenialGroup one = judge_denial(policy, *fields);
        // Paths of one directory are grouped only when the policy says the same of them.
        std::string key = profile;
        for (const std::string* part : std::initializer_list<const std::string*>{
                 &op, &one.need, &one.directory, &one.denied_by, &one.missing})
            key.append("\t").append(*part);
        key.append(one.now_allowed ? "\tallowed" : "");
        auto [it, added] = index.try_emplace(key, s.groups.size());
        if (added) {
            one.paths.clear();
            s.groups.push_back(std::move(one));
        }
        DenialGroup& g = s.groups[it->second];
        ++g.requests;
        if (std::find(g.paths.begin(), g.paths.end(), path) == g.paths.end()) g.paths.push_back(path);
    }
    for (DenialGroup& g : s.groups) {
        const policy::Profile* profile = policy.profile(g.profile);
        if (profile != nullptr && !is_socket(g.op)) suggest_for_paths(policy, *profile, g, threshold);
    }
    return s;
}

std::string render_summary_text(const AuditSummary& s) {
    std::string out = std::to_string(s.denials) + " denial" + (s.denials == 1 ? "" : "s") + " in " +
                      std::to_string(s.lines) + " audit line" + (s.lines == 1 ? "" : "s");
    if (s.unreadable != 0) out += " (" + std::to_string(s.unreadable) + " not audit records, skipped)";
    out += "\n";
    for (const DenialGroup& g : s.groups) {
        out += "\n" + g.op + " " + (g.need.empty() ? "" : "(" + g.need + ") ") + g.directory + " — profile " +
               g.profile + ", " + std::to_string(g.requests) + " request" + (g.requests == 1 ? "" : "s") +
               ", " + std::to_string(g.paths.size()) + " path" + (g.paths.size() == 1 ? "" : "s") + "\n";
        for (std::size_t i = 0; i < g.paths.size() && i < 5; ++i)
            out += "    " + g.paths[i] + "\n";
        if (g.paths.size() > 5) out += "    ... and " + std::to_string(g.paths.size() - 5) + " more\n";
        if (g.now_allowed)
            out += "  now allowed: the policy grants it since\n";
        else if (!g.denied_by.empty())
            out +=
                "  refused by " + g.denied_by + ": a deny beats every grant; narrow that deny to allow it\n";
        else if (!g.suggestion.empty())
            out += "  no rule grants " + g.missing + ". To allow it: " + g.suggestion + "\n    " + g.where +
                   "\n";
        else
            out +=
                "  not judged: the policy has no profile '" + g.profile + "', or the request is malformed\n";
    }
    for (const auto& [key, count] : s.syscalls) {
        const std::string profile = key.substr(0, key.find('\t')), name = key.substr(key.find('\t') + 1);
        out.append("\nsyscall ").append(name).append(" — profile ").append(profile).append(", refused ");
        out.append(std::to_string(count)).append(count == 1 ? " time" : " times");
        out.append(" by the worker's filter. To allow it: syscalls.allow = [\"").append(name);
        out.append("\"] in [profile.").append(profile).append("]\n");
    }
    return out;
}

namespace {

void add(std::string& out, const char* key, const std::string& value, bool first = false) {
    if (!first) out += ',';
    out += '"';
    out += key;
    out += "\":\"";
    append_json_escaped(out, value);
    out += '"';
}

}  // namespace

std::string render_summary_json(const AuditSummary& s) {
    std::string out = "{\"lines\":" + std::to_string(s.lines) + ",\"denials\":" + std::to_string(s.denials) +
                      ",\"unreadable\":" + std::to_string(s.unreadable) + ",\"groups\":[";
    for (const DenialGroup& g : s.groups) {
        if (out.back() != '[') out += ',';
        out += '{';
        add(out, "profile", g.profile, true);
        add(out, "op", g.op);
        add(out, "need", g.need);
        add(out, "directory", g.directory);
        out += ",\"requests\":" + std::to_string(g.requests) + ",\"paths\":[";
        for (const std::string& p : g.paths) {
            if (out.back() != '[') out += ',';
            out += '"';
            append_json_escaped(out, p);
            out += '"';
        }
        out += "],\"now_allowed\":";
        out += g.now_allowed ? "true" : "false";
        add(out, "denied_by", g.denied_by);
        add(out, "missing", g.missing);
        add(out, "suggestion", g.suggestion);
        add(out, "where", g.where);
        out += '}';
    }
    out += "],\"syscalls\":[";
    for (const auto& [key, count] : s.syscalls) {
        if (out.back() != '[') out += ',';
        out += '{';
        add(out, "profile", key.substr(0, key.find('\t')), true);
        add(out, "syscall", key.substr(key.find('\t') + 1));
        out += ",\"refusals\":" + std::to_string(count) + '}';
    }
    out += "]}\n";
    return out;
}

}  // namespace fdbroker::broker::explain
