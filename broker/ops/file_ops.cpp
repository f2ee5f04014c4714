#include "broker/ops/file_ops.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "broker/ops/openat2_compat.hpp"
#include "broker/ops/walk.hpp"
#include "policy/path.hpp"

namespace fdbroker::broker {

namespace {

using policy::need_any;
using policy::need_create;
using policy::need_read;
using policy::need_write;

constexpr std::uint32_t kKernelLargefile = 0100000;  // glibc defines O_LARGEFILE as 0 on 64-bit

// Whether a rename carries rules along depends on what moves (a directory takes everything beneath
// it), and looking at the source and renaming it are two steps. Requests run side by side while one
// is stuck (event_loop.hpp), so another request could put a directory where this one judged a file
// in between: a rename onto the name, or an unlink and a mkdir. The calls that make a directory
// appear at a name, rename and mkdir, therefore hold their file system's lock from the look to the
// act. One lock per file system, so that one stuck on a hung file system holds up nobody else's.
std::unique_lock<std::mutex> lock_directory_moves(int dir) noexcept {
    static std::mutex table_lock;
    static std::map<dev_t, std::mutex> by_device;
    static std::mutex fallback;  // when the table cannot grow
    std::mutex* lock = &fallback;
    struct ::stat st {};
    if (::fstat(dir, &st) == 0) {
        try {
            const std::lock_guard guard(table_lock);
            lock = &by_device.try_emplace(st.st_dev).first->second;
        } catch (const std::bad_alloc&) {
        }
    }
    return std::unique_lock(*lock);
}

OpResult denied(Verdict v) {
    OpResult r;
    r.verdict = v;
    return r;
}

bool is_symlink(const Location& loc) noexcept {
    struct ::stat st {};
    return ::fstatat(loc.dir.get(), loc.name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

}  // namespace

bool FileOps::open_flags_known(std::uint32_t flags) noexcept {
    constexpr std::uint32_t known = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND |
                                    O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
                                    O_PATH | (O_TMPFILE & ~O_DIRECTORY) | O_DIRECT | kKernelLargefile;
    // open(2) ignores every flag but three beside O_PATH (open() drops them), the access mode included.
    // Access mode 3 is Linux's descriptor for ioctls only, which needs read and write permission.
    if (flags & O_PATH) return true;
    return (flags & ~known) == 0;
}

std::uint8_t FileOps::open_needs(std::uint32_t flags) noexcept {
    // A descriptor for lookups, fstat and *at() calls only: it reads and changes nothing.
    if (flags & O_PATH) return need_any;
    std::uint8_t needs = 0;
    switch (flags & O_ACCMODE) {
        case O_RDONLY:
            needs = need_read;
            break;
        case O_WRONLY:
            needs = need_write;
            break;
        default:
            needs = need_read | need_write;
            break;
    }
    // O_TMPFILE makes an unnamed file in the directory the path names; linkat gives it a name later,
    // judged there.
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) needs |= need_create;
    if (flags & (O_TRUNC | O_APPEND)) needs |= need_write;
    return needs;
}

// A device, or a FIFO opened in a way that waits for its peer, is opened only if a rule names it
// exactly: opening one can wait for a peer (a FIFO without a writer) or act on hardware (a serial
// line's modem lines, a watchdog), so its type is checked before it is opened, not after. An open the
// policy allows then behaves as natively, waiting included (an explicitly granted FIFO without its
// peer, a file whose lease must be broken): the caller runs in a blocking section, so only this
// request waits. A FIFO opened non-blocking or for both reading and writing never waits (fifo(7)),
// and an O_PATH descriptor opens nothing.
bool FileOps::special_refused(const struct ::stat& st, std::string_view real, std::uint8_t needs,
                              std::uint32_t flags) const noexcept {
    if (flags & O_PATH) return false;
    const bool waits = !(flags & O_NONBLOCK) && (flags & O_ACCMODE) != O_RDWR;
    const bool special = (S_ISFIFO(st.st_mode) && waits) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
    return special && !profile_->grants_exactly(real, needs);
}

OpResult FileOps::open(std::string_view path, std::uint32_t flags, mode_t mode) const noexcept {
    if (!open_flags_known(flags)) return denied({false, nullptr, EACCES});
    if (flags & O_PATH) flags &= static_cast<std::uint32_t>(O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW);
    // Linux 6.4 and later refuse to create a directory through open(2).
    if ((flags & O_CREAT) && (flags & O_DIRECTORY)) return denied({true, nullptr, EINVAL});
    const std::uint8_t needs = open_needs(flags);
    PathBuffer rewritten;
    if (self_.rewrite(path, rewritten)) {
        if (rewritten.size() == 0) return denied({false, nullptr, EACCES});
        path = rewritten.view();
    }
    // The caller's own /proc entries are judged (and their links followed) on the careful path.
    if (self_.owns(path)) return open_careful(path, flags, mode & 07777, needs);
    // Fast path for an existing file: one walk of the whole path that meets no symlink and no magic
    // link opens exactly the file the lexical decision judges. A symlink anywhere (ELOOP), or a FIFO or
    // device at the end (judged on its real path there), sends the request down the careful path;
    // creating always takes it, for the ownership logic there. So does a path longer than one system
    // call takes (formed from a deep directory), which the look at the file below could not see.
    if (!(flags & O_CREAT) && path.size() <= PathBuffer::kCallerLimit) {
        const policy::Decision lexical = profile_->decide(path, needs);
        if (!lexical.allowed) return denied({false, lexical.rule, EACCES});
        PathBuffer buf;
        struct ::stat st {};
        // A rule naming the path exactly grants it whatever it is: no look first (one system call less
        // for every open such a rule grants). With one kind needed, the deciding rule tells.
        const bool one_kind = needs == policy::need_read || needs == policy::need_write;
        const bool named = one_kind ? lexical.rule->pattern.literal() && lexical.rule->pattern.text() == path
                                    : profile_->grants_exactly(path, needs);
        const bool look = !named;
        if (buf.assign(path) && !(look && ::fstatat(AT_FDCWD, buf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                  special_refused(st, path, needs, flags))) {
            open_how how{};
            how.flags = flags | O_CLOEXEC | O_NOCTTY;
            // openat2 refuses every other flag beside O_PATH, where open(2) ignores them.
            if (flags & O_PATH) how.flags = flags | O_CLOEXEC;  // openat2 refuses O_NOCTTY with O_PATH
            if ((flags & O_TMPFILE) == O_TMPFILE) how.mode = mode & 07777;
            how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
            const int fd = openat2_compat(AT_FDCWD, buf.c_str(), how);
            if (fd >= 0) {
                OpResult result;
                result.verdict = {true, lexical.rule, 0};
                result.fd.reset(fd);
                result.maybe_device =
                    look ? S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) : path.starts_with("/dev/");
                return result;
            }
            // Failing without meeting a symlink, the open failed on the path as written: a real error.
            if (errno != ELOOP) return denied({true, lexical.rule, errno});
        }
    }
    return open_careful(path, flags, mode & 07777, needs);
}

namespace {

// openat(2) of the located name; `created` says whether this open made the file. With O_CREAT but not
// O_EXCL it opens an existing file without O_CREAT first, so that the broker knows whether it created
// it (and may hand its ownership to the worker) without ever chowning something that was there; where
// the name was just seen `absent`, creating exclusively comes first (another process making it
// meanwhile gives EEXIST, and the existing file is then opened as before).
int open_at(const Location& loc, int flags, mode_t mode, bool absent, bool& created) noexcept {
    created = false;
    if (!(flags & O_CREAT) || (flags & O_EXCL)) {
        const int fd = ::openat(loc.dir.get(), loc.name, flags, mode);
        created = (flags & O_CREAT) && fd >= 0;
        return fd;
    }
    int fd = -1;
    for (int tries = 0; tries < 8 && fd < 0; ++tries) {
        if (!absent || tries > 0) {
            fd = ::openat(loc.dir.get(), loc.name, flags & ~O_CREAT, 0);
            if (fd >= 0 || errno != ENOENT) break;
        }
        fd = ::openat(loc.dir.get(), loc.name, flags | O_EXCL, mode);
        created = fd >= 0;
        if (fd < 0 && errno != EEXIST) break;
    }
    return fd;
}

}  // namespace

// Opens beneath the located directory, hop by hop through symlinks (follow()).
OpResult FileOps::open_careful(std::string_view path, std::uint32_t flags, mode_t mode,
                               std::uint8_t needs) const noexcept {
    const bool create = flags & O_CREAT;
    const bool exclusive = flags & O_EXCL;
    // The broker's copy is always close-on-exec; whether the worker's is depends on what it asked.
    const int base = static_cast<int>(flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    return follow_links(*profile_, self_, path, needs, [&](const Location& loc, OpResult& out) {
        struct ::stat st {};
        const bool seen = ::fstatat(loc.dir.get(), loc.name, &st, AT_SYMLINK_NOFOLLOW) == 0;
        const bool absent = !seen && errno == ENOENT;
        if (seen) {
            out.maybe_device = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
            const bool follows = S_ISLNK(st.st_mode) && !(flags & O_NOFOLLOW) && !exclusive;
            if (follows)
                return open_held(loc, base & ~O_NOFOLLOW, mode, needs, out) ? Step::done : Step::symlink;
            // Making a name that is there opens nothing: the kernel's EEXIST, whatever is there.
            if (!(create && exclusive) && special_refused(st, loc.real.view(), needs, flags)) {
                out.verdict = {false, out.verdict.rule, EACCES};
                return Step::done;
            }
        }
        bool created = false;
        const int fd = open_at(loc, base, mode, absent, created);
        if (fd >= 0) {
            out.fd.reset(fd);
            if (created) {
                out.maybe_device = false;  // a regular file, just made
                give_to_worker(fd);
            }
            return Step::done;
        }
        out.verdict.error = errno;
        // Replaced by a symlink since it was looked at: O_EXCL never follows a final symlink (EEXIST),
        // and neither does a worker's O_NOFOLLOW.
        if (!(flags & O_NOFOLLOW) && !exclusive && is_symlink(loc)) return Step::symlink;
        return Step::done;
    });
}

OpResult FileOps::stat(std::string_view path, struct ::stat& st, bool follow_final) const noexcept {
    return follow_links(*profile_, self_, path, need_any, [&](const Location& loc, OpResult& out) {
        if (::fstatat(loc.dir.get(), loc.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            out.verdict.error = errno;
            return Step::done;
        }
        return follow_final && S_ISLNK(st.st_mode) ? Step::symlink : Step::done;
    });
}

OpResult FileOps::statx(std::string_view path, int flags, unsigned mask, struct ::statx& stx) const noexcept {
    constexpr int known = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
    if (flags & ~known) return denied({true, nullptr, EINVAL});
    const bool follow_final = !(flags & AT_SYMLINK_NOFOLLOW);
    const int at_flags = (flags & ~AT_SYMLINK_NOFOLLOW) | AT_SYMLINK_NOFOLLOW;
    return follow_links(*profile_, self_, path, need_any, [&](const Location& loc, OpResult& out) {
        if (::statx(loc.dir.get(), loc.name, at_flags, mask | STATX_TYPE, &stx) != 0) {
            out.verdict.error = errno;
            return Step::done;
        }
        return follow_final && S_ISLNK(stx.stx_mode) ? Step::symlink : Step::done;
    });
}

OpResult FileOps::access(std::string_view path, std::uint32_t mode, bool follow_final) const noexcept {
    if (mode & ~static_cast<std::uint32_t>(R_OK | W_OK | X_OK)) return denied({true, nullptr, EINVAL});
    // X_OK asks the policy nothing beyond seeing the path: the answer is the kernel's for the worker's
    // identity, which the caller takes for it (perform.cpp). R_OK and W_OK ask what an open would.
    std::uint8_t needs = 0;
    if (mode & R_OK) needs |= need_read;
    if (mode & W_OK) needs |= need_write;
    if (needs == 0) needs = need_any;
    return follow_links(*profile_, self_, path, needs, [&](const Location& loc, OpResult& out) {
        struct ::stat st {};
        if (::fstatat(loc.dir.get(), loc.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            out.verdict.error = errno;
            return Step::done;
        }
        if (S_ISLNK(st.st_mode) && follow_final) return Step::symlink;
        // AT_EACCESS: the thread's effective identity, which is the worker's when it acts as the worker.
        if (::faccessat(loc.dir.get(), loc.name, static_cast<int>(mode), AT_SYMLINK_NOFOLLOW | AT_EACCESS) !=
            0)
            out.verdict.error = errno;
        return Step::done;
    });
}

OpResult FileOps::readlink(std::string_view path, std::span<char> buf) const noexcept {
    Location loc;
    OpResult out;
    // /proc/self and /proc/thread-self themselves: the caller's own names for them.
    if (PathBuffer own; (path == "/proc/self" || path == "/proc/thread-self") && self_.rewrite(path, own)) {
        std::string_view text = own.view();
        text.remove_prefix(std::min(text.size(), std::string_view("/proc/").size()));
        out.value = static_cast<int>(std::min(text.size(), buf.size()));
        std::copy_n(text.data(), out.value, buf.data());
        out.verdict = {true, nullptr, own.size() == 0 ? EACCES : 0};
        return out;
    }
    out.verdict = locate(*profile_, self_, path, need_any, loc);
    if (out.verdict.error != 0) return out;
    const ssize_t n = ::readlinkat(loc.dir.get(), loc.name, buf.data(), buf.size());
    if (n < 0)
        out.verdict.error = errno;
    else
        out.value = static_cast<int>(n);
    return out;
}

OpResult FileOps::on_name(std::string_view path, std::uint8_t needs, int (*op)(const Location&, mode_t),
                          mode_t arg) const noexcept {
    Location loc;
    OpResult out;
    out.verdict = locate(*profile_, self_, path, needs, loc);
    if (out.verdict.error == 0 && op(loc, arg) != 0) out.verdict.error = errno;
    return out;
}

OpResult FileOps::mkdir(std::string_view path, mode_t mode) const noexcept {
    Location loc;
    OpResult out;
    out.verdict = locate_new(path, loc);
    if (out.verdict.error != 0) return out;
    const std::unique_lock moves = lock_directory_moves(loc.dir.get());
    if (::mkdirat(loc.dir.get(), loc.name, mode & 07777) != 0) {
        out.verdict.error = errno;
        return out;
    }
    if (!hands_over()) return out;
    // Hand the new directory to the worker only if what is there now is still one we made (owned by
    // us, empty): a directory swapped in between is left alone.
    unique_fd dir(::openat(loc.dir.get(), loc.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct ::stat st {};
    if (dir && ::fstat(dir.get(), &st) == 0 && st.st_uid == ::geteuid() && st.st_nlink == 2)
        give_to_worker(dir.get());
    return out;
}

OpResult FileOps::unlink(std::string_view path) const noexcept {
    return on_name(
        path, need_create, [](const Location& l, mode_t) { return ::unlinkat(l.dir.get(), l.name, 0); }, 0);
}

OpResult FileOps::rmdir(std::string_view path) const noexcept {
    return on_name(
        path, need_create,
        [](const Location& l, mode_t) { return ::unlinkat(l.dir.get(), l.name, AT_REMOVEDIR); }, 0);
}

OpResult FileOps::rename(std::string_view from, std::string_view to, unsigned flags) const noexcept {
    if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE))
        return denied({true, nullptr, EINVAL});
    Location src, dst;
    OpResult out;
    out.verdict = locate(*profile_, self_, from, need_create, src);
    if (out.verdict.error != 0) return out;
    out.verdict = locate(*profile_, self_, to, need_create, dst);
    if (out.verdict.error != 0) return out;
    // No amplification: what moves may not gain a permission, and a directory may not carry files
    // out from under a narrower rule (or bring them under one). With RENAME_EXCHANGE both objects move.
    const std::unique_lock moves = lock_directory_moves(src.dir.get());
    if (const Verdict moved = may_move(src, dst); moved.error != 0) return denied(moved);
    if (flags & RENAME_EXCHANGE)
        if (const Verdict moved = may_move(dst, src); moved.error != 0) return denied(moved);
    if (::renameat2(src.dir.get(), src.name, dst.dir.get(), dst.name, flags) != 0) out.verdict.error = errno;
    return out;
}

Verdict FileOps::may_move(const Location& from, const Location& to) const noexcept {
    struct ::stat st {};
    // Nothing there: the rename itself reports it.
    if (::fstatat(from.dir.get(), from.name, &st, AT_SYMLINK_NOFOLLOW) != 0) return {true, nullptr, 0};
    const policy::Decision d = profile_->decide_move(from.real.view(), to.real.view(), S_ISDIR(st.st_mode));
    return d.allowed ? Verdict{true, nullptr, 0} : Verdict{false, d.rule, EACCES};
}

OpResult FileOps::symlink(std::string_view target, std::string_view path) const noexcept {
    PathBuffer text;
    if (target.empty() || !text.assign(target))
        return denied({true, nullptr, target.empty() ? ENOENT : ENAMETOOLONG});
    Location loc;
    OpResult out;
    out.verdict = locate_new(path, loc);
    if (out.verdict.error != 0) return out;
    if (::symlinkat(text.c_str(), loc.dir.get(), loc.name) != 0) {
        out.verdict.error = errno;
        return out;
    }
    // The link belongs to the worker like any file it creates: fs.protected_symlinks lets a process
    // follow a link in a sticky, world-writable directory only if the link's owner is the process or
    // the directory's owner, so a root-owned link would be followed by everyone there. Handed over
    // through a descriptor of the link itself, and only if it is still the one just made (ours, one
    // name): whatever was swapped in meanwhile is left alone.
    if (!owner_) return out;
    const unique_fd link(::openat(loc.dir.get(), loc.name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct ::stat st {};
    if (link && ::fstat(link.get(), &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == ::geteuid() &&
        st.st_nlink == 1) [[maybe_unused]]
        int rc = ::fchownat(link.get(), "", owner_->uid, owner_->gid, AT_EMPTY_PATH);
    return out;
}

bool FileOps::open_held(const Location& loc, int flags, mode_t mode, std::uint8_t needs,
                        OpResult& out) const noexcept {
    // What the caller holds it may open again as far as it holds it, by any name: the kernel follows
    // the link to that very file (`> /dev/stderr`, `tee /dev/stdout`, `cat /dev/stdin`). An append-only
    // descriptor stays append-only. O_CREAT creates nothing here: the file is there, held.
    const std::optional<HeldFile> held = held_by_caller(loc);
    if (!held || !held_covers(*held, needs & ~policy::need_create)) return false;
    if ((held->flags & O_APPEND) && !(flags & O_APPEND) && (needs & policy::need_write)) return false;
    out.fd.reset(::openat(loc.dir.get(), loc.name, flags, mode));
    if (!out.fd) out.verdict.error = errno;
    return true;
}

bool FileOps::held_unnamed(const Location& loc, std::uint8_t needs) const noexcept {
    const std::optional<HeldFile> held = held_by_caller(loc);
    return held && !held->named && held_covers(*held, needs);
}

bool FileOps::held_covers(const HeldFile& held, std::uint8_t needs) noexcept {
    const unsigned mode = held.flags & O_ACCMODE;
    if ((needs & policy::need_read) && mode == O_WRONLY) return false;
    if ((needs & policy::need_write) && mode == O_RDONLY) return false;
    return (needs & policy::need_create) == 0;
}

std::optional<FileOps::HeldFile> FileOps::held_by_caller(const Location& loc) const noexcept {
    const std::string_view dir = loc.real.view().substr(0, loc.dir_len);
    if (!self_.is_fd_directory(dir)) return std::nullopt;
    char target[PathBuffer::kCapacity];
    const ssize_t n = ::readlinkat(loc.dir.get(), loc.name, target, sizeof target);
    if (n <= 0) return std::nullopt;
    const std::string_view text(target, static_cast<std::size_t>(n));
    HeldFile held;
    held.named = text.front() == '/' && !text.ends_with(" (deleted)");
    // How the caller holds it: "flags:" in /proc/<pid>/fdinfo/<n>, octal.
    char info[PathBuffer::kCapacity + 16];
    std::snprintf(info, sizeof info, "%.*sinfo/%s", static_cast<int>(dir.size()), dir.data(), loc.name);
    const unique_fd file(::open(info, O_RDONLY | O_CLOEXEC));
    char content[256];
    const ssize_t got = file ? ::read(file.get(), content, sizeof content - 1) : -1;
    if (got <= 0) return std::nullopt;
    content[got] = '\0';
    const char* flags = std::strstr(content, "flags:");
    if (flags == nullptr || std::sscanf(flags, "flags: %o", &held.flags) != 1) return std::nullopt;
    return held;
}

// Where the policy refuses to create a name but lets the worker look the path up (a directory on the
// way to a grant, or one granted for reading) and something is there, the kernel's own answer is
// EEXIST: it gives that before it checks the right to create, and a stat of the path shows as much.
// (CMake, `mkdir -p` and `install -d` make every ancestor of a directory and ignore EEXIST.)
Verdict FileOps::locate_new(std::string_view path, Location& loc) const noexcept {
    const Verdict verdict = locate(*profile_, self_, path, need_create, loc);
    if (verdict.allowed || verdict.error != EACCES) return verdict;
    Location seen;
    const Verdict visible = locate(*profile_, self_, path, need_any, seen);
    struct ::stat st {};
    if (visible.error != 0 || ::fstatat(seen.dir.get(), seen.name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return verdict;
    return {true, visible.rule, EEXIST};
}

bool FileOps::hands_over() const noexcept {
    // Made with the worker's identity (transparent mode), it is the worker's already, with the group
    // the kernel chose (a setgid directory's): nothing to change.
    return owner_ && !thread_identity::acting_as_worker() && ::geteuid() == 0;
}

void FileOps::give_to_worker(int fd) const noexcept {
    if (!hands_over()) return;
    // Best effort: the worker still has the descriptor if this fails (e.g. on a filesystem without
    // ownership), and the object stays the broker's.
    [[maybe_unused]] int rc = ::fchown(fd, owner_->uid, owner_->gid);
}

}  // namespace fdbroker::broker
