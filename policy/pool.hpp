// A supervised pool (serve mode): the workers a profile asks the broker to start and keep running.
// Parsed from the profile keys `command`, `instances` and `restart` (docs/policy.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/confinement.hpp"

namespace fdbroker::policy {

enum class Restart : std::uint8_t { always, on_failure, never };

// The largest pool a profile may declare: each instance costs the broker a process, a channel, a
// seccomp listener and an output pipe.
inline constexpr std::uint32_t kMaxInstances = 64;

struct Pool {
    std::vector<std::string> command;  // empty: the profile declares no pool
    std::uint32_t instances = 1;
    Restart restart = Restart::on_failure;

    [[nodiscard]] bool declared() const noexcept { return !command.empty(); }
};

// Parses one profile key if it is a pool key; false if the key is not one of them.
bool load_pool_setting(std::string_view key, const toml::node& value, Pool& out, const ErrorSink& error);

[[nodiscard]] std::string_view restart_name(Restart restart) noexcept;

}  // namespace fdbroker::policy
