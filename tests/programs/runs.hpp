// Running a case's commands: natively as nobody, and under `fdbroker run --transparent` as nobody, both
// in the work directory with the same environment.
#pragma once

#include <string>
#include <vector>

#include "programs/program_case.hpp"

namespace fdbroker::test::programs {

struct CommandRun {
    int status = -1;
    std::string out;
    std::string err;               // the program's standard error
    std::vector<std::string> log;  // fdbroker's own lines ("fdbroker: ..."), brokered runs only
    double seconds = 0;            // wall clock, from fork to reaping
};

// `text` with every occurrence of `from` replaced by `to`.
std::string replace_all(std::string text, const std::string& from, const std::string& to);

// The case's environment for work directory `work`: PATH, HOME, LANG, TZ and the case's own.
std::vector<std::string> environment(const ProgramCase& c, const std::string& work);

CommandRun run_native(const std::vector<std::string>& argv, const std::string& work,
                      const std::vector<std::string>& env);

// How a brokered command runs: `fdbroker run --transparent --policy POLICY [--profile PROFILE]
// --audit AUDIT`.
struct Broker {
    std::string policy;
    std::string profile;  // "" for the default
    std::string audit;
};

CommandRun run_brokered(const std::vector<std::string>& argv, const std::string& work,
                        const std::vector<std::string>& env, const Broker& broker);

// `fdbroker learn --transparent --append -o POLICY -- argv`: a complain-mode run as nobody (the
// default user of a policy without one), adding what it learns to POLICY.
CommandRun run_learning(const std::vector<std::string>& argv, const std::string& work,
                        const std::vector<std::string>& env, const std::string& policy);

// "op path" of every denial an audit file records.
std::vector<std::string> denials(const std::string& audit);

// One side's runs of a case's commands, and the work directory they left (snapshot.hpp).
struct Side {
    std::vector<CommandRun> runs;
    std::vector<std::string> files;
    double seconds = 0;
};

// Every way the brokered run (in `dir`/broker) differs from the native one (in `dir`/native), as
// readable lines, with the brokered run's denials.
std::vector<std::string> differences(const ProgramCase& c, const Side& n, const Side& b,
                                     const std::string& dir, const std::vector<std::string>& denied);

}  // namespace fdbroker::test::programs
