#include "sandbox/self_confine.hpp"

#include <cap-ng.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "sandbox/prebuilt_filters.hpp"
#include "sandbox/seccomp_filter.hpp"

namespace fdbroker::sandbox {

namespace {

std::vector<unsigned> capabilities_for(const BrokerNeeds& needs) {
    // Opening, creating and handing over files as root for workers of any uid, and giving what it
    // creates to the worker that asked; unix connects made with the worker's effective ids.
    std::vector<unsigned> caps{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
                               CAP_CHOWN,        CAP_SETUID,          CAP_SETGID};
    if (needs.binds_low_ports) caps.push_back(CAP_NET_BIND_SERVICE);
    // Signalling workers that run as another user (forwarded signals, kills for violations).
    if (needs.signals_workers || needs.spawns_workers) caps.push_back(CAP_KILL);
    // Pools: namespaces at clone time, and clearing the workers' bounding sets.
    if (needs.spawns_workers) caps.insert(caps.end(), {CAP_SYS_ADMIN, CAP_SETPCAP});
    // Transparent mode: another user's /proc/PID/mem and descriptors need ptrace-level access.
    if (needs.reads_worker_memory) caps.push_back(CAP_SYS_PTRACE);
    return caps;
}

std::string names(const std::vector<unsigned>& caps) {
    std::string out;
    for (const unsigned cap : caps) {
        if (!out.empty()) out += ' ';
        const char* name = capng_capability_to_name(cap);
        out += name ? name : std::to_string(cap);
    }
    return out;
}

int drop_capabilities(const BrokerNeeds& needs, Confined& result) {
    if (::geteuid() != 0) {
        result.kept = "none (not root)";
        return 0;
    }
    // A root broker needs no supplementary groups (its capabilities decide what it may open), and the
    // worker's identity its threads take for an operation must carry none of them: dropped once here
    // rather than around every operation, which costs two credential changes each time.
    if (::setgroups(0, nullptr) != 0) return EPERM;
    // libcap-ng's state belongs to the thread, which the keeper ran on too (containment.cpp): name
    // this process before reading its sets.
    capng_setpid(::getpid());
    if (capng_get_caps_process() != 0) return EPERM;
    std::vector<unsigned> keep, missing;
    for (const unsigned cap : capabilities_for(needs))
        (capng_have_capability(CAPNG_PERMITTED, cap) ? keep : missing).push_back(cap);
    // Without CAP_SETPCAP (a unit's CapabilityBoundingSet= lacks it) the bounding set cannot shrink,
    // and libcap-ng would say so on stderr at every start. It then stays as the broker was started
    // with: it bounds only what an exec could gain, and workers exec as their user with no_new_privs.
    const bool bounds = capng_have_capability(CAPNG_PERMITTED, CAP_SETPCAP) != 0;
    capng_clear(CAPNG_SELECT_ALL);
    for (const unsigned cap : keep)
        if (capng_update(CAPNG_ADD,
                         static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
                         cap) != 0)
            return EINVAL;
    // Bounding set first (while CAP_SETPCAP is still held), then the other sets; ambient ones cleared.
    const auto sets =
        static_cast<capng_select_t>(bounds ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT);
    if (capng_apply(sets) != 0) return EPERM;
    result.kept = keep.empty() ? "none" : names(keep);
    result.missing = names(missing);
    return 0;
}

// System calls a broker has no use for: the kernel's administration interfaces, other processes'
// memory, and the paths around file permissions. Refused with EPERM (not killed: a broker that
// crashes takes every worker's service with it).
constexpr const char* kRefused[] = {
    "ptrace",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "chroot",
    "setns",
    "swapon",
    "swapoff",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "iopl",
    "ioperm",
    "uselib",
    "vhangup",
    "open_by_handle_at",
    "name_to_handle_at",
    "sethostname",
    "setdomainname",
    "fanotify_init",
    "lookup_dcookie",
    "personality",
    "modify_ldt",
};
// Needed only in transparent mode: taking the worker's own sockets, reading its memory.
constexpr const char* kRefusedUnlessReadingWorkers[] = {"pidfd_getfd", "process_vm_readv"};
// Needed only to start pool workers (exec for their program; unshare, below, for their namespaces).
constexpr const char* kRefusedWithoutWorkers[] = {"execve", "execveat"};

// The broker's filter; it depends on `spawns_workers` and `reads_worker_memory` only.
FilterContext broker_filter(const BrokerNeeds& needs, int& error) {
    FilterContext ctx = new_filter(SCMP_ACT_ALLOW);
    if (!ctx) {
        error = ENOMEM;
        return ctx;
    }
    auto refuse = [&](const char* name) {
        const int nr = seccomp_syscall_resolve_name(name);
        // A name this architecture does not have (iopl on arm64) has nothing to refuse.
        return nr == __NR_SCMP_ERROR ? 0 : -seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    };
    auto failed = [&error](int err) {
        error = err;
        return FilterContext();
    };
    for (const char* name : kRefused)
        if (const int err = refuse(name); err != 0) return failed(err);
    if (!needs.spawns_workers) {
        for (const char* name : kRefusedWithoutWorkers)
            if (const int err = refuse(name); err != 0) return failed(err);
        // Pool workers' namespaces are made by their children (which inherit this filter); without
        // pools the broker unshares nothing but its helper threads' file-system context (umask).
        const scmp_arg_cmp other = SCMP_A0(SCMP_CMP_NE, static_cast<scmp_datum_t>(CLONE_FS));
        if (const int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM),
                                            seccomp_syscall_resolve_name("unshare"), 1, other);
            rc != 0)
            return failed(-rc);
    }
    if (!needs.reads_worker_memory)
        for (const char* name : kRefusedUnlessReadingWorkers)
            if (const int err = refuse(name); err != 0) return failed(err);
    return ctx;
}

int load_filter(const BrokerNeeds& needs) {
    // Compiled at build time where it can be (prebuilt_filters.hpp).
    unique_fd none;
    const std::size_t variant = broker_variant(needs.spawns_workers, needs.reads_worker_memory);
    if (const std::span<const sock_filter> prebuilt = prebuilt_broker_filter(variant); !prebuilt.empty())
        return load_program(prebuilt, /*notify=*/false, 0, none);
    int error = 0;
    const FilterContext ctx = broker_filter(needs, error);
    return ctx ? -seccomp_load(ctx.get()) : error;
}

}  // namespace

int compile_broker_filter(const BrokerNeeds& needs, std::vector<sock_filter>& program) {
    int error = 0;
    const FilterContext ctx = broker_filter(needs, error);
    return ctx ? export_program(ctx.get(), program) : error;
}

Confined confine_broker(const BrokerNeeds& needs) {
    Confined result;
    if (const int err = drop_capabilities(needs, result); err != 0) {
        result.error = err;
        result.step = "dropping capabilities";
    } else if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        result.error = errno;
        result.step = "setting no_new_privs";
    } else if (const int failed = load_filter(needs); failed != 0) {
        result.error = failed;
        result.step = "loading the broker's seccomp filter";
    }
    return result;
}

}  // namespace fdbroker::sandbox
