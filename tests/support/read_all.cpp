#include "support/read_all.hpp"

#include <unistd.h>

#include <cstddef>

namespace fdbroker::test {

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    return out;
}

}  // namespace fdbroker::test
