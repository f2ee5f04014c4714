/* What confinement and authentication cost a floor, for P1's context row (FLOOR_CONFINED=1): each
 * side of the floor pair under a libseccomp filter (one rule; the kernel's cache lets every other call
 * through, as most of fdbroker's calls are), the broker receiving the sender's credentials with each
 * message (SO_PASSCRED) and opening with the resolution flags fdbroker uses. What fdbroker does beyond
 * this pair is its own work: decoding, the policy, the audit, the reply's framing. */
#ifndef FDBROKER_BENCH_FLOOR_CONFINE_H
#define FDBROKER_BENCH_FLOOR_CONFINE_H

#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

static inline int floor_confined(void) {
    const char* v = getenv("FLOOR_CONFINED");
    return v != NULL && strcmp(v, "1") == 0;
}

/* no_new_privs and a filter that refuses one call nobody makes. 0 or an errno value. */
static inline int floor_confine(void) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) return ENOMEM;
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(acct), 0);
    if (rc == 0) rc = seccomp_load(ctx); /* SCMP_FLTATR_CTL_NNP is on by default */
    seccomp_release(ctx);
    return -rc;
}

#endif
