// The test worker's metadata commands (chmod, chown, truncate, utimens, link, mknod and the xattr calls
// through libfdbroker's C drop-ins); see worker_metadata.cpp for the list.
#pragma once

#include <string>
#include <vector>

namespace fdbroker::test {

// Runs one command group if it is a metadata command; false if it is not one.
bool run_metadata_command(const std::vector<std::string>& args);

}  // namespace fdbroker::test
