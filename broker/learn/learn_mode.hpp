// `fdbroker learn`: runs a program as `fdbroker run` would, in complain mode (what its profile refuses
// is performed with the worker's own identity and recorded), then writes the profile with the rules
// it lacked (learned_rules.hpp) into the output file (policy_text.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fdbroker::broker::learn {

struct LearnCommand {
    std::string base;  // --policy: the file to start from; empty for an empty profile
    std::string profile = "default";
    std::string output;   // -o
    bool append = false;  // start from the output file when it exists (several runs accumulate)
    bool transparent = false;
    std::size_t group = 4;  // --group: paths in one directory that make it DIR/**
    std::string audit;
    bool verbose = false;
    std::vector<std::string> argv;
};

// The program's exit status (as `fdbroker run`); 125 when fdbroker itself failed, the learned policy
// included (nothing is written then).
int learn(const LearnCommand& command);

}  // namespace fdbroker::broker::learn
