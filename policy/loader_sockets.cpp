// The policy loader's socket rules: `connect`, `listen` (strings, or tables for a unix socket file's
// mode and owner, or a dual-stack [::] listener), `connect_timeout` and `datagram_reach`.
#include <charconv>
#include <chrono>

#include "policy/loader.hpp"

namespace fdbroker::policy {

namespace {

// `connect_timeout` bounds: a zero timeout could never connect, and past an hour the kernel's own TCP
// retries have long given up.
constexpr std::chrono::milliseconds min_connect_timeout{1};
constexpr std::chrono::milliseconds max_connect_timeout{3'600'000};

}  // namespace

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
    bool dual_stack = false;
    std::optional<gid_t> primary_gid;
    for (const auto& [entry_key, entry] : in_file_order(table)) {
        const std::string_view name = entry_key->str();
        if (name == "address") continue;
        if (name == "dual_stack") {
            dual_stack = load_dual_stack(*entry, rule ? &rule->address : nullptr);
            continue;
        }
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
                                  " table (expected 'address', 'mode', 'user', 'group' or 'dual_stack')");
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
    rule->dual_stack = dual_stack;
    out.push_back(std::move(*rule));
}

// `dual_stack = true`: a [::] listener that also accepts IPv4 clients. Every other IPv6 socket the
// broker binds is IPv6-only, so an IPv4 client is let in only where a rule says so in these words.
bool Loader::load_dual_stack(const toml::node& value, const AddressPattern* address) {
    const auto* flag = value.as_boolean();
    if (flag == nullptr) {
        error(value, "'dual_stack' must be true or false");
        return false;
    }
    if (address != nullptr && !address->is_ipv6_any()) {
        error(value,
              "'dual_stack' applies only to the IPv6 any-address (tcp:[::]:PORT or udp:[::]:PORT): "
              "only a socket bound there can also accept IPv4 clients");
        return false;
    }
    return flag->get();
}

// `datagram_reach = "peer"` (the default) or `"any"`.
void Loader::load_datagram_reach(const toml::node& value, Profile& profile) {
    const auto* text = value.as_string();
    if (text != nullptr && (text->get() == "peer" || text->get() == "any")) {
        profile.confinement_.datagram_reach = text->get() == "any" ? DatagramReach::any : DatagramReach::peer;
        return;
    }
    error(value,
          "'datagram_reach' must be \"peer\" (the default: datagram sockets are not granted) or \"any\" "
          "(udp: rules and unix datagram servers are granted, and may send to any address)");
    // The rules this key was meant for are not reported again as needing it.
    profile.confinement_.datagram_reach = DatagramReach::any;
}

// A datagram socket sends wherever sendto() or sendmsg() names, whatever peer it was connected or bound
// to, and sendmsg's address lies in memory the worker's filter cannot read: a udp: rule would silently
// grant every address. So it needs the profile to say that it means this.
void Loader::check_datagram_rules(const Profile& profile) {
    if (profile.confinement_.datagram_reach == DatagramReach::any) return;
    for (const auto* rules : {&profile.connect_, &profile.listen_}) {
        const std::string kind = rules == &profile.connect_ ? "'connect'" : "'listen'";
        for (const AddressRule& rule : *rules) {
            if (rule.address.transport() != Transport::udp) continue;
            const std::uint32_t column = string_value_column(source_, rule.line, rule.column, 0);
            error(toml::source_position{rule.line, column},
                  kind + " address " + quote(rule.text) +
                      " is a UDP socket, which can send datagrams to any address, not only this one; "
                      "to grant it anyway, set datagram_reach = \"any\" in profile " +
                      quote(profile.name_));
        }
    }
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

}  // namespace fdbroker::policy
