// Reading a policy file: TOML syntax is toml++'s business; everything after that (schema, patterns,
// identities) is checked here, collecting every problem with its position rather than stopping at the
// first, so that `fdbroker check` shows an administrator the whole list at once. Socket rules are read
// in loader_sockets.cpp, users, groups and clients in loader_ids.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>

#include "fdbroker/unique_fd.hpp"
#include "policy/kernel_reads.hpp"
#include "policy/loader.hpp"

namespace fdbroker::policy {

namespace {

constexpr std::int64_t supported_version = 1;

bool before(const toml::source_position& a, const toml::source_position& b) noexcept {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
}

bool is_profile_name(std::string_view name) noexcept {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-';
    });
}

// toml++ phrases a repeated [profile.NAME] as a table redefinition; say what that means here.
std::string syntax_message(std::string_view description) {
    constexpr std::string_view marker = "cannot redefine existing table 'profile.";
    const std::size_t at = description.find(marker);
    if (at == std::string_view::npos) return std::string(description);
    const std::size_t name_start = at + marker.size();
    const std::size_t name_end = description.find('\'', name_start);
    if (name_end == std::string_view::npos) return std::string(description);
    const std::string_view name = description.substr(name_start, name_end - name_start);
    if (name.find('.') != std::string_view::npos) return std::string(description);
    return "duplicate profile '" + std::string(name) + "' (" + std::string(description) + ")";
}

}  // namespace

std::vector<Entry> in_file_order(const toml::table& table) {
    std::vector<Entry> entries;
    for (const auto& [key, node] : table)
        entries.emplace_back(&key, &node);
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return before(a.first->source().begin, b.first->source().begin);
    });
    return entries;
}

void Loader::error(const toml::source_position& at, std::string message) {
    errors_.push_back({file_, at.line, at.column, std::move(message)});
}

LoadResult Loader::load() {
    toml::table root;
    try {
        root = toml::parse(source_, std::string_view(file_));
    } catch (const toml::parse_error& e) {
        // Past a syntax error the document is unknown: that one error is the whole report.
        error(e.source().begin, syntax_message(e.description()));
        return {nullptr, std::move(errors_)};
    }
    if (!check_version(root)) return {nullptr, std::move(errors_)};
    auto policy = std::make_shared<Policy>();
    policy->file_ = file_;
    load_root(root, *policy);
    if (!errors_.empty()) {
        std::stable_sort(errors_.begin(), errors_.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return a.line != b.line ? a.line < b.line : a.column < b.column;
        });
        return {nullptr, std::move(errors_)};
    }
    return {std::move(policy), {}};
}

// False when the file speaks another schema version: its other keys would only produce noise.
bool Loader::check_version(const toml::table& root) {
    const toml::node* version = root.get("version");
    if (version == nullptr) {
        error(toml::source_position{1, 1},
              "missing required key 'version' (this fdbroker reads version = 1)");
        return true;
    }
    const auto* number = version->as_integer();
    if (number == nullptr) {
        error(*version, "'version' must be an integer");
        return true;
    }
    if (number->get() != supported_version) {
        error(*version,
              "unsupported version " + std::to_string(number->get()) + " (this fdbroker reads version 1)");
        return false;
    }
    return true;
}

void Loader::load_root(const toml::table& root, Policy& policy) {
    for (const auto& [key, value] : in_file_order(root)) {
        if (key->str() == "version") continue;  // checked first, by check_version
        if (key->str() == "profile") {
            load_profiles(*value, policy);
        } else {
            error(*key,
                  "unknown key " + quote(key->str()) + " at top level (expected 'version' or 'profile')");
        }
    }
}

void Loader::load_profiles(const toml::node& value, Policy& policy) {
    const toml::table* profiles = value.as_table();
    if (profiles == nullptr) {
        error(value, "'profile' must be a table of profiles, written [profile.NAME]");
        return;
    }
    for (const auto& [name, body] : in_file_order(*profiles)) {
        if (!is_profile_name(name->str())) {
            error(*name,
                  "profile name " + quote(name->str()) + " may contain only letters, digits, '_' and '-'");
        }
        const toml::table* table = body->as_table();
        if (table == nullptr) {
            error(*body, "profile " + quote(name->str()) + " must be a table");
            continue;
        }
        policy.profiles_.push_back(load_profile(*name, *table));
    }
}

Profile Loader::load_profile(const toml::key& name, const toml::table& table) {
    Profile profile;
    profile.name_ = std::string(name.str());
    std::optional<UserSetting> user;
    bool has_group = false;
    for (const auto& [key, value] : in_file_order(table))
        load_setting(*key, *value, profile, user, has_group);
    if (user && !has_group) default_group(*user, profile);
    check_datagram_rules(profile);
    if (!profile.pool_.declared()) {
        for (const char* key : {"instances", "restart"})
            if (const toml::node* value = table.get(key))
                error(*value,
                      quote(key) + " needs 'command': only a pool of workers has instances to restart");
    }
    for (std::size_t i = 0; i < profile.rules_.size(); ++i) {
        const Rule& rule = profile.rules_[i];
        profile.matcher_.add(rule.pattern, rule.kind, static_cast<std::int32_t>(i));
    }
    if (profile.confinement_.reads == ReadTier::kernel) check_kernel_reads(*table.get("reads"), profile);
    if (profile.confinement_.stat == StatTier::kernel) check_kernel_stat(*table.get("stat"), profile);
    return profile;
}

// `stat = "kernel"`: the kernel answers the stat family for any path the worker's user can look up,
// consulting no rule. So it comes only on top of reads = "kernel" (which already lets the kernel say
// which names exist), and only where the profile hides nothing from stat that the kernel would show:
// no deny rule of its own (the runtime include's keep to the user's own permissions) and no
// denied_paths = "absent".
void Loader::check_kernel_stat(const toml::node& stat, const Profile& profile) {
    if (profile.confinement_.reads != ReadTier::kernel)
        error(stat,
              "stat = \"kernel\" needs reads = \"kernel\": it widens what the kernel tier already "
              "reveals (which names exist) to the metadata of anything the worker's user can look up");
    if (profile.confinement_.denied_paths == DeniedPaths::absent)
        error(stat,
              "stat = \"kernel\" cannot keep denied_paths = \"absent\": the kernel's stat shows every "
              "path the worker's user can look up as it is");
    for (const Rule& rule : profile.rules_)
        if (rule.kind == RuleKind::deny && !rule.builtin)
            error(toml::source_position{rule.line, rule.column},
                  "deny rule " + quote(rule.pattern.text()) +
                      " does not hide its paths from stat under stat = \"kernel\", where the kernel answers "
                      "for any path the worker's user can look up: remove it, or keep stat = \"broker\"");
}

// `reads = "kernel"`: the Landlock grants that equal the read set, or every reason there are none.
void Loader::check_kernel_reads(const toml::node& reads, Profile& profile) {
    std::vector<KernelReadProblem> problems;
    profile.confinement_.kernel_reads = kernel_read_set({.rules = profile.rules_,
                                                         .confinement = profile.confinement_,
                                                         .uid = profile.uid_,
                                                         .includes_runtime = profile.includes_runtime_},
                                                        probe_path, problems);
    for (KernelReadProblem& problem : problems) {
        if (problem.rule != nullptr)
            error(toml::source_position{problem.rule->line, problem.rule->column},
                  std::move(problem.message));
        else
            error(reads, std::move(problem.message));
    }
}

void Loader::load_setting(const toml::key& key, const toml::node& value, Profile& profile,
                          std::optional<UserSetting>& user, bool& has_group) {
    const std::string_view name = key.str();
    if (name == "read") {
        load_patterns(key, value, RuleKind::read, profile);
    } else if (name == "write") {
        load_patterns(key, value, RuleKind::write, profile);
    } else if (name == "create") {
        load_patterns(key, value, RuleKind::create, profile);
    } else if (name == "deny") {
        load_patterns(key, value, RuleKind::deny, profile);
    } else if (name == "include") {
        load_includes(key, value, profile);
    } else if (name == "connect") {
        load_addresses(key, value, profile.connect_);
    } else if (name == "listen") {
        load_addresses(key, value, profile.listen_);
    } else if (name == "connect_timeout") {
        load_connect_timeout(value, profile);
    } else if (name == "datagram_reach") {
        load_datagram_reach(value, profile);
    } else if (name == "clients") {
        load_clients(value, profile);
    } else if (name == "user") {
        user = resolve_user(value, name, "'user' must be a user name or a numeric uid");
        if (user) profile.uid_ = user->uid;
    } else if (name == "group") {
        has_group = true;  // even when invalid: a bad group must not be silently replaced by a default
        if (auto gid = resolve_group(value, name, "'group' must be a group name or a numeric gid"))
            profile.gid_ = *gid;
    } else if (const ErrorSink sink = [this](const toml::source_position& at,
                                             std::string message) { error(at, std::move(message)); };
               !load_confinement_setting(name, value, profile.confinement_, sink) &&
               !load_pool_setting(name, value, profile.pool_, sink) &&
               !load_quota_setting(name, value, profile.quota_, sink)) {
        error(key, "unknown key " + quote(name) + " in profile " + quote(profile.name_));
    }
}

// The strings of an array of strings. Anything else is reported, and the strings that are there are
// still returned so that their own problems are found in the same run.
std::vector<const toml::value<std::string>*> Loader::strings(const toml::key& key, const toml::node& value) {
    const std::string message = quote(key.str()) + " must be an array of strings";
    std::vector<const toml::value<std::string>*> found;
    const toml::array* array = value.as_array();
    if (array == nullptr) {
        error(value, message);
        return found;
    }
    for (const toml::node& element : *array) {
        if (const auto* string = element.as_string()) {
            found.push_back(string);
        } else {
            error(element, message);
        }
    }
    return found;
}

void Loader::load_patterns(const toml::key& key, const toml::node& value, RuleKind kind, Profile& profile) {
    for (const toml::value<std::string>* element : strings(key, value)) {
        const toml::source_position at = element->source().begin;
        Pattern::Error problem;
        std::optional<Pattern> pattern = Pattern::parse(element->get(), problem);
        if (!pattern) {
            const std::uint32_t column = string_value_column(source_, at.line, at.column, problem.offset);
            error(toml::source_position{at.line, column}, std::move(problem.message));
            continue;
        }
        profile.rules_.push_back(Rule{kind, std::move(*pattern), at.line, at.column});
    }
}

// `include = ["runtime"]`: read rules for the built-in runtime paths (default_runtime), each path and
// everything beneath it (`P/**`, which matches P itself too), placed where the include is written. /proc/self
// is left out: in the broker it would name the broker, and a worker's own /proc entries are not the broker's
// to hand out.
void Loader::load_includes(const toml::key& key, const toml::node& value, Profile& profile) {
    for (const toml::value<std::string>* element : strings(key, value)) {
        const toml::source_position at = element->source().begin;
        if (element->get() != "runtime") {
            error(at,
                  "unknown include " + quote(element->get()) + " (the only built-in include is \"runtime\")");
            continue;
        }
        profile.includes_runtime_ = true;
        add_runtime_rules(at, profile);
    }
}

void Loader::add_runtime_rules(const toml::source_position& at, Profile& profile) {
    const auto add = [&](RuleKind kind, const std::string& text) {
        Pattern::Error problem;
        if (std::optional<Pattern> pattern = Pattern::parse(text, problem))
            profile.rules_.push_back(Rule{kind, std::move(*pattern), at.line, at.column, true});
    };
    // "/" itself (not beneath it): programs stat or list the root on their way (rm -r checks it is
    // not removing "/", path searches start there); its entries name only top-level directories.
    add(RuleKind::read, "/");
    for (const std::string& path : default_runtime()) {
        if (path == "/proc/self") continue;
        // The path itself, exactly (what a device such as /dev/null needs: the broker opens FIFOs
        // and devices only for rules that name them), and everything beneath it.
        add(RuleKind::read, path);
        add(RuleKind::read, path + "/**");
        if (is_runtime_writable_device(path)) add(RuleKind::write, path);
    }
    // The one directory beneath /usr that Debian keeps from everyone (polkit's local rules): in library
    // mode the broker reads with its own privileges, and the include must not hand out more than the
    // worker's user could read.
    add(RuleKind::deny, "/usr/share/polkit-1/rules.d");
    add(RuleKind::deny, "/usr/share/polkit-1/rules.d/**");
}

namespace {

// Reads all of `file` into `text`; on failure returns the errno value, else 0.
int read_whole_file(const std::string& file, std::string& text) {
    const unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno;
    // Read straight into the text, a page at a time: a large zeroed buffer on the stack would cost a
    // page fault per page at every start, for a file that is usually a few hundred bytes.
    constexpr std::size_t kStep = 4096;
    for (;;) {
        const std::size_t had = text.size();
        text.resize(had + kStep);
        const ssize_t n = ::read(fd.get(), text.data() + had, kStep);
        text.resize(had + static_cast<std::size_t>(n > 0 ? n : 0));
        if (n == 0) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
    }
}

LoadResult failure(const std::string& file, std::string message) {
    LoadResult result;
    result.errors.push_back({file, 0, 0, std::move(message)});
    return result;
}

}  // namespace

LoadResult Policy::load_file(const std::string& file) {
    try {
        std::string text;
        if (const int code = read_whole_file(file, text); code != 0) {
            return failure(file, "cannot read policy file: " + std::generic_category().message(code));
        }
        return Loader(file, text).load();
    } catch (const std::exception& e) {
        return failure(file, std::string("cannot load policy: ") + e.what());
    }
}

LoadResult Policy::load_string(std::string_view text, const std::string& file) {
    // Nothing may escape: a reload in a long-running broker must be able to keep the old policy.
    try {
        return Loader(file, text).load();
    } catch (const std::exception& e) {
        return failure(file, std::string("cannot load policy: ") + e.what());
    }
}

}  // namespace fdbroker::policy
