// The test worker's open_many commands (fdbroker_open_many, and raw batches that break the protocol);
// see worker_batch.cpp for the list.
#pragma once

#include <string>
#include <vector>

namespace fdbroker::test {

// Runs one command group if it is a batch command; false if it is not one.
bool run_batch_command(const std::vector<std::string>& args);

}  // namespace fdbroker::test
