// What a run left in its work directory, one line per entry, in a form two runs compare textually.
#pragma once

#include <string>
#include <vector>

#include "programs/program_case.hpp"

namespace fdbroker::test::programs {

// Makes `work` (as root), runs the case's set-up script in it, hands everything to nobody and sets
// every entry's times to kSetupTime. Returns the script's error output, "" if it succeeded.
std::string prepare(const ProgramCase& c, const std::string& work);

// Every entry beneath `work` (not `work` itself), sorted by path: "path type mode owner:group links
// size content-digest [-> link text] [mtime]". The work directory's own path in a file's content or
// a link's text reads as @W.
std::vector<std::string> snapshot(const ProgramCase& c, const std::string& work);

// The lines of `a` that `b` lacks, joined with "; ".
std::string only_in(const std::vector<std::string>& a, const std::vector<std::string>& b);

}  // namespace fdbroker::test::programs
