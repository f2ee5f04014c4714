// `fdbroker run`: spawn one worker under a profile, serve it and its descendants, exit with its status.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "broker/core/recorder.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

struct RunOptions {
    std::string policy_file;
    std::string profile = "default";
    std::string audit;         // empty: no audit stream
    bool transparent = false;  // broker the program's own system calls (broker/notify/transparent.hpp)
    bool verbose = false;      // -v: a line on stderr per distinct denial (broker/core/denials.hpp)
    std::vector<std::string> argv;
    // A policy already loaded, used instead of reading `policy_file` (which then only names it).
    std::shared_ptr<const policy::Policy> loaded;
    // Complain mode (`fdbroker learn`, learn_mode.hpp): what the profile refuses goes to `recorder`
    // and is performed under `permissive` with the worker's identity (Performer::complain). Both null
    // in an ordinary run.
    const policy::Profile* permissive = nullptr;
    Recorder* recorder = nullptr;
};

// Returns the exit status for fdbroker: the worker's own, 128+N if it died of signal N, 125 when the
// broker itself failed, 126/127 when the program could not be executed / found.
int run(const RunOptions& options);

}  // namespace fdbroker::broker
