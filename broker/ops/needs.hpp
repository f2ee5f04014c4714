// What an operation needs from the policy (docs/policy.md, "Decisions"), as Need bits: the permission
// a worker asked for, which the audit stream records and `fdbroker explain` judges. Socket operations
// need a socket rule instead, and ask for no Need bit (0).
#pragma once

#include <cstdint>

#include "broker/ops/operation.hpp"

namespace fdbroker::broker {

[[nodiscard]] std::uint8_t needs_of(const op::Operation& operation) noexcept;

// access(2)'s mode: R_OK needs read, W_OK write; F_OK and X_OK only need the path to be visible.
[[nodiscard]] std::uint8_t access_needs(std::uint32_t mode) noexcept;

}  // namespace fdbroker::broker
