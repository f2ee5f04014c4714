// `fdbroker run`: spawn one worker under a profile, serve it and its descendants, exit with its status.
#pragma once

#include <string>
#include <vector>

namespace fdbroker::broker {

struct RunOptions {
    std::string policy_file;
    std::string profile = "default";
    std::string audit;         // empty: no audit stream
    bool transparent = false;  // broker the program's own system calls (broker/notify/transparent.hpp)
    bool verbose = false;      // -v: a line on stderr per distinct denial (broker/core/denials.hpp)
    std::vector<std::string> argv;
};

// Returns the exit status for fdbroker: the worker's own, 128+N if it died of signal N, 125 when the
// broker itself failed, 126/127 when the program could not be executed / found.
int run(const RunOptions& options);

}  // namespace fdbroker::broker
