// The test worker's socket commands (fdbroker_connect / fdbroker_listen and what a worker does with
// the sockets it gets); see worker_sockets.cpp for the list.
#pragma once

#include <string>
#include <vector>

namespace fdbroker::test {

// Runs one command group if it is a socket command; false if it is not one.
bool run_socket_command(const std::vector<std::string>& args);

}  // namespace fdbroker::test
