// The test worker's isolation commands (worker_isolation.cpp): workers that hold the broker's
// resources or make its requests wait, while others go on asking.
#pragma once

#include <string>
#include <vector>

namespace fdbroker::test {

// Runs one command group if it is an isolation command; false if it is not one. `run` runs a group
// (for `background`).
bool run_isolation_command(const std::vector<std::string>& args,
                           void (*run)(const std::vector<std::string>& group));

}  // namespace fdbroker::test
