#include "policy/kernel_reads.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "policy/text.hpp"

namespace fdbroker::policy {

namespace {

constexpr std::string_view kKeep = ", or keep reads = \"broker\"";

bool is_glob(std::string_view component) noexcept {
    return component.find_first_of("*?") != std::string_view::npos;
}

// Whether `path` is `dir` or lies beneath it (both normal absolute).
bool at_or_beneath(std::string_view path, std::string_view dir) noexcept {
    if (dir == "/") return true;
    return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

// A tree "DIR/**" whose DIR has no wildcard: DIR; otherwise nothing.
std::optional<std::string> tree_anchor(const Pattern& pattern) {
    const std::vector<std::string>& components = pattern.components();
    if (components.empty() || components.back() != "**") return std::nullopt;
    std::string anchor;
    for (std::size_t i = 0; i + 1 < components.size(); ++i) {
        if (is_glob(components[i])) return std::nullopt;
        anchor += '/';
        anchor += components[i];
    }
    return anchor.empty() ? std::string("/") : anchor;
}

// Trees the kernel tier never grants: the broker opens devices only when a rule names them exactly,
// and a tree in /proc reaches other processes' entries. "/" holds them all.
bool special_tree(std::string_view anchor) noexcept {
    return anchor == "/" || at_or_beneath(anchor, "/dev") || at_or_beneath(anchor, "/proc") ||
           at_or_beneath(anchor, "/sys");
}

struct Candidate {
    KernelRead grant;
    const Rule* rule;
};

// The grant for one rule that gives reading; nullopt (and a problem) when Landlock cannot express it.
std::optional<KernelRead> grant_for(const Rule& rule, PathProbe probe,
                                    std::vector<KernelReadProblem>& problems) {
    const std::string& text = rule.pattern.text();
    const std::string subject = "read rule " + quote(text);
    if (rule.pattern.literal()) {
        switch (probe(text)) {
            case PathKind::directory:
                problems.push_back(
                    {&rule, subject +
                                " names a directory, which the kernel cannot let the worker list "
                                "without reading what lies beneath: write " +
                                quote(text == "/" ? "/**" : text + "/**") + std::string(kKeep)});
                return std::nullopt;
            case PathKind::symlink:
                problems.push_back(
                    {&rule, subject +
                                " names a symbolic link, and the kernel judges the file it leads "
                                "to: name that file instead" +
                                std::string(kKeep)});
                return std::nullopt;
            case PathKind::absent:
            case PathKind::file:
                return KernelRead{text, false};
        }
    }
    const std::optional<std::string> anchor = tree_anchor(rule.pattern);
    if (!anchor) {
        problems.push_back({&rule, subject +
                                       " cannot be enforced by the kernel: Landlock grants only a path named "
                                       "exactly or a whole tree 'DIR/**' with no wildcard in DIR" +
                                       std::string(kKeep)});
        return std::nullopt;
    }
    if (special_tree(*anchor)) {
        problems.push_back(
            {&rule, subject +
                        " is a tree in /dev, /proc or /sys (or holds them), which the kernel tier "
                        "does not grant: the broker opens devices only when a rule names them, "
                        "and /proc reaches other processes; name the files exactly" +
                        std::string(kKeep)});
        return std::nullopt;
    }
    return KernelRead{*anchor, true};
}

// The built-in runtime rules are the runtime paths the worker's Landlock domain grants anyway: each
// as a tree (their exact-path twins name the same thing), except "/" exactly, a directory, which the
// kernel tier leaves out (a read-only open of "/" without O_DIRECTORY is then refused; opendir
// reaches the broker, which grants it).
std::optional<KernelRead> builtin_grant(const Rule& rule) {
    if (rule.pattern.literal()) return std::nullopt;
    const std::optional<std::string> anchor = tree_anchor(rule.pattern);
    if (!anchor) return std::nullopt;
    return KernelRead{*anchor, true};
}

// The include's deny only keeps to what the worker's user may read natively (a directory only its
// owner and root may read), which the kernel tier enforces by itself: true for a user that may.
bool may_read_natively(std::optional<uid_t> uid, const Pattern& deny) {
    if (uid == std::optional<uid_t>(0)) return true;
    std::string dir = deny.text();
    if (dir.ends_with("/**")) dir.resize(dir.size() - 3);
    struct ::stat st {};
    return uid.has_value() && ::stat(dir.c_str(), &st) == 0 && st.st_uid == *uid;
}

void check_denies(const KernelReadInput& input, const std::vector<Candidate>& candidates,
                  std::vector<KernelReadProblem>& problems) {
    bool builtin_reported = false;
    for (const Rule& deny : input.rules) {
        if (deny.kind != RuleKind::deny) continue;
        const auto reached = std::find_if(candidates.begin(), candidates.end(), [&deny](const Candidate& c) {
            return may_match_at_or_beneath(deny.pattern, c.grant.path);
        });
        if (reached == candidates.end()) continue;
        if (!deny.builtin) {
            problems.push_back({&deny, "deny rule " + quote(deny.pattern.text()) +
                                           " takes back part of what read rule " +
                                           quote(reached->rule->pattern.text()) +
                                           " grants, which the kernel cannot: Landlock has no exceptions" +
                                           std::string(kKeep)});
        } else if (!builtin_reported && may_read_natively(input.uid, deny.pattern)) {
            builtin_reported = true;
            problems.push_back({nullptr,
                                "reads = \"kernel\" with include = [\"runtime\"] needs a worker user "
                                "other than root and other than the owner of " +
                                    quote(deny.pattern.text()) +
                                    ": only the user's own permissions keep it from the worker in the "
                                    "kernel tier"});
        }
    }
}

void check_runtime(const KernelReadInput& input, const std::vector<Candidate>& candidates,
                   std::vector<KernelReadProblem>& problems) {
    if (input.confinement.runtime_builtin && !input.includes_runtime)
        problems.push_back({nullptr,
                            "reads = \"kernel\" needs include = [\"runtime\"] (or runtime_builtin = "
                            "false): the worker reads its built-in runtime paths by itself, and the "
                            "kernel tier must grant nothing the broker would refuse"});
    for (const std::string& path : input.confinement.runtime) {
        const bool covered = std::any_of(candidates.begin(), candidates.end(), [&path](const Candidate& c) {
            return c.grant.tree && at_or_beneath(path, c.grant.path);
        });
        if (!covered)
            problems.push_back(
                {nullptr, "runtime path " + quote(path) +
                              " is readable by the worker by itself; with reads = \"kernel\" the "
                              "profile must grant it too: read = [" +
                              quote(path == "/" ? "/**" : path + "/**") + "]"});
    }
}

}  // namespace

bool may_match_at_or_beneath(const Pattern& pattern, std::string_view path) noexcept {
    const std::vector<std::string>& components = pattern.components();
    std::size_t i = 0;
    for (std::size_t start = 1; path.size() > 1 && start <= path.size(); ++i) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        if (i < components.size() && components[i] == "**") return true;
        // The pattern ends above `path`: it matches an ancestor only.
        if (i >= components.size() || !glob_component_match(components[i], path.substr(start, end - start)))
            return false;
        start = end + 1;
    }
    return true;
}

std::vector<KernelRead> kernel_read_set(const KernelReadInput& input, PathProbe probe,
                                        std::vector<KernelReadProblem>& problems) {
    std::vector<Candidate> candidates;
    for (const Rule& rule : input.rules) {
        if (rule.kind != RuleKind::read) continue;
        const std::optional<KernelRead> grant =
            rule.builtin ? builtin_grant(rule) : grant_for(rule, probe, problems);
        if (grant) candidates.push_back({*grant, &rule});
    }
    check_denies(input, candidates, problems);
    check_runtime(input, candidates, problems);
    std::vector<KernelRead> grants;
    if (!problems.empty()) return grants;
    grants.reserve(candidates.size());
    for (const Candidate& c : candidates) {
        if (std::find(grants.begin(), grants.end(), c.grant) == grants.end()) grants.push_back(c.grant);
    }
    return grants;
}

PathKind probe_path(const std::string& path) {
    struct ::stat st {};
    if (::lstat(path.c_str(), &st) != 0) return PathKind::absent;
    if (S_ISLNK(st.st_mode)) return PathKind::symlink;
    return S_ISDIR(st.st_mode) ? PathKind::directory : PathKind::file;
}

}  // namespace fdbroker::policy
