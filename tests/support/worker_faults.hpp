// The test worker's fault commands (worker_faults.cpp) and the raw private channel they share with the
// raw-protocol commands in worker.cpp.
#pragma once

#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::test {

// Attaches a private channel by hand, as libfdbroker would; empty, with errno set, if the broker
// refused.
fdbroker::unique_fd attach_raw();

// Runs one command group if it is a fault command; false if it is not one.
bool run_fault_command(const std::vector<std::string>& args);

}  // namespace fdbroker::test
