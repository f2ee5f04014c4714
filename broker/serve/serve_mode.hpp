// `fdbroker serve`: a long-running broker that accepts workers on a unix socket (profile chosen by the
// client's credentials), runs the pools its policy declares, reloads on SIGHUP and drains on SIGTERM.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace fdbroker::broker {

struct ServeOptions {
    std::string policy_file;
    std::string socket;  // empty: the default address (ServeSocket::default_address)
    mode_t socket_mode = 0660;
    std::optional<gid_t> socket_group;
    std::string audit;     // empty: no audit stream
    bool verbose = false;  // -v: a line on stderr per distinct denial (broker/core/denials.hpp)
};

// Returns 0 after a SIGTERM/SIGINT drain, 1 when set-up failed.
int serve(const ServeOptions& options);

}  // namespace fdbroker::broker
