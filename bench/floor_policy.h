/* What fdbroker's broker must do beyond the confined floor (floor_confine.h), for the floor programs
 * built as floor_broker_policy and notif_floor_policy: decide each request by fdbroker's own policy
 * engine, and run a second thread beside the loop, as fdbroker's watchdog does (it hands the loop over
 * when a request is stuck in a file system). What is left above such a floor is fdbroker's request
 * path: framing, sessions, quotas, audit, the event loop, the library's side of a call. */
#ifndef FDBROKER_BENCH_FLOOR_POLICY_H
#define FDBROKER_BENCH_FLOOR_POLICY_H

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the policy file named by FLOOR_POLICY, picks its profile `default` and starts the idle second
 * thread. Returns 0, or -1 with a message on stderr. */
int floor_policy_start(void);
/* Whether the profile grants opening `path` (NUL-terminated) with the open(2) `flags`, as decided by
 * policy::Profile::decide(). */
int floor_policy_allows(const char* path, int flags);

#ifdef __cplusplus
}
#endif

#endif
