// Why a profile decides what it decides: every rule that matches a request, not only the one that
// decides it. `fdbroker explain` asks this; the broker never does. The decision itself always comes
// from Profile::decide and Profile::decide_socket, so an explanation cannot disagree with the broker:
// this only adds the rules the decision's index does not need to report.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "policy/address.hpp"
#include "policy/matcher.hpp"
#include "policy/policy.hpp"

namespace fdbroker::policy {

// Every file rule of `profile` (read, write, create, deny) whose pattern matches `path`, in file order.
// Linear in the number of rules, and allocates: for explaining, never for deciding. A path that is not
// normal absolute matches nothing.
[[nodiscard]] std::vector<const Rule*> rules_matching(const Profile& profile, std::string_view path);

// Every socket rule of `rules` that covers `address`, in file order.
[[nodiscard]] std::vector<const AddressRule*> address_rules_matching(std::span<const AddressRule> rules,
                                                                     const SocketAddress& address);

// Why Profile::decide answered as it did.
enum class Why : std::uint8_t {
    not_normal,  // the path is not absolute and normal: nothing matches it
    deny_wins,   // a deny pattern matches: it beats every grant
    granted,     // every kind needed is granted by a matching rule
    on_the_way,  // a lookup (need "any") of a directory on the way to what a rule grants
    no_grant,    // no matching rule grants some kind needed (the default deny)
};

struct PathExplanation {
    Decision decision;  // Profile::decide's own answer
    Why why = Why::no_grant;
    std::uint8_t missing = 0;           // no_grant: the Need bits no matching rule grants
    std::vector<const Rule*> matching;  // rules_matching(path)
};

// Profile::decide(path, needs), with every matching rule and the reason. `needs` as for decide.
[[nodiscard]] PathExplanation explain_path(const Profile& profile, std::string_view path, std::uint8_t needs);

// "read", "write+create", "any": the Need bits as `fdbroker explain` and the audit stream write them.
[[nodiscard]] std::string needs_text(std::uint8_t needs);

}  // namespace fdbroker::policy
