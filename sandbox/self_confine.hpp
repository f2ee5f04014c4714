// The broker's own confinement, applied once its set-up is done (serve mode, and run mode once the
// worker is started): only the capabilities its policy needs, no_new_privs, and a seccomp filter
// refusing what a broker never has to do.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

namespace fdbroker::sandbox {

struct BrokerNeeds {
    bool spawns_workers = false;       // pools: exec, namespaces, identity switches
    bool signals_workers = false;      // workers run as another user: forwarded signals, violation kills
    bool binds_low_ports = false;      // a listen rule below port 1024
    bool reads_worker_memory = false;  // transparent mode: /proc/PID/mem and pidfd_getfd
};

struct Confined {
    int error = 0;        // 0, or an errno value
    std::string step;     // what failed
    std::string kept;     // capability names, for the log
    std::string missing;  // capabilities `needs` asks for that the broker was started without
};

// Keeps the capabilities `needs` asks for that the broker holds (a service manager may have withheld
// some: what they serve then fails with EPERM, and `missing` names them), drops every other one from
// every set, then sets no_new_privs and loads the filter. A broker that is not root holds no
// capabilities; it still gets no_new_privs and the filter.
[[nodiscard]] Confined confine_broker(const BrokerNeeds& needs);

// The broker's filter for `needs` as libseccomp compiles it now (what the build compiles ahead of
// time, prebuilt_filters.hpp). 0 or an errno value. Throws std::bad_alloc only.
[[nodiscard]] int compile_broker_filter(const BrokerNeeds& needs, std::vector<sock_filter>& program);

}  // namespace fdbroker::sandbox
