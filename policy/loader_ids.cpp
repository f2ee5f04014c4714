// The policy loader's identities: `user`, `group` and serve mode's `clients`, as names or numbers.
#include <algorithm>
#include <charconv>
#include <limits>
#include <system_error>

#include "policy/accounts.hpp"
#include "policy/loader.hpp"

namespace fdbroker::policy {

namespace {

// uid_t and gid_t are 32 bits, and (uid_t)-1 means "no change" to setresuid: never a real identity.
constexpr std::int64_t max_id = 0xFFFFFFFELL;

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

}  // namespace

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

}  // namespace fdbroker::policy
