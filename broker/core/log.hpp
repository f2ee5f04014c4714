// Diagnostics: one line each on stderr, prefixed "fdbroker:". A line identical to the one written just
// before it, less than a second earlier, is left out: it would say nothing new.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace fdbroker::broker {

[[gnu::format(printf, 1, 2)]] void log(const char* format, ...) noexcept;
// The same, repeats included: for what a pool worker itself writes, which is its own to repeat.
[[gnu::format(printf, 1, 2)]] void log_output(const char* format, ...) noexcept;

// A kind of line that workers can cause at will (a malformed frame per message, a refused attach per
// attempt): at most kBurst lines of the kind per kWindow are written, the rest are counted, and the
// count is written as one summary line when the window ends. Instances are static and register
// themselves, so that flush_log_limits() can write what is still counted.
class LogLimit {
  public:
    static constexpr int kBurst = 10;
    static constexpr std::chrono::seconds kWindow{10};

    explicit LogLimit(const char* what) noexcept;
    LogLimit(const LogLimit&) = delete;
    LogLimit& operator=(const LogLimit&) = delete;

    // Whether a line may be written now; a line left out is counted.
    bool admit() noexcept;
    // Writes the summary if the window is over (or `force`) and lines were left out.
    void flush(bool force) noexcept;

  private:
    friend void flush_log_limits(bool force) noexcept;
    void summarise_locked() noexcept;

    const char* what_;
    LogLimit* next_;
    std::mutex mutex_;
    std::chrono::steady_clock::time_point window_start_{};
    int written_ = 0;
    std::uint64_t left_out_ = 0;
};

[[gnu::format(printf, 2, 3)]] void log_limited(LogLimit& limit, const char* format, ...) noexcept;
// Summaries of windows that have ended (all of them with `force`, at exit).
void flush_log_limits(bool force = false) noexcept;

}  // namespace fdbroker::broker
