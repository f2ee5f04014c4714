#include <algorithm>
#include <array>
#include <cerrno>

#include "policy/path.hpp"
#include "policy/policy.hpp"

namespace fdbroker::policy {

namespace {

constexpr std::uint8_t allow_needs = need_read | need_write | need_create;
constexpr std::uint8_t all_needs = allow_needs | need_any;

struct Grant {
    std::uint8_t need;
    std::int32_t first;
    std::int32_t longest_anchor;
};

std::array<Grant, 3> grants_of(const Match& match) noexcept {
    return {{{need_read, match.read, match.read_longest_anchor},
             {need_write, match.write, match.write_longest_anchor},
             {need_create, match.create, match.create_longest_anchor}}};
}

// Is rule `candidate` a better deciding rule for an allow than rule `current`? The broker opens the
// path beneath the deciding rule's anchor, so the deepest anchor wins; on a tie, the earlier rule, so
// that audit lines name what the administrator wrote first.
bool narrower(const std::vector<Rule>& rules, std::int32_t candidate, std::int32_t current) noexcept {
    const std::size_t a = rules[static_cast<std::size_t>(candidate)].pattern.anchor().size();
    const std::size_t b = rules[static_cast<std::size_t>(current)].pattern.anchor().size();
    return a > b || (a == b && candidate < current);
}

// The allow kinds (as Need bits) a match grants; 0 when a deny matched.
std::uint8_t granted(const Match& match) noexcept {
    if (match.deny >= 0) return 0;
    std::uint8_t needs = 0;
    for (const Grant& grant : grants_of(match))
        if (grant.first >= 0) needs |= grant.need;
    return needs;
}

// The first rule of `match` granting one of `extra` (Need bits).
std::int32_t first_granting(const Match& match, std::uint8_t extra) noexcept {
    std::int32_t first = -1;
    for (const Grant& grant : grants_of(match))
        if ((extra & grant.need) && grant.first >= 0 && (first < 0 || grant.first < first))
            first = grant.first;
    return first;
}

// Beneath's RuleKind bits as Need bits; 0 when every descendant is denied.
std::uint8_t granted(const Beneath& beneath) noexcept {
    constexpr std::uint8_t deny_bit = 1U << static_cast<unsigned>(RuleKind::deny);
    static_assert((1U << static_cast<unsigned>(RuleKind::read)) == need_read &&
                  (1U << static_cast<unsigned>(RuleKind::write)) == need_write &&
                  (1U << static_cast<unsigned>(RuleKind::create)) == need_create);
    return (beneath.kinds & deny_bit) ? 0 : static_cast<std::uint8_t>(beneath.kinds & allow_needs);
}

}  // namespace

std::string Diagnostic::str() const {
    // Problems that concern the file as a whole (it cannot be read) have no position.
    if (line == 0) return file + ": error: " + message;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + message;
}

Decision Profile::decide(std::string_view path, std::uint8_t needs) const noexcept {
    // No needs, or bits nobody defined, mean a caller bug: refusing is the only safe answer.
    if (needs == 0 || (needs & ~all_needs) != 0) return {};
    if (!is_normal_absolute(path)) return {};
    const Match match = matcher_.match(path);
    if (match.deny >= 0) return {false, &rules_[static_cast<std::size_t>(match.deny)]};

    // need_any alone is satisfied by any kind of grant; specific needs must each be granted.
    const bool need_all = (needs & allow_needs) != 0;
    const std::uint8_t wanted = need_all ? static_cast<std::uint8_t>(needs & allow_needs) : allow_needs;
    std::int32_t deciding = -1;
    for (const Grant& grant : grants_of(match)) {
        if ((wanted & grant.need) == 0) continue;
        if (grant.first < 0) {
            if (need_all) return {};
            continue;
        }
        if (deciding < 0 || narrower(rules_, grant.longest_anchor, deciding)) deciding = grant.longest_anchor;
    }
    if (deciding >= 0) return {true, &rules_[static_cast<std::size_t>(deciding)]};
    return need_all ? Decision{} : on_the_way(path);
}

// Directories on the way to what a rule grants may be looked up (stat, access, readlink, an O_PATH
// open), as they must be for the kernel to reach what lies beneath; listing them still needs read.
Decision Profile::on_the_way(std::string_view path) const noexcept {
    for (const Rule& rule : rules_)
        if (rule.kind != RuleKind::deny && rule.pattern.leads_through(path)) return {true, &rule};
    return {};
}

bool Profile::grants_exactly(std::string_view path, std::uint8_t needs) const noexcept {
    if (!is_normal_absolute(path) || (needs & allow_needs) == 0) return false;
    const Match exact = matcher_.exact(path);
    return (granted(exact) & needs & allow_needs) == (needs & allow_needs);
}

Decision Profile::decide_move(std::string_view from, std::string_view to, bool directory) const noexcept {
    if (!is_normal_absolute(from) || !is_normal_absolute(to)) return {};
    auto rule = [this](std::int32_t index) {
        return index >= 0 ? &rules_[static_cast<std::size_t>(index)] : nullptr;
    };
    const Match old_match = matcher_.match(from);
    const Match new_match = matcher_.match(to);
    if (new_match.deny >= 0) return {false, rule(new_match.deny)};
    const std::uint8_t gained = granted(new_match) & ~granted(old_match);
    if (gained) return {false, rule(first_granting(new_match, gained))};
    if (!directory) return {true, nullptr};

    const Beneath old_tree = matcher_.beneath(from);
    if (!old_tree.uniform) return {false, rule(old_tree.differing)};
    const Beneath new_tree = matcher_.beneath(to);
    if (!new_tree.uniform) return {false, rule(new_tree.differing)};
    if (const std::uint8_t more = granted(new_tree) & ~granted(old_tree); more) {
        // The rule to name is one every descendant gets: any name beneath `to` shows it.
        std::array<char, 4100> child{};
        if (to.size() + 2 > child.size()) return {false, nullptr};
        std::copy(to.begin(), to.end(), child.begin());
        std::size_t n = to.size();
        if (n > 1) child[n++] = '/';
        child[n++] = '\x01';
        return {false, rule(first_granting(matcher_.match({child.data(), n}), more))};
    }
    return {true, nullptr};
}

SocketDecision Profile::decide_socket(SocketUse use, std::string_view text,
                                      SocketAddress& address) const noexcept {
    SocketDecision decision;
    if (!parse_socket_address(text, address)) {
        decision.error = EINVAL;
        return decision;
    }
    // A connect to 0.0.0.0 or [::] reaches the local host: it is judged, made and audited as such.
    if (use == SocketUse::connect) decision.reaches_loopback = reach_unspecified_as_loopback(address);
    if (address.transport == Transport::unix_path) {
        // A unix socket path is a path: a `deny` pattern refuses it as it refuses a file there.
        const Decision files = decide(address.name, need_any);
        if (!files.allowed && files.rule != nullptr && files.rule->kind == RuleKind::deny) {
            decision.deny = files.rule;
            decision.error = EACCES;
            return decision;
        }
    }
    decision.rule = find_address_rule(use == SocketUse::connect ? connect_ : listen_, address);
    decision.allowed = decision.rule != nullptr;
    if (!decision.allowed) decision.error = EACCES;
    return decision;
}

const Profile* Policy::profile(std::string_view name) const noexcept {
    for (const Profile& candidate : profiles_) {
        if (candidate.name() == name) return &candidate;
    }
    return nullptr;
}

const Profile* Policy::client_profile(uid_t uid, gid_t gid, std::span<const gid_t> groups) const noexcept {
    auto contains = [](const auto& list, auto id) {
        return std::find(list.begin(), list.end(), id) != list.end();
    };
    for (const Profile& profile : profiles_) {
        if (contains(profile.client_users(), uid) || contains(profile.client_groups(), gid)) return &profile;
        for (const gid_t group : groups)
            if (contains(profile.client_groups(), group)) return &profile;
    }
    return nullptr;
}

bool Profile::listens_below_1024() const noexcept {
    return std::any_of(listen_.begin(), listen_.end(), [](const AddressRule& rule) {
        const Transport t = rule.address.transport();
        return (t == Transport::tcp || t == Transport::udp) && rule.address.lowest_port() < 1024;
    });
}

bool Policy::listens_below_1024() const noexcept {
    return std::any_of(profiles_.begin(), profiles_.end(),
                       [](const Profile& p) { return p.listens_below_1024(); });
}

bool Policy::has_pools() const noexcept {
    return std::any_of(profiles_.begin(), profiles_.end(),
                       [](const Profile& p) { return p.pool().declared(); });
}

}  // namespace fdbroker::policy
