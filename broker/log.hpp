// Diagnostics: one line each on stderr, prefixed "fdbroker:".
#pragma once

namespace fdbroker::broker {

[[gnu::format(printf, 1, 2)]] void log(const char* format, ...) noexcept;

}  // namespace fdbroker::broker
