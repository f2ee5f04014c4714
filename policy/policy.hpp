// A loaded, validated policy: named profiles, each with its rules compiled into one Matcher.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/address.hpp"
#include "policy/confinement.hpp"
#include "policy/matcher.hpp"
#include "policy/pool.hpp"
#include "policy/quota.hpp"

namespace fdbroker::policy {

// One problem in a policy file, printed as "FILE:LINE:COL: error: MESSAGE".
struct Diagnostic {
    std::string file;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    std::string message;
    [[nodiscard]] std::string str() const;
};

// What a request needs from the rules (Contract 4). `any` is satisfied by any one of read, write or
// create (stat, readlink, access F_OK); the others must all be granted.
enum Need : std::uint8_t { need_read = 1, need_write = 2, need_create = 4, need_any = 8 };

struct Decision {
    bool allowed = false;
    // The deciding rule: for a denial the deny rule that matched (nullptr: nothing granted it, the
    // default deny); for an allow, the granting rule with the longest anchor.
    const Rule* rule = nullptr;
};

// The decision on a socket request (docs/policy.md, "Socket rules").
enum class SocketUse : std::uint8_t { connect, listen };
struct SocketDecision {
    bool allowed = false;
    const AddressRule* rule = nullptr;  // the granting rule: the first in file order that covers it
    const Rule* deny = nullptr;         // a `deny` pattern that refused a unix socket path
    int error = 0;                      // EINVAL: not a request address; EACCES: refused; 0: granted
    // connect: the address was unspecified (0.0.0.0, [::]) and is judged as the loopback address it
    // reaches, which `address` now holds.
    bool reaches_loopback = false;
};

// How long the broker waits for a TCP connection to be established before failing it with ETIMEDOUT,
// unless the profile sets `connect_timeout`.
inline constexpr std::chrono::milliseconds kDefaultConnectTimeout{10'000};

class Profile {
  public:
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    // Identity for spawned workers; empty when the policy leaves it to the default ("nobody").
    [[nodiscard]] std::optional<uid_t> uid() const noexcept { return uid_; }
    [[nodiscard]] std::optional<gid_t> gid() const noexcept { return gid_; }
    [[nodiscard]] const std::vector<Rule>& rules() const noexcept { return rules_; }
    [[nodiscard]] const std::vector<AddressRule>& connect_rules() const noexcept { return connect_; }
    [[nodiscard]] const std::vector<AddressRule>& listen_rules() const noexcept { return listen_; }
    [[nodiscard]] std::chrono::milliseconds connect_timeout() const noexcept { return connect_timeout_; }
    // Whether the profile acknowledges that its datagram sockets may send anywhere (`datagram_reach`).
    [[nodiscard]] DatagramReach datagram_reach() const noexcept { return confinement_.datagram_reach; }
    [[nodiscard]] const std::vector<uid_t>& client_users() const noexcept { return client_users_; }
    [[nodiscard]] const std::vector<gid_t>& client_groups() const noexcept { return client_groups_; }
    [[nodiscard]] const Confinement& confinement() const noexcept { return confinement_; }
    // The workers serve mode starts and keeps running for this profile (none unless `command` is set).
    [[nodiscard]] const Pool& pool() const noexcept { return pool_; }
    // What one user's processes may hold of the broker at once (unset limits: the broker's defaults).
    [[nodiscard]] const Quota& quota() const noexcept { return quota_; }
    // Whether a listen rule reaches below port 1024 (the broker then needs CAP_NET_BIND_SERVICE).
    [[nodiscard]] bool listens_below_1024() const noexcept;
    // Whether the profile says `include = ["runtime"]` (for fdbroker run's hints).
    [[nodiscard]] bool includes_runtime() const noexcept { return includes_runtime_; }
    // How a denied path operation looks to its workers (`denied_paths`).
    [[nodiscard]] policy::DeniedPaths denied_paths() const noexcept { return confinement_.denied_paths; }

    // path must be normal absolute (see path.hpp); anything else is denied with no rule.
    // needs is a combination of Need bits. need_any alone is also met by a directory on the way to
    // what a rule grants (lookup only). Never allocates.
    [[nodiscard]] Decision decide(std::string_view path, std::uint8_t needs) const noexcept;
    // Whether every kind `needs` asks for is granted by a rule that names `path` exactly, without any
    // wildcard: what a FIFO or a device needs, since opening one can wait or have effects of its own.
    [[nodiscard]] bool grants_exactly(std::string_view path, std::uint8_t needs) const noexcept;
    // No amplification: may an object move (rename) from one normal absolute path to another without
    // gaining a permission? Its new name must grant nothing the old one did not; a directory carries
    // its whole subtree along, so beneath both names every path must get the same rules whatever its
    // name (no deny, nor an allow of another kind, reaches only part of either subtree), and the new
    // subtree may gain nothing either. A refusal names the rule that made the difference.
    [[nodiscard]] Decision decide_move(std::string_view from, std::string_view to,
                                       bool directory) const noexcept;
    // Parses `text` (a request address, e.g. "tcp:127.0.0.1:80") into `address` and judges it by the
    // connect or listen rules; a unix socket path is also refused by a matching `deny` pattern. Never
    // allocates.
    [[nodiscard]] SocketDecision decide_socket(SocketUse use, std::string_view text,
                                               SocketAddress& address) const noexcept;

  private:
    friend class Loader;
    [[nodiscard]] Decision on_the_way(std::string_view path) const noexcept;

    std::string name_;
    std::optional<uid_t> uid_;
    std::optional<gid_t> gid_;
    std::vector<Rule> rules_;
    Matcher matcher_;
    std::vector<AddressRule> connect_;
    std::vector<AddressRule> listen_;
    std::chrono::milliseconds connect_timeout_ = kDefaultConnectTimeout;
    std::vector<uid_t> client_users_;
    std::vector<gid_t> client_groups_;
    Confinement confinement_;
    bool includes_runtime_ = false;
    Pool pool_;
    Quota quota_;
};

class Policy;
struct LoadResult {
    std::shared_ptr<const Policy> policy;  // null when there were errors
    std::vector<Diagnostic> errors;        // every problem found, in file order
};

class Policy {
  public:
    // Reads and validates a policy file; `file` is used verbatim in diagnostics and audit lines.
    [[nodiscard]] static LoadResult load_file(const std::string& file);
    // Same, from text already in memory; `file` names it in diagnostics.
    [[nodiscard]] static LoadResult load_string(std::string_view text, const std::string& file);

    [[nodiscard]] const std::string& file() const noexcept { return file_; }
    [[nodiscard]] const Profile* profile(std::string_view name) const noexcept;
    [[nodiscard]] const std::vector<Profile>& profiles() const noexcept { return profiles_; }

    // Serve mode: the first profile, in file order, whose `clients` name this uid, this gid or one of
    // these supplementary groups; nullptr when none does (the client is refused).
    [[nodiscard]] const Profile* client_profile(uid_t uid, gid_t gid,
                                                std::span<const gid_t> groups) const noexcept;
    // Whether a listen rule reaches below port 1024 (the broker then needs CAP_NET_BIND_SERVICE).
    [[nodiscard]] bool listens_below_1024() const noexcept;
    // Whether a profile declares a pool of workers for serve mode to run.
    [[nodiscard]] bool has_pools() const noexcept;

  private:
    friend class Loader;
    std::string file_;
    std::vector<Profile> profiles_;
};

}  // namespace fdbroker::policy
