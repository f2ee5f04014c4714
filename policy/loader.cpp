// Reading a policy file: TOML syntax is toml++'s business; everything after that (schema, patterns,
// identities) is checked here, collecting every problem with its position rather than stopping at the
// first, so that `fdbroker check` shows an administrator the whole list at once.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <limits>
#include <system_error>
#include <utility>
#include <variant>

#include <toml++/toml.h>

#include "policy/accounts.hpp"
#include "policy/policy.hpp"
#include "policy/text.hpp"

namespace fdbroker::policy {

namespace {

constexpr std::int64_t supported_version = 1;
// uid_t and gid_t are 32 bits, and (uid_t)-1 means "no change" to setresuid: never a real identity.
constexpr std::int64_t max_id = 0xFFFFFFFELL;

using Entry = std::pair<const toml::key*, const toml::node*>;

bool before(const toml::source_position& a, const toml::source_position& b) noexcept {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
}

// toml++ keeps tables sorted by key; rules must be numbered, and errors reported, in file order.
std::vector<Entry> in_file_order(const toml::table& table) {
    std::vector<Entry> entries;
    for (const auto& [key, node] : table)
        entries.emplace_back(&key, &node);
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return before(a.first->source().begin, b.first->source().begin);
    });
    return entries;
}

bool is_profile_name(std::string_view name) noexcept {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-';
    });
}

// `connect_timeout` bounds: a zero timeout could never connect, and past an hour the kernel's own TCP
// retries have long given up.
constexpr std::chrono::milliseconds min_connect_timeout{1};
constexpr std::chrono::milliseconds max_connect_timeout{3'600'000};

// A string of decimal digits is a numeric id, as in chown(1). Huge values saturate so they are
// reported as out of range rather than looked up as names.
std::optional<std::uint64_t> digits_value(std::string_view text) noexcept {
    if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    if (result.ec != std::errc()) return std::numeric_limits<std::uint64_t>::max();
    return value;
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

enum class IdKind { user, group };

// A user or group as written: a number, or a name still to be looked up.
using IdValue = std::variant<std::uint32_t, std::string>;

}  // namespace

class Loader {
  public:
    Loader(std::string file, std::string_view source) : file_(std::move(file)), source_(source) {}

    LoadResult load();

  private:
    struct UserSetting {
        uid_t uid = 0;
        std::optional<gid_t> primary_gid;  // known when the user was named
        const toml::node* value = nullptr;
    };

    void error(const toml::source_position& at, std::string message);
    void error(const toml::node& node, std::string message) {
        error(node.source().begin, std::move(message));
    }
    void error(const toml::key& key, std::string message) { error(key.source().begin, std::move(message)); }

    [[nodiscard]] bool check_version(const toml::table& root);
    void load_root(const toml::table& root, Policy& policy);
    void load_profiles(const toml::node& value, Policy& policy);
    [[nodiscard]] Profile load_profile(const toml::key& name, const toml::table& table);
    void load_setting(const toml::key& key, const toml::node& value, Profile& profile,
                      std::optional<UserSetting>& user, bool& has_group);
    void load_patterns(const toml::key& key, const toml::node& value, RuleKind kind, Profile& profile);
    void load_addresses(const toml::key& key, const toml::node& value, std::vector<AddressRule>& out);
    [[nodiscard]] std::optional<AddressRule> address_rule(const toml::key& key,
                                                          const toml::value<std::string>& element);
    void load_listen_table(const toml::key& key, const toml::table& table, std::vector<AddressRule>& out);
    [[nodiscard]] std::optional<mode_t> socket_mode(const toml::node& value);
    void load_connect_timeout(const toml::node& value, Profile& profile);
    void load_clients(const toml::node& value, Profile& profile);
    template <typename Id>
    void load_id_list(const toml::key& key, const toml::node& value, IdKind kind, std::vector<Id>& out);
    void default_group(const UserSetting& user, Profile& profile);

    [[nodiscard]] std::optional<IdValue> id_value(const toml::node& value, std::string_view key, IdKind kind,
                                                  const std::string& wrong_type);
    [[nodiscard]] std::optional<UserSetting> resolve_user(const toml::node& value, std::string_view key,
                                                          const std::string& wrong_type);
    [[nodiscard]] std::optional<gid_t> resolve_group(const toml::node& value, std::string_view key,
                                                     const std::string& wrong_type);
    [[nodiscard]] std::vector<const toml::value<std::string>*> strings(const toml::key& key,
                                                                       const toml::node& value);

    std::string file_;
    std::string_view source_;
    std::vector<Diagnostic> errors_;
};

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
    for (std::size_t i = 0; i < profile.rules_.size(); ++i) {
        const Rule& rule = profile.rules_[i];
        profile.matcher_.add(rule.pattern, rule.kind, static_cast<std::int32_t>(i));
    }
    return profile;
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
    } else if (name == "connect") {
        load_addresses(key, value, profile.connect_);
    } else if (name == "listen") {
        load_addresses(key, value, profile.listen_);
    } else if (name == "connect_timeout") {
        load_connect_timeout(value, profile);
    } else if (name == "clients") {
        load_clients(value, profile);
    } else if (name == "user") {
        user = resolve_user(value, name, "'user' must be a user name or a numeric uid");
        if (user) profile.uid_ = user->uid;
    } else if (name == "group") {
        has_group = true;  // even when invalid: a bad group must not be silently replaced by a default
        if (auto gid = resolve_group(value, name, "'group' must be a group name or a numeric gid"))
            profile.gid_ = *gid;
    } else if (!load_confinement_setting(name, value, profile.confinement_,
                                         [this](const toml::source_position& at, std::string message) {
                                             error(at, std::move(message));
                                         })) {
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

// `connect` takes address strings; `listen` also takes tables, which say how a unix socket file is set up.
void Loader::load_addresses(const toml::key& key, const toml::node& value, std::vector<AddressRule>& out) {
    const bool listen = key.str() == "listen";
    const std::string wrong_type =
        quote(key.str()) + (listen ? " must be an array of addresses (strings, or tables with 'address')"
                                   : " must be an array of strings");
    const toml::array* array = value.as_array();
    if (array == nullptr) {
        error(value, wrong_type);
        return;
    }
    for (const toml::node& element : *array) {
        if (const auto* string = element.as_string()) {
            if (std::optional<AddressRule> rule = address_rule(key, *string)) out.push_back(std::move(*rule));
        } else if (const toml::table* table = listen ? element.as_table() : nullptr) {
            load_listen_table(key, *table, out);
        } else {
            error(element, wrong_type);
        }
    }
}

std::optional<AddressRule> Loader::address_rule(const toml::key& key,
                                                const toml::value<std::string>& element) {
    const std::string& text = element.get();
    const toml::source_position at = element.source().begin;
    AddressPattern::Error problem;
    std::optional<AddressPattern> address = AddressPattern::parse(text, problem);
    if (!address) {
        const std::uint32_t column = string_value_column(source_, at.line, at.column, problem.offset);
        error(toml::source_position{at.line, column},
              quote(key.str()) + " address " + quote(text) + " " + problem.message);
        return std::nullopt;
    }
    return AddressRule{text, at.line, at.column, std::move(*address), {}};
}

// { address = "unix:/run/app.sock", mode = "0660", user = "app", group = "app" }
void Loader::load_listen_table(const toml::key& key, const toml::table& table,
                               std::vector<AddressRule>& out) {
    std::optional<AddressRule> rule;
    if (const toml::node* address = table.get("address")) {
        if (const auto* string = address->as_string()) {
            rule = address_rule(key, *string);
        } else {
            error(*address, "'address' must be a string");
        }
    } else {
        error(table,
              "a " + quote(key.str()) + " table needs 'address', e.g. { address = \"unix:/run/app.sock\" }");
    }
    SocketFile file;
    bool has_group = false;
    std::optional<gid_t> primary_gid;
    for (const auto& [entry_key, entry] : in_file_order(table)) {
        const std::string_view name = entry_key->str();
        if (name == "address") continue;
        if (name == "mode") {
            file.mode = socket_mode(*entry);
        } else if (name == "user") {
            if (auto user = resolve_user(*entry, name, "'user' must be a user name or a numeric uid")) {
                file.uid = user->uid;
                primary_gid = user->primary_gid;
            }
        } else if (name == "group") {
            has_group = true;
            file.gid = resolve_group(*entry, name, "'group' must be a group name or a numeric gid");
        } else {
            error(*entry_key, "unknown key " + quote(name) + " in a " + quote(key.str()) +
                                  " table (expected 'address', 'mode', 'user' or 'group')");
            continue;
        }
        // Only a unix path has a file to own: a port or an abstract name has no mode.
        if (rule && rule->address.transport() != Transport::unix_path)
            error(*entry_key, quote(name) + " applies only to unix path sockets (unix:/path)");
    }
    // As for a profile's user: a named user brings its primary group.
    if (!has_group) file.gid = primary_gid;
    if (!rule) return;
    rule->file = file;
    out.push_back(std::move(*rule));
}

// A socket file's permission bits, written "0660" or 0o660: octal, so that nobody writes 660 meaning 0660.
std::optional<mode_t> Loader::socket_mode(const toml::node& value) {
    if (const auto* string = value.as_string()) {
        const std::string& text = string->get();
        unsigned mode = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), mode, 8);
        if (!text.empty() && text.size() <= 4 && text.front() != '-' && text.front() != '+' &&
            ec == std::errc() && end == text.data() + text.size() && mode <= 0777)
            return static_cast<mode_t>(mode);
    } else if (const auto* integer = value.as_integer()) {
        const bool octal = (integer->flags() & toml::value_flags::format_as_octal) != toml::value_flags::none;
        if (octal && integer->get() >= 0 && integer->get() <= 0777)
            return static_cast<mode_t>(integer->get());
    }
    error(value,
          "'mode' must be permission bits in octal, from \"0000\" to \"0777\": a string such as \"0660\" "
          "or an octal integer such as 0o660");
    return std::nullopt;
}

// A whole number of seconds (5), or a string with a unit ("5s", "500ms").
void Loader::load_connect_timeout(const toml::node& value, Profile& profile) {
    std::optional<std::chrono::milliseconds> timeout;
    if (const auto* integer = value.as_integer()) {
        if (integer->get() >= 0 && integer->get() <= max_connect_timeout.count() / 1000)
            timeout = std::chrono::seconds(integer->get());
    } else if (const auto* string = value.as_string()) {
        std::string_view text = string->get();
        std::int64_t scale = 0;
        if (text.ends_with("ms")) {
            scale = 1;
            text.remove_suffix(2);
        } else if (text.ends_with("s")) {
            scale = 1000;
            text.remove_suffix(1);
        }
        std::int64_t number = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (scale != 0 && !text.empty() && text.front() != '-' && ec == std::errc() &&
            end == text.data() + text.size() && number <= max_connect_timeout.count() / scale)
            timeout = std::chrono::milliseconds(number * scale);
    }
    if (!timeout || *timeout < min_connect_timeout || *timeout > max_connect_timeout) {
        error(value,
              "'connect_timeout' must be a whole number of seconds (5) or a string with a unit "
              "(\"5s\", \"500ms\"), from 1 ms to 3600 s");
        return;
    }
    profile.connect_timeout_ = *timeout;
}

void Loader::load_clients(const toml::node& value, Profile& profile) {
    const toml::table* table = value.as_table();
    if (table == nullptr) {
        error(value, "'clients' must be a table, e.g. { users = [\"name\"], groups = [\"name\"] }");
        return;
    }
    for (const auto& [key, list] : in_file_order(*table)) {
        if (key->str() == "users") {
            load_id_list(*key, *list, IdKind::user, profile.client_users_);
        } else if (key->str() == "groups") {
            load_id_list(*key, *list, IdKind::group, profile.client_groups_);
        } else {
            error(*key,
                  "unknown key " + quote(key->str()) + " in 'clients' of profile " + quote(profile.name_));
        }
    }
}

template <typename Id>
void Loader::load_id_list(const toml::key& key, const toml::node& value, IdKind kind, std::vector<Id>& out) {
    const std::string wrong_type =
        quote(key.str()) + (kind == IdKind::user ? " must be an array of user names or numeric uids"
                                                 : " must be an array of group names or numeric gids");
    const toml::array* array = value.as_array();
    if (array == nullptr) {
        error(value, wrong_type);
        return;
    }
    for (const toml::node& element : *array) {
        if (kind == IdKind::user) {
            if (auto user = resolve_user(element, key.str(), wrong_type)) out.push_back(user->uid);
        } else {
            if (auto gid = resolve_group(element, key.str(), wrong_type)) out.push_back(*gid);
        }
    }
}

// Workers need a group as well as a user; a named user brings its primary group, a bare uid only if
// the user database knows it. Guessing would be worse than asking for 'group'.
void Loader::default_group(const UserSetting& user, Profile& profile) {
    if (user.primary_gid) {
        profile.gid_ = *user.primary_gid;
        return;
    }
    Account account;
    LookupError failure;
    switch (find_uid(user.uid, account, failure)) {
        case Lookup::found:
            profile.gid_ = account.primary_gid;
            return;
        case Lookup::not_found:
            error(*user.value,
                  "uid " + std::to_string(user.uid) +
                      " has no entry in the user database, so it has no primary group: set 'group'");
            return;
        case Lookup::failed:
            error(*user.value, "cannot look up uid " + std::to_string(user.uid) + ": " +
                                   std::generic_category().message(failure.errno_value));
            return;
    }
}

// What a user or group value says, or nullopt after reporting why it says nothing usable.
// `wrong_type` is the message for a value that is neither a string nor an integer.
std::optional<IdValue> Loader::id_value(const toml::node& value, std::string_view key, IdKind kind,
                                        const std::string& wrong_type) {
    std::int64_t number = 0;
    std::string written;  // as the administrator wrote it, for the out-of-range message
    if (const auto* integer = value.as_integer()) {
        number = integer->get();
        written = std::to_string(number);
    } else if (const auto* string = value.as_string()) {
        const std::string& text = string->get();
        if (text.empty()) {
            error(value, std::string(kind == IdKind::user ? "empty user name" : "empty group name") + " in " +
                             quote(key));
            return std::nullopt;
        }
        const std::optional<std::uint64_t> digits = digits_value(text);
        if (!digits) return IdValue(text);
        number = static_cast<std::int64_t>(std::min<std::uint64_t>(*digits, max_id + 1));
        written = text;
    } else {
        error(value, wrong_type);
        return std::nullopt;
    }
    if (number < 0 || number > max_id) {
        error(value, std::string(kind == IdKind::user ? "uid " : "gid ") + written +
                         " is out of range (0 to 4294967294)");
        return std::nullopt;
    }
    return IdValue(static_cast<std::uint32_t>(number));
}

std::optional<Loader::UserSetting> Loader::resolve_user(const toml::node& value, std::string_view key,
                                                        const std::string& wrong_type) {
    const std::optional<IdValue> id = id_value(value, key, IdKind::user, wrong_type);
    if (!id) return std::nullopt;
    if (const auto* number = std::get_if<std::uint32_t>(&*id))
        return UserSetting{*number, std::nullopt, &value};
    const std::string& name = std::get<std::string>(*id);
    Account account;
    LookupError failure;
    switch (find_user(name, account, failure)) {
        case Lookup::found:
            return UserSetting{account.uid, account.primary_gid, &value};
        case Lookup::not_found:
            error(value, "unknown user " + quote(name));
            return std::nullopt;
        case Lookup::failed:
            error(value, "cannot look up user " + quote(name) + ": " +
                             std::generic_category().message(failure.errno_value));
            return std::nullopt;
    }
    return std::nullopt;
}

std::optional<gid_t> Loader::resolve_group(const toml::node& value, std::string_view key,
                                           const std::string& wrong_type) {
    const std::optional<IdValue> id = id_value(value, key, IdKind::group, wrong_type);
    if (!id) return std::nullopt;
    if (const auto* number = std::get_if<std::uint32_t>(&*id)) return *number;
    const std::string& name = std::get<std::string>(*id);
    gid_t gid = 0;
    LookupError failure;
    switch (find_group(name, gid, failure)) {
        case Lookup::found:
            return gid;
        case Lookup::not_found:
            error(value, "unknown group " + quote(name));
            return std::nullopt;
        case Lookup::failed:
            error(value, "cannot look up group " + quote(name) + ": " +
                             std::generic_category().message(failure.errno_value));
            return std::nullopt;
    }
    return std::nullopt;
}

namespace {

// Closes the descriptor on every way out of read_whole_file.
struct FdCloser {
    int fd;
    ~FdCloser() {
        if (fd >= 0) ::close(fd);
    }
};

// Reads all of `file` into `text`; on failure returns the errno value, else 0.
int read_whole_file(const std::string& file, std::string& text) {
    const FdCloser guard{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
    if (guard.fd < 0) return errno;
    std::array<char, 65536> buffer{};
    for (;;) {
        const ssize_t n = ::read(guard.fd, buffer.data(), buffer.size());
        if (n == 0) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        text.append(buffer.data(), static_cast<std::size_t>(n));
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
