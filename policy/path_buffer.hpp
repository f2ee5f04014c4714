// A fixed-capacity, NUL-terminated path: the broker's hot path builds paths without allocating.
//
// The kernel limits the path a caller passes to PATH_MAX bytes with its NUL (kCallerLimit), but a
// relative one is walked from the caller's directory, however deep. The broker judges absolute paths,
// directory + "/" + what the caller passed, so its buffer holds two such paths; where it hands one
// longer than the kernel takes to a system call, it opens it in steps (openat2_compat.hpp).
#pragma once

#include <linux/limits.h>

#include <cstring>
#include <string_view>

namespace fdbroker::policy {

class PathBuffer {
  public:
    static constexpr std::size_t kCapacity = 2 * PATH_MAX - 1;  // bytes, without the NUL
    // The longest path (without its NUL) one system call takes: ENAMETOOLONG beyond.
    static constexpr std::size_t kCallerLimit = PATH_MAX - 1;

    PathBuffer() { data_[0] = '\0'; }
    // False (and unchanged) when the result would not fit.
    [[nodiscard]] bool assign(std::string_view s) noexcept {
        if (s.size() > kCapacity) return false;
        len_ = 0;
        return append(s);
    }
    [[nodiscard]] bool append(std::string_view s) noexcept {
        if (s.size() > kCapacity - len_) return false;
        // An empty view may carry a null data(), which memcpy must never see, even for 0 bytes.
        if (!s.empty()) std::memcpy(data_ + len_, s.data(), s.size());
        len_ += s.size();
        data_[len_] = '\0';
        return true;
    }
    void truncate(std::size_t len) noexcept {
        len_ = len;
        data_[len_] = '\0';
    }
    [[nodiscard]] const char* c_str() const noexcept { return data_; }
    [[nodiscard]] char* data() noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return len_; }
    [[nodiscard]] std::string_view view() const noexcept { return {data_, len_}; }

  private:
    char data_[kCapacity + 1];
    std::size_t len_ = 0;
};

}  // namespace fdbroker::policy
