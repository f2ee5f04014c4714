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
// One entry of an open_many request, as the Open a single open request decodes to: 0, or the errno
// for that entry (ENAMETOOLONG). The request itself is decoded entry by entry by its caller
// (decode_wire gives it EINVAL), so that each entry is performed and audited as a lone open.
[[nodiscard]] int decode_open_entry(const wire::OpenEntry& entry, op::Operation& out) noexcept;

}  // namespace fdbroker::broker
