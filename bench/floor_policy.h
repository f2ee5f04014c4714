/* fdbroker's own policy decision, for the floor broker built as floor_broker_policy: the row that
 * pays every obligation of fdbroker's broker that the kernel sees (confinement, credentials, openat2's
 * resolution flags, a worker confined by fdbroker) plus the decision itself, and nothing of fdbroker's
 * request path (framing, sessions, quotas, audit, the library's side). */
#ifndef FDBROKER_BENCH_FLOOR_POLICY_H
#define FDBROKER_BENCH_FLOOR_POLICY_H

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the policy file and picks its profile `default`. Returns 0, or -1 (with a message on stderr). */
int floor_policy_load(const char* file);
/* Whether the profile grants opening `path` (NUL-terminated) with the open(2) `flags`, as decided by
 * policy::Profile::decide(). */
int floor_policy_allows(const char* path, int flags);

#ifdef __cplusplus
}
#endif

#endif
