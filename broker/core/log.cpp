#include "broker/core/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace fdbroker::broker {

namespace {

std::atomic<LogLimit*> limits{nullptr};
// Lines counted but not yet summarised, over every limit: lets the common flush return at once.
std::atomic<std::uint64_t> unsummarised{0};

// The line written last, and when. The same line again within kRepeatWindow says nothing new (a
// program's execvp trying each $PATH directory in turn is refused once per directory): it is left out.
constexpr auto kRepeatWindow = std::chrono::seconds(1);
std::mutex last_mutex;
char last_line[1024];
std::size_t last_len = 0;
std::chrono::steady_clock::time_point last_time;

bool repeats_last(const char* line, std::size_t len) noexcept {
    const std::lock_guard lock(last_mutex);
    const auto now = std::chrono::steady_clock::now();
    const bool repeated =
        len == last_len && now - last_time < kRepeatWindow && std::memcmp(line, last_line, len) == 0;
    std::memcpy(last_line, line, len);
    last_len = len;
    last_time = now;
    return repeated;
}

__attribute__((format(printf, 1, 0))) void write_line(const char* format, va_list args,
                                                      bool skip_repeats = true) noexcept {
    // One write per line so that lines from the broker and its workers never interleave mid-line.
    char line[1024] = "fdbroker: ";
    constexpr std::size_t prefix = 10;
    const int n = std::vsnprintf(line + prefix, sizeof line - prefix - 1, format, args);
    if (n < 0) return;
    std::size_t len = prefix + std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - prefix - 2);
    line[len++] = '\n';
    if (skip_repeats && repeats_last(line, len)) return;
    [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, line, len);
}

}  // namespace

void log(const char* format, ...) noexcept {
    va_list args;
    va_start(args, format);
    write_line(format, args);
    va_end(args);
}

void log_output(const char* format, ...) noexcept {
    va_list args;
    va_start(args, format);
    write_line(format, args, /*skip_repeats=*/false);
    va_end(args);
}

LogLimit::LogLimit(const char* what) noexcept : what_(what), next_(limits.load()) {
    while (!limits.compare_exchange_weak(next_, this)) {
    }
}

bool LogLimit::admit() noexcept {
    const std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= kWindow) {
        summarise_locked();
        window_start_ = now;
        written_ = 0;
    }
    if (written_ < kBurst) {
        ++written_;
        return true;
    }
    ++left_out_;
    unsummarised.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void LogLimit::flush(bool force) noexcept {
    const std::lock_guard lock(mutex_);
    if (force || std::chrono::steady_clock::now() - window_start_ >= kWindow) summarise_locked();
}

void LogLimit::summarise_locked() noexcept {
    if (left_out_ == 0) return;
    log("%llu more lines like the last (%s) were left out", static_cast<unsigned long long>(left_out_),
        what_);
    left_out_ = 0;
}

void log_limited(LogLimit& limit, const char* format, ...) noexcept {
    if (!limit.admit()) return;
    va_list args;
    va_start(args, format);
    write_line(format, args);
    va_end(args);
}

void flush_log_limits(bool force) noexcept {
    if (unsummarised.load(std::memory_order_relaxed) == 0) return;
    for (LogLimit* l = limits.load(); l != nullptr; l = l->next_)
        l->flush(force);
}

}  // namespace fdbroker::broker
