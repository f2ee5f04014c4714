// The test worker's attack commands; see worker_attacks.cpp for the list.
#pragma once

#include <string>
#include <vector>

namespace fdbroker::test {

// Runs one command group if it is an attack command; false if it is not one.
bool run_attack_command(const std::vector<std::string>& args);

}  // namespace fdbroker::test
