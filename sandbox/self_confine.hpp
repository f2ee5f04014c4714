// The broker's own confinement, applied once its set-up is done (serve mode): only the capabilities
// its policy needs, no_new_privs, and a seccomp filter refusing what a broker never has to do.
#pragma once

#include <string>

namespace fdbroker::sandbox {

struct BrokerNeeds {
    bool spawns_workers = false;   // pools: exec, namespaces, identity switches, signals to other uids
    bool binds_low_ports = false;  // a listen rule below port 1024
};

// Returns 0, or an errno value with `error` naming the step that failed. A broker that is not root
// holds no capabilities to drop; it still gets no_new_privs and the filter.
[[nodiscard]] int confine_broker(const BrokerNeeds& needs, std::string& error);

// The capabilities confine_broker keeps for `needs`, by name (for the log and the tests).
[[nodiscard]] std::string kept_capabilities(const BrokerNeeds& needs);

}  // namespace fdbroker::sandbox
