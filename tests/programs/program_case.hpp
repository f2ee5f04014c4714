// One real program, run natively as the worker's user and under `fdbroker run --transparent`: what
// to set up, what to run, what to grant beyond the work directory, and what to compare.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fdbroker::test::programs {

// In arguments, environment values, set-up scripts and policy patterns, `@W` stands for the case's
// work directory (each run gets a directory of its own, so that both start from the same state). In
// set-up scripts `@E` stands for packaging/examples.
inline constexpr const char* kWorkDir = "@W";
inline constexpr const char* kExamplesDir = "@E";

struct ProgramCase {
    std::string name{};  // [A-Za-z0-9_], the GoogleTest parameter name
    // Run one after the other, each in a process of its own (under a broker of its own when brokered),
    // in the work directory; argv[0] is an absolute path. A case is skipped when one of them is missing.
    std::vector<std::vector<std::string>> commands{};
    // A shell script run as root in the work directory before either run. Everything in the directory
    // then belongs to nobody, and every entry's times are set to kSetupTime, so that archives, listings
    // and compressed headers do not depend on when the test ran.
    std::string setup{};
    // Where the commands run: a directory beneath @W (made by the set-up), or "" for @W itself.
    std::string cwd{};
    // NAME=VALUE, added to the common environment (PATH, HOME=@W unless given here, LANG, TZ).
    std::vector<std::string> env{};
    // Beyond read, write and create on @W/**: what this program reads (or probes) elsewhere.
    std::vector<std::string> read{};
    std::vector<std::string> write{};
    std::vector<std::string> create{};
    bool exec = false;  // the program runs other programs
    // Work-directory paths whose modification time the program sets (cp -a, tar x, touch -d): compared
    // to the nanosecond. Other times are the time of the run.
    std::vector<std::string> times{};
    // Work-directory paths compared only by type, mode and owner: their content records when or where
    // the run happened (git's index holds inode numbers and change times).
    std::vector<std::string> volatile_content{};
    // Instead of the generated policy: this example of packaging/examples, with each path `first`
    // read as `second` (in @W terms), and the profile to run under.
    std::string example{};
    std::vector<std::pair<std::string, std::string>> example_paths{};
    std::string profile{};
};

// Every entry's times after the set-up: 2001-09-09T01:46:40Z.
inline constexpr long kSetupTime = 1'000'000'000;

const std::vector<ProgramCase>& program_cases();

}  // namespace fdbroker::test::programs
