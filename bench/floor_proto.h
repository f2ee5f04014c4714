/* The floor broker's wire format: as small as a brokered open can be. */
#ifndef FDBROKER_BENCH_FLOOR_PROTO_H
#define FDBROKER_BENCH_FLOOR_PROTO_H

#include <limits.h>
#include <stdint.h>

struct floor_request {
    uint32_t flags;      /* open(2) flags */
    char path[PATH_MAX]; /* not NUL-terminated on the wire: the message length ends it */
};

#endif
