#include "sandbox/identity.hpp"

#include <cap-ng.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace fdbroker::sandbox {

namespace {

constexpr uid_t kNobodyFallback = 65534;

gid_t primary_gid(uid_t uid) {
    const passwd* pw = ::getpwuid(uid);
    return pw ? pw->pw_gid : kNobodyFallback;
}

// Reads back what the kernel holds for this process: every capability set and the bounding set must be
// empty. (libcap-ng reads /proc/<getpid()>, which in a new pid namespace is another process's entry, so
// the check asks the kernel directly; only reading, the switch itself is libcap-ng's.)
bool holds_any_capability() noexcept {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (::syscall(SYS_capget, &header, data) != 0) return true;
    for (const auto& d : data)
        if (d.effective || d.permitted || d.inheritable) return true;
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
        if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) return true;
    return false;
}

}  // namespace

Identity Identity::for_worker(std::optional<uid_t> uid, std::optional<gid_t> gid, std::string& note) {
    if (::geteuid() != 0) {
        if (uid && *uid != ::geteuid())
            note = "not running as root: the worker keeps the broker's uid " + std::to_string(::geteuid()) +
                   " instead of the profile's " + std::to_string(*uid);
        return Identity(::geteuid(), ::getegid(), false);
    }
    if (uid) return Identity(*uid, gid.value_or(primary_gid(*uid)), true);
    // nobody, with its own primary group: one lookup gives both (each one reads the system's user
    // database, as much of a worker's start as loading its seccomp filter).
    const passwd* pw = ::getpwnam("nobody");
    const uid_t u = pw ? pw->pw_uid : kNobodyFallback;
    return Identity(u, gid.value_or(pw ? pw->pw_gid : kNobodyFallback), true);
}

int Identity::apply() const noexcept {
    if (!switches_) return 0;
    // Empty every capability set; capng_change_id then switches ids, drops supplementary groups and
    // clears the bounding set so that nothing exec'd later can gain capabilities back.
    // libcap-ng remembers the pid it first ran in; in a child of a broker that used it already (serve
    // mode confines itself before it starts pools) that is the parent, whose sets capset refuses.
    capng_setpid(::getpid());
    capng_clear(CAPNG_SELECT_ALL);
    const int rc = capng_change_id(static_cast<int>(uid_), static_cast<int>(gid_),
                                   static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING));
    if (rc != 0) return EPERM;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return errno;

    // Prove the switch is one-way: every id is the new one and going back is refused.
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (::getresuid(&ru, &eu, &su) != 0 || ::getresgid(&rg, &eg, &sg) != 0) return errno;
    if (ru != uid_ || eu != uid_ || su != uid_ || rg != gid_ || eg != gid_ || sg != gid_) return EPERM;
    if (::getgroups(0, nullptr) != 0) return EPERM;
    if (uid_ != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) return EPERM;
    if (uid_ != 0 && holds_any_capability()) return EPERM;
    return 0;
}

}  // namespace fdbroker::sandbox
