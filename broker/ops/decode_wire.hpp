// Library mode's decode step: a request frame (already checked by wire::decode_request) as the
// Operation that perform.hpp performs. The frame's paths are absolute already (libfdbroker makes them
// so), and an Operation holds its own copy, so it outlives the receive buffer.
#pragma once

#include "broker/ops/operation.hpp"
#include "proto/wire.hpp"

namespace fdbroker::broker {

// Fills `out` from `request`; false (out left empty) for an op that is no operation (attach) or a path
// that does not fit.
[[nodiscard]] bool decode_wire(const wire::Request& request, op::Operation& out) noexcept;

}  // namespace fdbroker::broker
