#include "policy/quota.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <string>

#include "policy/text.hpp"

namespace fdbroker::policy {

namespace {

constexpr std::int64_t kMaxLimit = 1'000'000;

std::uint32_t share(std::uint64_t budget, std::uint64_t divisor, std::uint32_t cap, std::uint32_t floor) {
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(budget / divisor, floor, cap));
}

}  // namespace

QuotaLimits quota_defaults(std::uint64_t budget) noexcept {
    // A channel costs the broker two descriptors (the socket and its owner's pidfd), a pending connect
    // two (the socket and its timer); descriptors in flight count against the same RLIMIT_NOFILE in the
    // kernel. One user gets at most an eighth of the budget for each.
    return QuotaLimits{
        .channels = share(budget, 16, 256, 4),
        .connects = share(budget, 32, 64, 2),
        .requests = 32,
        .descriptors = share(budget, 8, 256, 8),
        .rate = 0,
    };
}

QuotaLimits resolve(const Quota& quota, const QuotaLimits& defaults) noexcept {
    return QuotaLimits{
        .channels = quota.channels.value_or(defaults.channels),
        .connects = quota.connects.value_or(defaults.connects),
        .requests = quota.requests.value_or(defaults.requests),
        .descriptors = quota.descriptors.value_or(defaults.descriptors),
        .rate = quota.rate.value_or(defaults.rate),
    };
}

bool load_quota_setting(std::string_view key, const toml::node& value, Quota& out, const ErrorSink& error) {
    if (key != "quota") return false;
    const toml::table* table = value.as_table();
    if (table == nullptr) {
        error(value.source().begin,
              "'quota' must be a table, e.g. quota = { channels = 64, requests = 16, rate = 1000 }");
        return true;
    }
    for (const auto& [name, limit] : *table) {
        std::optional<std::uint32_t>* field = name == "channels"      ? &out.channels
                                              : name == "connects"    ? &out.connects
                                              : name == "requests"    ? &out.requests
                                              : name == "descriptors" ? &out.descriptors
                                              : name == "rate"        ? &out.rate
                                                                      : nullptr;
        if (field == nullptr) {
            error(name.source().begin, "unknown key " + quote(name.str()) +
                                           " in 'quota' (expected 'channels', 'connects', 'requests', "
                                           "'descriptors' or 'rate')");
            continue;
        }
        const auto* n = limit.as_integer();
        const std::int64_t low = name == "rate" ? 0 : 1;
        if (n == nullptr || n->get() < low || n->get() > kMaxLimit) {
            error(limit.source().begin, "'quota." + std::string(name.str()) + "' must be an integer from " +
                                            std::to_string(low) + " to " + std::to_string(kMaxLimit));
            continue;
        }
        *field = static_cast<std::uint32_t>(n->get());
    }
    return true;
}

}  // namespace fdbroker::policy
