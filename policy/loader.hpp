// The policy loader's internals, shared by the files that hold its parts: loader.cpp (the TOML walk,
// profiles and path rules), loader_sockets.cpp (connect and listen rules) and loader_ids.cpp (users,
// groups and clients).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <toml++/toml.h>

#include "policy/policy.hpp"
#include "policy/text.hpp"

namespace fdbroker::policy {

using Entry = std::pair<const toml::key*, const toml::node*>;

// toml++ keeps tables sorted by key; rules must be numbered, and errors reported, in file order.
std::vector<Entry> in_file_order(const toml::table& table);

enum class IdKind { user, group };

// A user or group as written: a number, or a name still to be looked up.
using IdValue = std::variant<std::uint32_t, std::string>;

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
    void load_includes(const toml::key& key, const toml::node& value, Profile& profile);
    void check_kernel_reads(const toml::node& reads, Profile& profile);
    void check_kernel_stat(const toml::node& stat, const Profile& profile);
    static void add_runtime_rules(const toml::source_position& at, Profile& profile);
    void load_addresses(const toml::key& key, const toml::node& value, std::vector<AddressRule>& out);
    [[nodiscard]] std::optional<AddressRule> address_rule(const toml::key& key,
                                                          const toml::value<std::string>& element);
    void load_listen_table(const toml::key& key, const toml::table& table, std::vector<AddressRule>& out);
    [[nodiscard]] std::optional<mode_t> socket_mode(const toml::node& value);
    void load_connect_timeout(const toml::node& value, Profile& profile);
    [[nodiscard]] bool load_dual_stack(const toml::node& value, const AddressPattern* address);
    void load_datagram_reach(const toml::node& value, Profile& profile);
    void check_datagram_rules(const Profile& profile);
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

}  // namespace fdbroker::policy
