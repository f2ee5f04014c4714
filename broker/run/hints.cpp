#include "broker/run/hints.hpp"

#include <unistd.h>

#include "broker/core/log.hpp"

namespace fdbroker::broker {

void explain_failure(const RunOptions& options, const policy::Profile& profile, const Denials& denials,
                     int status) noexcept {
    if (status == 0 || ::isatty(STDERR_FILENO) != 1) return;
    const char* program = options.argv.empty() ? "the program" : options.argv.front().c_str();
    if (!options.transparent && denials.decisions() == 0) {
        // In library mode only libfdbroker asks the broker; an ordinary program's own opens meet
        // Landlock and the filter (EACCES) and never reach it.
        log("%s never asked the broker for anything: if it does not use libfdbroker, run it with "
            "fdbroker run --transparent",
            program);
    } else if (options.transparent && !profile.includes_runtime() && !denials.loader_path().empty()) {
        log("the dynamic loader was refused %s before %s could start: add include = [\"runtime\"] to "
            "profile '%s'",
            denials.loader_path().c_str(), program, profile.name().c_str());
    }
    if (!denials.verbose() && denials.denied() > 0)
        log("%llu request%s denied, the first: %s (fdbroker run -v lists each distinct denial)",
            static_cast<unsigned long long>(denials.denied()), denials.denied() == 1 ? " was" : "s were",
            denials.first().c_str());
}

std::string profile_names(const policy::Policy& policy) {
    const auto& profiles = policy.profiles();
    if (profiles.empty()) return "the policy has no profiles";
    std::string names = profiles.size() == 1 ? "the only profile is " : "its profiles are ";
    for (std::size_t i = 0; i < profiles.size(); ++i) {
        if (i > 0) names += i + 1 == profiles.size() ? " and " : ", ";
        names += "'" + profiles[i].name() + "'";
    }
    return names;
}

}  // namespace fdbroker::broker
