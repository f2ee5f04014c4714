#include "broker/learn/learned_rules.hpp"

#include <algorithm>
#include <memory>
#include <set>

#include "policy/address.hpp"
#include "policy/path.hpp"

namespace fdbroker::broker::learn {

namespace {

using policy::need_any;
using policy::need_create;

// A profile with nothing but `include = ["runtime"]`: what the include would cover.
const policy::Profile& runtime_only() {
    static const std::shared_ptr<const policy::Policy> policy =
        policy::Policy::load_string("version = 1\n[profile.runtime]\ninclude = [\"runtime\"]\n", "<runtime>")
            .policy;
    return policy->profiles().front();
}

bool beneath(std::string_view path, std::string_view dir) noexcept {
    return path == dir || (path.starts_with(dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

std::string provenance(const Use& use, std::size_t paths = 1) {
    std::string text = std::to_string(use.calls) + (use.calls == 1 ? " call" : " calls");
    if (paths > 1) text += " on " + std::to_string(paths) + " paths";
    return text + (use.calls == 1 && paths == 1 ? ": " : ", e.g. ") + use.example;
}

// A group of paths beneath one directory, or one path alone: per permission, the requests and how
// many paths they were on.
struct Grant {
    struct Kind {
        Use use;
        std::size_t paths = 0;
        void add(const Use& more) {
            if (more.calls == 0) return;
            if (use.calls == 0) use.example = more.example;
            use.calls += more.calls;
            ++paths;
        }
    };
    std::uint8_t needs = 0;
    Kind read, write, create, lookup, all;
    void add(const PathUse& p) {
        needs |= p.needs;
        all.add(p.all);
        read.add(p.read);
        write.add(p.write);
        create.add(p.create);
        lookup.add(p.lookup);
    }
};

// The directories that become DIR/**: touched `group` times or written into, outermost only.
std::vector<std::string> groups_of(const std::map<std::string, PathUse, std::less<>>& paths,
                                   const LearnOptions& options) {
    std::map<std::string, std::pair<std::size_t, bool>, std::less<>> dirs;  // children, created one
    for (const auto& [path, use] : paths) {
        if (path == "/") continue;
        auto& [children, created] = dirs[std::string(policy::parent_of(path))];
        ++children;
        created = created || (use.needs & need_create) != 0;
    }
    std::vector<std::string> groups;
    for (const auto& entry : dirs) {  // in order: an ancestor comes before what lies beneath it
        const std::string& dir = entry.first;
        const auto& counts = entry.second;
        if (may_group(dir) && (counts.first >= options.group || counts.second) &&
            std::none_of(groups.begin(), groups.end(), [&](const std::string& g) { return beneath(dir, g); }))
            groups.push_back(dir);
    }
    return groups;
}

// Adds the rules `grant` needs on `pattern` to `out`.
void emit(const std::string& pattern, const Grant& grant, Additions& out) {
    auto comment = [](const Grant::Kind& kind) { return provenance(kind.use, kind.paths); };
    if (grant.read.use.calls > 0)
        out.read.push_back({pattern, comment(grant.read)});
    else if (grant.lookup.use.calls > 0 && grant.write.use.calls == 0 && grant.create.use.calls == 0)
        out.read.push_back({pattern, comment(grant.lookup)});  // seeing a path takes some grant
    if (grant.write.use.calls > 0) out.write.push_back({pattern, comment(grant.write)});
    if (grant.create.use.calls > 0) out.create.push_back({pattern, comment(grant.create)});
}

// Paths still needing a rule: neither the profile nor the runtime include grants them.
std::map<std::string, PathUse, std::less<>> uncovered(const Observations& seen,
                                                      const policy::Profile& existing, Additions& out) {
    std::map<std::string, PathUse, std::less<>> left;
    Grant runtime;
    for (const auto& [path, use] : seen.paths) {
        if (existing.decide(path, use.needs).allowed) continue;
        if (runtime_only().decide(path, use.needs).allowed) {
            runtime.add(use);
            continue;
        }
        left.emplace(path, use);
    }
    if (runtime.all.use.calls > 0 && !existing.includes_runtime())
        out.include_runtime = provenance(runtime.all.use, runtime.all.paths);
    return left;
}

void plan_paths(Observations seen, const policy::Profile& existing, const LearnOptions& options,
                Additions& out) {
    // A unix socket's file is created where it is bound.
    for (const auto& [address, use] : seen.listens)
        if (address.starts_with("unix:/")) seen.path(address.substr(5), need_create, "bind " + address);
    const auto left = uncovered(seen, existing, out);
    const std::vector<std::string> groups = groups_of(left, options);
    std::map<std::string, Grant> grouped;
    std::map<std::string, Grant> exact;
    for (const auto& entry : left) {
        const std::string& path = entry.first;
        const PathUse& use = entry.second;
        const auto group = std::find_if(groups.begin(), groups.end(),
                                        [&](const std::string& g) { return beneath(path, g); });
        (group != groups.end() ? grouped[*group + "/**"] : exact[path]).add(use);
    }
    for (const auto& [pattern, grant] : grouped)
        emit(pattern, grant, out);
    for (const auto& entry : exact) {
        const std::string& path = entry.first;
        const Grant& grant = entry.second;
        // Looked up only, on the way to something granted: that is visible already.
        const bool on_the_way = (grant.needs & ~need_any) == 0 &&
                                (std::any_of(left.begin(), left.end(),
                                             [&](const auto& other) {
                                                 return other.first != path && beneath(other.first, path);
                                             }) ||
                                 existing.decide(path, need_any).allowed);
        if (!on_the_way) emit(path, grant, out);
    }
}

// Addresses no rule of `rules` covers yet.
void plan_addresses(const std::map<std::string, Use, std::less<>>& seen,
                    const std::vector<policy::AddressRule>& rules, std::vector<Entry>& out) {
    for (const auto& [address, use] : seen) {
        policy::SocketAddress parsed;
        if (!policy::parse_socket_address(address, parsed)) continue;
        if (policy::find_address_rule(rules, parsed) != nullptr) continue;
        out.push_back({address, provenance(use)});
    }
}

}  // namespace

bool Additions::empty() const noexcept {
    return include_runtime.empty() && read.empty() && write.empty() && create.empty() && connect.empty() &&
           listen.empty() && syscalls.empty() && exec.empty();
}

bool may_group(std::string_view dir) noexcept {
    if (!policy::is_normal_absolute(dir) || dir == "/") return false;
    if (dir == "/tmp" || beneath(dir, "/dev/shm")) return true;
    if (beneath(dir, "/proc") || beneath(dir, "/sys") || beneath(dir, "/dev")) return false;
    return policy::parent_of(dir) != "/";
}

Additions plan_additions(const Observations& seen, const policy::Profile& existing,
                         const LearnOptions& options) {
    Additions out;
    plan_paths(seen, existing, options, out);
    plan_addresses(seen.connects, existing.connect_rules(), out.connect);
    plan_addresses(seen.listens, existing.listen_rules(), out.listen);
    const std::vector<std::string>& allowed = existing.confinement().syscalls.allow;
    for (const auto& [name, use] : seen.syscalls)
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
            out.syscalls.push_back({name, provenance(use)});
    if (seen.exec.calls > 0 && !existing.confinement().exec) out.exec = provenance(seen.exec);
    return out;
}

}  // namespace fdbroker::broker::learn
