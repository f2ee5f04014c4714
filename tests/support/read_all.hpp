// Reading a descriptor to its end: a file the broker opened, a socket's whole request or reply. One
// copy for the test processes and the test worker, which links no other test support.
#pragma once

#include <string>

namespace fdbroker::test {

// Reads fd from its current position until end of file (or of the stream, or an error).
std::string read_all(int fd);

}  // namespace fdbroker::test
