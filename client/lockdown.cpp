// fdbroker_lockdown(): the worker filter for a process that confines itself.
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>

#include "fdbroker/fdbroker.h"
#include "sandbox/seccomp_filter.hpp"

extern "C" int fdbroker_lockdown(const char* preset) {
    if (preset != nullptr && !fdbroker::policy::is_syscall_preset(preset)) {
        errno = EINVAL;
        return -1;
    }
    // seccomp for an unprivileged process requires no_new_privs, and it is right for a worker anyway.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    fdbroker::policy::SyscallRules rules;
    const fdbroker::sandbox::FilterResult r =
        fdbroker::sandbox::load_worker_filter(rules, {.action = fdbroker::sandbox::FilterAction::kill});
    if (r.error != 0) {
        errno = r.error;
        return -1;
    }
    return 0;
}
