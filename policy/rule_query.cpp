#include "policy/rule_query.hpp"

#include <string>

#include "policy/path.hpp"

namespace fdbroker::policy {

namespace {

// The Need bit an allow rule of this kind grants (0 for deny).
std::uint8_t need_of(RuleKind kind) noexcept {
    switch (kind) {
        case RuleKind::read:
            return need_read;
        case RuleKind::write:
            return need_write;
        case RuleKind::create:
            return need_create;
        case RuleKind::deny:
            break;
    }
    return 0;
}

}  // namespace

std::vector<const Rule*> rules_matching(const Profile& profile, std::string_view path) {
    std::vector<const Rule*> out;
    if (!is_normal_absolute(path)) return out;
    for (const Rule& rule : profile.rules())
        if (pattern_matches(rule.pattern, path)) out.push_back(&rule);
    return out;
}

std::vector<const AddressRule*> address_rules_matching(std::span<const AddressRule> rules,
                                                       const SocketAddress& address) {
    std::vector<const AddressRule*> out;
    for (const AddressRule& rule : rules)
        if (rule.address.matches(address)) out.push_back(&rule);
    return out;
}

PathExplanation explain_path(const Profile& profile, std::string_view path, std::uint8_t needs) {
    PathExplanation e;
    e.decision = profile.decide(path, needs);
    e.matching = rules_matching(profile, path);
    if (!is_normal_absolute(path)) {
        e.why = Why::not_normal;
        return e;
    }
    std::uint8_t granted = 0;
    for (const Rule* rule : e.matching) {
        if (rule->kind == RuleKind::deny) {
            e.why = Why::deny_wins;
            return e;
        }
        granted |= need_of(rule->kind);
    }
    const std::uint8_t specific = needs & (need_read | need_write | need_create);
    if (specific != 0) {
        e.missing = static_cast<std::uint8_t>(specific & ~granted);
        e.why = e.missing == 0 ? Why::granted : Why::no_grant;
    } else if (granted != 0) {
        e.why = Why::granted;
    } else {
        e.why = e.decision.allowed ? Why::on_the_way : Why::no_grant;
        if (!e.decision.allowed) e.missing = need_any;
    }
    return e;
}

std::string needs_text(std::uint8_t needs) {
    std::string out;
    const auto add = [&out](const char* word) {
        if (!out.empty()) out += '+';
        out += word;
    };
    if (needs & need_read) add("read");
    if (needs & need_write) add("write");
    if (needs & need_create) add("create");
    if (needs & need_any && out.empty()) add("any");
    return out;
}

}  // namespace fdbroker::policy
