// Library mode's decode step: a request frame (already checked by wire::decode_request) as the
// Operation that perform.hpp performs. The frame's paths are absolute already (libfdbroker makes them
// so), and an Operation holds its own copy, so it outlives the receive buffer.
#pragma once

#include "broker/ops/operation.hpp"
#include "proto/wire.hpp"

namespace fdbroker::broker {

// Fills `out` from `request`: 0, or the errno for the reply, with `out` then never to be performed:
// ENAMETOOLONG for a path that does not fit, ENOMEM, EINVAL for an attach (the session answers those).
[[nodiscard]] int decode_wire(const wire::Request& request, op::Operation& out) noexcept;

}  // namespace fdbroker::broker
