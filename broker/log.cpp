#include "broker/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace fdbroker::broker {

void log(const char* format, ...) noexcept {
    // One write per line so that lines from the broker and its workers never interleave mid-line.
    char line[1024] = "fdbroker: ";
    constexpr std::size_t prefix = 10;
    va_list args;
    va_start(args, format);
    int n = std::vsnprintf(line + prefix, sizeof line - prefix - 1, format, args);
    va_end(args);
    if (n < 0) return;
    std::size_t len = prefix + std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - prefix - 2);
    line[len++] = '\n';
    [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, line, len);
}

}  // namespace fdbroker::broker
