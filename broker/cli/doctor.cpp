#include "broker/cli/doctor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "broker/core/audit.hpp"

namespace fdbroker::broker {

namespace {

using sandbox::Feature;

bool has(const sandbox::KernelFeatures& k, Feature f) {
    return k[f].present;
}

// The features a mode cannot do without.
std::vector<Feature> needed_by(const std::string& mode) {
    if (mode == "run") return {Feature::landlock, Feature::seccomp_notify};
    if (mode == "run --transparent")
        return {Feature::landlock, Feature::seccomp_notify, Feature::addfd_send, Feature::pidfd_getfd};
    return {};  // serve; its pools need what run needs (policy_needs)
}

ModeReport mode_report(const sandbox::KernelFeatures& k, const std::string& mode, bool root) {
    ModeReport m;
    m.mode = mode;
    for (const Feature f : needed_by(mode))
        if (!has(k, f)) m.missing.emplace_back(sandbox::feature_name(f));
    m.possible = m.missing.empty();
    if (mode != "serve") {
        if (!root)
            m.notes.emplace_back(
                "not root: the worker keeps your user (a profile's user, group and namespaces "
                "need a root broker)");
        if (!has(k, Feature::cgroup2))
            m.notes.emplace_back(
                "no cgroup v2: the worker's descendants are tracked through the process tree");
        if (mode == "run --transparent" && !has(k, Feature::wait_killable_recv))
            m.notes.emplace_back("no WAIT_KILLABLE_RECV: a signal during a brokered call can restart it");
    } else {
        const char* xdg = std::getenv("XDG_RUNTIME_DIR");
        if (!root && (xdg == nullptr || *xdg == '\0')) {
            m.possible = false;
            m.missing.emplace_back("a socket directory: not root and no XDG_RUNTIME_DIR (give --socket)");
        }
        if (!has(k, Feature::landlock) || !has(k, Feature::seccomp_notify))
            m.notes.emplace_back(
                "pools (profiles with command) are refused: they need landlock and seccomp_notify");
        if (!root) m.notes.emplace_back("not root: no pools of other users, no listen rules below port 1024");
    }
    return m;
}

void add_need(std::vector<std::string>& needs, std::string_view what) {
    if (std::find(needs.begin(), needs.end(), what) == needs.end()) needs.emplace_back(what);
}

// What serving `policy` needs: spawned workers (run, pools) need what run needs; a profile written for
// transparent mode (include = ["runtime"]) needs what run --transparent needs; some keys need root.
void policy_needs(const policy::Policy& policy, bool root, DoctorReport& r) {
    for (const Feature f : needed_by("run"))
        add_need(r.policy_needs, sandbox::feature_name(f));
    for (const policy::Profile& p : policy.profiles()) {
        if (p.includes_runtime())
            for (const Feature f : needed_by("run --transparent"))
                add_need(r.policy_needs, sandbox::feature_name(f));
        if (p.confinement().namespaces != 0)
            add_need(r.policy_needs, "root (profile '" + p.name() + "' has namespaces)");
    }
    if (policy.has_pools()) add_need(r.policy_needs, "root (the policy has pools)");
    if (policy.listens_below_1024()) add_need(r.policy_needs, "root (a listen rule below port 1024)");
    for (const std::string& need : r.policy_needs) {
        if (need.starts_with("root")) {
            if (!root) r.policy_missing.push_back(need + ": this user is not root");
            continue;
        }
        for (std::size_t i = 0; i < sandbox::kFeatureCount; ++i) {
            const auto f = static_cast<Feature>(i);
            if (sandbox::feature_name(f) == need && !has(r.kernel, f))
                r.policy_missing.push_back(need + " is missing: " + without(f));
        }
    }
}

}  // namespace

const char* without(Feature f) noexcept {
    switch (f) {
        case Feature::landlock:
            return "fdbroker run and serve pools refuse to start (a worker would be less confined than its "
                   "policy says); serve's connecting clients are unaffected";
        case Feature::seccomp_notify:
            return "fdbroker run and serve pools refuse to start: a worker's refused calls go to the broker "
                   "through a notification listener";
        case Feature::addfd_send:
            return "run --transparent cannot work: every call of the program that returns a descriptor "
                   "(open, "
                   "socket, accept) fails, since the broker installs descriptors with ADDFD_SEND";
        case Feature::wait_killable_recv:
            return "fallback: the filter loads without it; a signal arriving while the broker performs a "
                   "call "
                   "can restart that call, which may then fail on the broker's completed work (EEXIST, "
                   "ENOENT)";
        case Feature::sync_wake_up:
            return "fallback: nothing changes but speed; the worker may wake on another CPU after each call";
        case Feature::pidfd_getfd:
            return "run --transparent cannot work: the program's connect and bind on its own sockets fail, "
                   "since the broker takes the socket with pidfd_getfd";
        case Feature::openat2:
            return "fallback: the broker resolves paths with a walk of its own, one component at a time, "
                   "that makes the decisions of openat2's RESOLVE_* flags (a systemd unit's "
                   "RestrictSUIDSGID=yes answers openat2 with ENOSYS too)";
        case Feature::so_peerpidfd:
            return "fallback: serve opens a pidfd from the client's pid on arrival, and checks it still "
                   "names the client after attaching";
        case Feature::cgroup2:
            return "fallback: a worker's descendants are tracked through the process tree and killed one by "
                   "one, instead of with cgroup.kill";
        case Feature::user_namespaces:
            return "nothing: fdbroker does not use user namespaces (namespaces = [...] need a root broker)";
    }
    return "";
}

bool DoctorReport::ok() const noexcept {
    if (has_policy) return policy_missing.empty();
    return !modes.empty() && modes.front().possible;
}

DoctorReport diagnose(const sandbox::KernelFeatures& kernel, const policy::Policy* policy, bool root) {
    DoctorReport r;
    r.kernel = kernel;
    for (const char* mode : {"run", "run --transparent", "serve"})
        r.modes.push_back(mode_report(kernel, mode, root));
    if (policy != nullptr) {
        r.has_policy = true;
        policy_needs(*policy, root, r);
    }
    return r;
}

std::string render_doctor_text(const DoctorReport& r) {
    std::string out = "kernel features:\n";
    for (std::size_t i = 0; i < sandbox::kFeatureCount; ++i) {
        const auto f = static_cast<Feature>(i);
        const sandbox::Probe& p = r.kernel[f];
        out += "  " + std::string(sandbox::feature_name(f)) + ": " + (p.present ? "yes" : "no");
        if (!p.detail.empty()) out += " (" + p.detail + ")";
        if (!p.present && p.error != 0) out += std::string(" (") + ::strerrorname_np(p.error) + ")";
        out += "\n";
        if (!p.present) out += std::string("      without it: ") + without(f) + "\n";
    }
    out += "modes, for this user:\n";
    for (const ModeReport& m : r.modes) {
        out += "  " + m.mode + ": " + (m.possible ? "yes" : "no");
        for (std::size_t i = 0; i < m.missing.size(); ++i)
            out += (i == 0 ? " (missing: " : ", ") + m.missing[i] + (i + 1 == m.missing.size() ? ")" : "");
        out += "\n";
        for (const std::string& n : m.notes)
            out += "      " + n + "\n";
    }
    if (r.has_policy) {
        out += "the policy needs:";
        for (const std::string& n : r.policy_needs)
            out += " " + n + (&n == &r.policy_needs.back() ? "" : ",");
        out += "\n";
        for (const std::string& m : r.policy_missing)
            out += "  cannot: " + m + "\n";
        out += r.policy_missing.empty() ? "everything the policy needs is here\n" : "";
    }
    return out;
}

namespace {

void add_string(std::string& out, const char* key, std::string_view value) {
    if (out.back() != '{') out += ',';
    out += '"';
    out += key;
    out += "\":\"";
    append_json_escaped(out, value);
    out += '"';
}

void add_list(std::string& out, const char* key, const std::vector<std::string>& list) {
    if (out.back() != '{') out += ',';
    out += '"';
    out += key;
    out += "\":[";
    for (const std::string& s : list) {
        if (out.back() != '[') out += ',';
        out += '"';
        append_json_escaped(out, s);
        out += '"';
    }
    out += ']';
}

}  // namespace

std::string render_doctor_json(const DoctorReport& r) {
    std::string out = "{\"features\":[";
    for (std::size_t i = 0; i < sandbox::kFeatureCount; ++i) {
        const auto f = static_cast<Feature>(i);
        const sandbox::Probe& p = r.kernel[f];
        if (out.back() != '[') out += ',';
        out += '{';
        add_string(out, "name", sandbox::feature_name(f));
        out += std::string(",\"present\":") + (p.present ? "true" : "false");
        if (f == Feature::landlock) out += ",\"abi\":" + std::to_string(p.version);
        out += std::string(",\"simulated\":") + (p.simulated ? "true" : "false");
        add_string(out, "detail", p.detail);
        add_string(out, "without", without(f));
        out += '}';
    }
    out += "],\"modes\":[";
    for (const ModeReport& m : r.modes) {
        if (out.back() != '[') out += ',';
        out += '{';
        add_string(out, "mode", m.mode);
        out += std::string(",\"possible\":") + (m.possible ? "true" : "false");
        add_list(out, "missing", m.missing);
        add_list(out, "notes", m.notes);
        out += '}';
    }
    out += ']';
    if (r.has_policy) {
        out += ",\"policy\":{";
        add_list(out, "needs", r.policy_needs);
        add_list(out, "missing", r.policy_missing);
        out += '}';
    }
    out += std::string(",\"ok\":") + (r.ok() ? "true" : "false") + "}\n";
    return out;
}

}  // namespace fdbroker::broker
