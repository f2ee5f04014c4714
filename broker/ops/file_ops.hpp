// The file operations the broker performs for workers (Contract 4), each judged by resolve.hpp
// before it touches anything.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "broker/core/worker_identity.hpp"
#include "broker/ops/resolve.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

struct OpResult {
    Verdict verdict;  // allowed/rule for the audit line; verdict.error is what the worker sees
    int value = 0;    // readlink: the length
    unique_fd fd;     // open: the descriptor to hand over
    // open: the descriptor may be a device (the broker's /dev/tty is its own terminal, which the
    // caller must not get): false only where the open saw it is not one.
    bool maybe_device = true;
};

class FileOps {
  public:
    FileOps(const policy::Profile& profile, std::optional<FileOwner> owner)
        : profile_(&profile), owner_(owner) {}

    // The same operations for one caller (thread `tid`), whose /proc/self paths name (proc_self.hpp).
    [[nodiscard]] FileOps for_caller(pid_t tid) const noexcept {
        FileOps bound = *this;
        bound.self_ = ProcSelf(tid);
        return bound;
    }
    [[nodiscard]] const ProcSelf& self() const noexcept { return self_; }

    // The open flags a worker may use; anything else (O_ASYNC, O_NOATIME, unknown bits) is refused
    // with EACCES. An access mode of 3 (ioctl only) needs read and write.
    static bool open_flags_known(std::uint32_t flags) noexcept;
    // What an open with these flags needs from the policy.
    static std::uint8_t open_needs(std::uint32_t flags) noexcept;

    OpResult open(std::string_view path, std::uint32_t flags, mode_t mode) const noexcept;
    OpResult access(std::string_view path, std::uint32_t mode, bool follow_final = true) const noexcept;
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

    // Metadata changes (metadata_ops.cpp). The policy must grant write on the path (get and list need
    // read); who may change what is the kernel's to say, so the caller performs these with the
    // worker's identity (worker_identity.hpp). `follow_final`: false for the l- forms.
    OpResult chmod(std::string_view path, mode_t mode, bool follow_final) const noexcept;
    OpResult chown(std::string_view path, uid_t uid, gid_t gid, bool follow_final) const noexcept;
    OpResult truncate(std::string_view path, off_t length) const noexcept;
    // times: null for "now"
    OpResult utimens(std::string_view path, const struct ::timespec* times, bool follow_final) const noexcept;
    OpResult get_xattr(std::string_view path, const char* name, std::span<char> buf,
                       bool follow_final) const noexcept;
    OpResult list_xattr(std::string_view path, std::span<char> buf, bool follow_final) const noexcept;
    OpResult set_xattr(std::string_view path, const char* name, std::span<const char> value, int flags,
                       bool follow_final) const noexcept;
    OpResult remove_xattr(std::string_view path, const char* name, bool follow_final) const noexcept;
    // A hard link at `to` (needs create) to what `from` names; no amplification: the new name may grant
    // nothing the old one does not (Profile::decide_move).
    OpResult link(std::string_view from, std::string_view to, bool follow_from) const noexcept;
    // The real path of the directory `path` leads to (op::Lookup), its length in `value`: ENOTDIR for
    // anything else.
    OpResult lookup(std::string_view path, std::span<char> real) const noexcept;
    // A FIFO, socket or regular file (needs create); device nodes are the kernel's to refuse.
    OpResult mknod(std::string_view path, mode_t mode, dev_t dev) const noexcept;

  private:
    // Locates a name to create (need_create), or says EEXIST where the kernel would (locate_new()).
    Verdict locate_new(std::string_view path, Location& loc) const noexcept;
    // Runs act(loc, fd, st, out) on the object `path` names, through symlinks when follow_final: fd is an
    // O_PATH descriptor of the object itself, so that a name swapped meanwhile changes nothing.
    template <class Act>
    OpResult on_object(std::string_view path, std::uint8_t needs, bool follow_final,
                       Act&& act) const noexcept;
    // A FIFO or a device that no rule names exactly (open() says why).
    [[nodiscard]] bool special_refused(const struct ::stat& st, std::string_view real, std::uint8_t needs,
                                       std::uint32_t flags) const noexcept;
    OpResult open_careful(std::string_view path, std::uint32_t flags, mode_t mode,
                          std::uint8_t needs) const noexcept;
    OpResult on_name(std::string_view path, std::uint8_t needs, int (*op)(const Location&, mode_t),
                     mode_t arg) const noexcept;
    // Whether the object at `from` may be moved to `to` (Profile::decide_move): EACCES if not.
    [[nodiscard]] Verdict may_move(const Location& from, const Location& to) const noexcept;
    // Whether what this broker thread creates must be handed to the worker's user afterwards (a root
    // broker creating with its own identity); give_to_worker() does it.
    [[nodiscard]] bool hands_over() const noexcept;
    void give_to_worker(int fd) const noexcept;

    // A descriptor the caller holds, behind the fd/N link at `loc`: whether its file has a name to
    // judge (not a pipe, a socket, a deleted or O_TMPFILE file) and its open flags.
    struct HeldFile {
        bool named = false;
        unsigned flags = 0;
    };
    [[nodiscard]] std::optional<HeldFile> held_by_caller(const Location& loc) const noexcept;
    [[nodiscard]] static bool held_covers(const HeldFile& held, std::uint8_t needs) noexcept;
    // A held descriptor whose file has no name, reached through its link: only as far as it is held.
    [[nodiscard]] bool held_unnamed(const Location& loc, std::uint8_t needs) const noexcept;
    // Opens a held descriptor's file again through its link, as far as the caller holds it (true), or
    // leaves the link to be followed and what it names judged.
    bool open_held(const Location& loc, int flags, mode_t mode, std::uint8_t needs,
                   OpResult& out) const noexcept;

    const policy::Profile* profile_;
    std::optional<FileOwner> owner_;
    ProcSelf self_;
};

}  // namespace fdbroker::broker
