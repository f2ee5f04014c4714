#include "sandbox/identity.hpp"

#include <cap-ng.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>

namespace fdbroker::sandbox {

namespace {

constexpr uid_t kNobodyFallback = 65534;

uid_t nobody_uid() {
    const passwd* pw = ::getpwnam("nobody");
    return pw ? pw->pw_uid : kNobodyFallback;
}

gid_t primary_gid(uid_t uid) {
    const passwd* pw = ::getpwuid(uid);
    return pw ? pw->pw_gid : kNobodyFallback;
}

}  // namespace

Identity Identity::for_worker(std::optional<uid_t> uid, std::optional<gid_t> gid, std::string& note) {
    if (::geteuid() != 0) {
        if (uid && *uid != ::geteuid())
            note = "not running as root: the worker keeps the broker's uid " + std::to_string(::geteuid()) +
                   " instead of the profile's " + std::to_string(*uid);
        return Identity(::geteuid(), ::getegid(), false);
    }
    const uid_t u = uid.value_or(nobody_uid());
    const gid_t g = gid.value_or(primary_gid(u));
    return Identity(u, g, true);
}

int Identity::apply() const noexcept {
    if (!switches_) return 0;
    // Empty every capability set; capng_change_id then switches ids, drops supplementary groups and
    // clears the bounding set so that nothing exec'd later can gain capabilities back.
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
    if (uid_ != 0) {
        // Read back what the kernel holds, not libcap-ng's copy.
        if (capng_get_caps_process() != 0) return EPERM;
        if (capng_have_capabilities(CAPNG_SELECT_BOTH) != CAPNG_NONE) return EPERM;
    }
    return 0;
}

}  // namespace fdbroker::sandbox
