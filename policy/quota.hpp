// How much of the broker one user's processes may hold at once: the profile key `quota`
// (docs/policy.md, "Quotas"). Every limit counts per uid, across all the channels and workers of that
// uid that the broker serves; a limit the profile leaves out takes its default (quota_defaults()).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "policy/confinement.hpp"

namespace fdbroker::policy {

struct Quota {
    // Channels open at once: private channels, and serve-mode connections. Over it: attach and
    // connect are refused with EMFILE.
    std::optional<std::uint32_t> channels;
    // TCP connects in progress at once. Over it: EAGAIN.
    std::optional<std::uint32_t> connects;
    // Requests being performed at once (a request is "in flight" while a file system makes it wait).
    // Over it: the user's further requests wait their turn (their channels are not read meanwhile).
    std::optional<std::uint32_t> requests;
    // Descriptors sent to the user's processes and not yet received by them. Over it: the channels
    // holding them are not read until their processes take what was sent.
    std::optional<std::uint32_t> descriptors;
    // Requests per second (a token bucket holding one second's worth); 0: no limit. Over it: requests
    // wait for their turn, like over `requests`.
    std::optional<std::uint32_t> rate;
};

// The limits in force, every one set.
struct QuotaLimits {
    std::uint32_t channels;
    std::uint32_t connects;
    std::uint32_t requests;
    std::uint32_t descriptors;
    std::uint32_t rate;  // 0: none
};

// The defaults for a broker that may hold `descriptor_budget` descriptors (its RLIMIT_NOFILE): each
// the smaller of a fixed number and a share of the budget, so that no one user can take more than a
// fraction of the broker's descriptors (or of the kernel's count of descriptors in flight, which is
// compared with the same limit).
[[nodiscard]] QuotaLimits quota_defaults(std::uint64_t descriptor_budget) noexcept;
// What `quota` sets, and the defaults for the rest.
[[nodiscard]] QuotaLimits resolve(const Quota& quota, const QuotaLimits& defaults) noexcept;

// Parses the profile key `quota`; false if the key is another one.
bool load_quota_setting(std::string_view key, const toml::node& value, Quota& out, const ErrorSink& error);

}  // namespace fdbroker::policy
