#include "broker/channels/startup.hpp"

#include <sys/prctl.h>

#include <cerrno>
#include <cstring>

#include "broker/core/log.hpp"
#include "sandbox/landlock.hpp"

namespace fdbroker::broker {

std::shared_ptr<const policy::Policy> load_policy(const std::string& file) {
    policy::LoadResult loaded = policy::Policy::load_file(file);
    for (const auto& d : loaded.errors)
        log("%s", d.str().c_str());
    return std::move(loaded.policy);
}

bool open_audit(const std::string& target, Audit& audit, int dash) {
    if (target.empty()) return true;
    std::string error;
    audit = Audit::open(target, error, dash);
    if (audit.enabled()) return true;
    log("%s", error.c_str());
    return false;
}

bool landlock_for(const char* workers) {
    if (sandbox::landlock_abi() != 0) return true;
    log("this kernel has no Landlock (or it is disabled): refusing to run %s less confined than the policy "
        "says",
        workers);
    return false;
}

bool take_signals(std::span<const int> signals, sigset_t& handled) {
    ::signal(SIGPIPE, SIG_IGN);
    sigemptyset(&handled);
    for (const int sig : signals)
        sigaddset(&handled, sig);
    if (::sigprocmask(SIG_BLOCK, &handled, nullptr) == 0 && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
        return true;
    log("setting up signals: %s", std::strerror(errno));
    return false;
}

}  // namespace fdbroker::broker
