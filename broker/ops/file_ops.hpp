// The file operations the broker performs for workers (Contract 4), each judged by resolve.hpp
// before it touches anything.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "broker/ops/resolve.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

struct OpResult {
    Verdict verdict;  // allowed/rule for the audit line; verdict.error is what the worker sees
    int value = 0;    // readlink: the length
    unique_fd fd;     // open: the descriptor to hand over
};

// Who owns what the broker creates for a worker, when the broker runs as root.
struct FileOwner {
    uid_t uid;
    gid_t gid;
};

class FileOps {
  public:
    FileOps(const policy::Profile& profile, std::optional<FileOwner> owner)
        : profile_(&profile), owner_(owner) {}

    // The open flags a worker may use; anything else (O_PATH, O_TMPFILE, O_DIRECT, O_ASYNC, O_NOATIME,
    // an access mode of 3, unknown bits) is refused with EACCES.
    static bool open_flags_known(std::uint32_t flags) noexcept;
    // What an open with these flags needs from the policy.
    static std::uint8_t open_needs(std::uint32_t flags) noexcept;

    OpResult open(std::string_view path, std::uint32_t flags, mode_t mode) const noexcept;
    OpResult access(std::string_view path, std::uint32_t mode) const noexcept;
    OpResult stat(std::string_view path, struct ::stat& st, bool follow_final = true) const noexcept;
    // statx(2) on the path: flags may hold AT_SYMLINK_NOFOLLOW and the AT_STATX_* sync bits.
    OpResult statx(std::string_view path, int flags, unsigned mask, struct ::statx& stx) const noexcept;
    OpResult readlink(std::string_view path, std::span<char> buf) const noexcept;
    OpResult mkdir(std::string_view path, mode_t mode) const noexcept;
    OpResult unlink(std::string_view path) const noexcept;
    OpResult rmdir(std::string_view path) const noexcept;
    // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (renameat2); anything else is EINVAL.
    OpResult rename(std::string_view from, std::string_view to, unsigned flags = 0) const noexcept;
    // A symlink at `path` (needs create there) whose text is `target`; the target is not judged, as
    // every open through the link is judged where it lands.
    OpResult symlink(std::string_view target, std::string_view path) const noexcept;

  private:
    // A FIFO or a device that no rule names exactly (open() says why).
    [[nodiscard]] bool special_refused(const struct ::stat& st, std::string_view real,
                                       std::uint8_t needs) const noexcept;
    OpResult open_careful(std::string_view path, std::uint32_t flags, mode_t mode,
                          std::uint8_t needs) const noexcept;
    template <class Final>
    OpResult follow(std::string_view path, std::uint8_t needs, Final&& final_step) const noexcept;
    OpResult on_name(std::string_view path, std::uint8_t needs, int (*op)(const Location&, mode_t),
                     mode_t arg) const noexcept;
    // Whether the object at `from` may be moved to `to` (Profile::decide_move): EACCES if not.
    [[nodiscard]] Verdict may_move(const Location& from, const Location& to) const noexcept;
    void give_to_worker(int fd) const noexcept;

    const policy::Profile* profile_;
    std::optional<FileOwner> owner_;
};

}  // namespace fdbroker::broker
