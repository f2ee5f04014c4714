// Changes to what a file is rather than what it holds: mode, owner, times, size, extended attributes,
// hard links and special files. Each acts on an O_PATH descriptor of the object the policy judged, or
// on the judged directory and name, never on a path the worker could swap in between; the kernel's
// permission checks are the worker's own, as the caller performs these with its identity.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "broker/ops/file_ops.hpp"
#include "broker/ops/walk.hpp"

namespace fdbroker::broker {

namespace {

using policy::need_any;
using policy::need_create;
using policy::need_read;
using policy::need_write;

// The object behind an O_PATH descriptor, by name: calls that have no descriptor form for O_PATH
// (chmod, truncate, the xattr calls) reach it through its /proc magic link, which lands on the object
// itself, a symlink included, and never follows anything further.
class ProcFd {
  public:
    explicit ProcFd(int fd) noexcept { std::snprintf(path_, sizeof path_, "/proc/self/fd/%d", fd); }
    [[nodiscard]] const char* c_str() const noexcept { return path_; }

  private:
    char path_[32];
};

int result_of(ssize_t rc, OpResult& out) noexcept {
    if (rc < 0) return errno;
    out.value = static_cast<int>(rc);
    return 0;
}

}  // namespace

template <class Act>
OpResult FileOps::on_object(std::string_view path, std::uint8_t needs, bool follow_final,
                            Act&& act) const noexcept {
    return follow_links(*profile_, self_, path, needs, [&](const Location& loc, OpResult& out) {
        const unique_fd object(::openat(loc.dir.get(), loc.name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct ::stat st {};
        if (!object || ::fstat(object.get(), &st) != 0) {
            out.verdict.error = errno;
            return Step::done;
        }
        if (follow_final && S_ISLNK(st.st_mode)) return Step::symlink;
        out.verdict.error = act(loc, object.get(), st, out);
        return Step::done;
    });
}

OpResult FileOps::chmod(std::string_view path, mode_t mode, bool follow_final) const noexcept {
    return on_object(path, need_write, follow_final,
                     [mode](const Location&, int fd, const struct ::stat& st, OpResult&) {
                         // A symlink's own mode cannot be changed (fchmodat2 with AT_SYMLINK_NOFOLLOW says
                         // so).
                         if (S_ISLNK(st.st_mode)) return EOPNOTSUPP;
                         return ::chmod(ProcFd(fd).c_str(), mode & 07777) == 0 ? 0 : errno;
                     });
}

OpResult FileOps::chown(std::string_view path, uid_t uid, gid_t gid, bool follow_final) const noexcept {
    return on_object(path, need_write, follow_final,
                     [uid, gid](const Location&, int fd, const struct ::stat&, OpResult&) {
                         return ::fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == 0 ? 0 : errno;
                     });
}

OpResult FileOps::truncate(std::string_view path, off_t length) const noexcept {
    if (length < 0) return {{true, nullptr, EINVAL}, 0, {}};
    return on_object(path, need_write, true,
                     [length](const Location&, int fd, const struct ::stat&, OpResult&) {
                         return ::truncate(ProcFd(fd).c_str(), length) == 0 ? 0 : errno;
                     });
}

OpResult FileOps::utimens(std::string_view path, const struct ::timespec* times,
                          bool follow_final) const noexcept {
    return on_object(path, need_write, follow_final,
                     [times](const Location&, int fd, const struct ::stat&, OpResult&) {
                         return ::utimensat(fd, "", times, AT_EMPTY_PATH) == 0 ? 0 : errno;
                     });
}

// Extended attributes are read where the path may be read. Anywhere else the worker may see (a file it
// may only write or create, a directory on the way to a grant, which `ls -l` asks for its ACL) the
// object looks as if it had none: an answer that reveals nothing, rather than an error that programs
// listing metadata report.
OpResult FileOps::get_xattr(std::string_view path, const char* name, std::span<char> buf,
                            bool follow_final) const noexcept {
    return on_object(path, need_any, follow_final,
                     [&](const Location& loc, int fd, const struct ::stat&, OpResult& out) {
                         if (!profile_->decide(loc.real.view(), need_read).allowed) return ENODATA;
                         return result_of(::getxattr(ProcFd(fd).c_str(), name, buf.data(), buf.size()), out);
                     });
}

OpResult FileOps::list_xattr(std::string_view path, std::span<char> buf, bool follow_final) const noexcept {
    return on_object(path, need_any, follow_final,
                     [&](const Location& loc, int fd, const struct ::stat&, OpResult& out) {
                         if (!profile_->decide(loc.real.view(), need_read).allowed) return 0;
                         return result_of(::listxattr(ProcFd(fd).c_str(), buf.data(), buf.size()), out);
                     });
}

OpResult FileOps::set_xattr(std::string_view path, const char* name, std::span<const char> value, int flags,
                            bool follow_final) const noexcept {
    return on_object(
        path, need_write, follow_final, [&](const Location&, int fd, const struct ::stat&, OpResult&) {
            return ::setxattr(ProcFd(fd).c_str(), name, value.data(), value.size(), flags) == 0 ? 0 : errno;
        });
}

OpResult FileOps::remove_xattr(std::string_view path, const char* name, bool follow_final) const noexcept {
    return on_object(path, need_write, follow_final,
                     [name](const Location&, int fd, const struct ::stat&, OpResult&) {
                         return ::removexattr(ProcFd(fd).c_str(), name) == 0 ? 0 : errno;
                     });
}

// The link is made by name (linkat without AT_EMPTY_PATH, which needs CAP_DAC_READ_SEARCH), on the
// judged directories: if the old name is swapped meanwhile, what gets linked is whatever is at that
// name, which the rules for that name cover. The kernel's protected_hardlinks rules apply to the
// worker's identity.
OpResult FileOps::link(std::string_view from, std::string_view to, bool follow_from) const noexcept {
    return follow_links(*profile_, self_, from, need_any, [&](const Location& src, OpResult& out) {
        struct ::stat st {};
        if (::fstatat(src.dir.get(), src.name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            out.verdict.error = errno;
            return Step::done;
        }
        // An O_TMPFILE file (or a deleted one) the caller holds for writing gets its name through its
        // own /proc link: its content is the caller's to write already, and the new name is judged.
        const bool unnamed = follow_from && S_ISLNK(st.st_mode) && held_unnamed(src, need_write);
        if (follow_from && S_ISLNK(st.st_mode) && !unnamed) return Step::symlink;
        Location dst;
        out.verdict = locate(*profile_, self_, to, need_create, dst);
        if (out.verdict.error != 0) return Step::done;
        if (unnamed) {
            if (::linkat(src.dir.get(), src.name, dst.dir.get(), dst.name, AT_SYMLINK_FOLLOW) != 0)
                out.verdict.error = errno;
            return Step::done;
        }
        // Another file system: the kernel's answer, whatever the rules would say.
        struct ::stat to_dir {};
        if (::fstat(dst.dir.get(), &to_dir) == 0 && to_dir.st_dev != st.st_dev) {
            out.verdict.error = EXDEV;
            return Step::done;
        }
        const policy::Decision d = profile_->decide_move(src.real.view(), dst.real.view(), false);
        if (!d.allowed) {
            out.verdict = {false, d.rule, EACCES};
            return Step::done;
        }
        if (::linkat(src.dir.get(), src.name, dst.dir.get(), dst.name, 0) != 0) out.verdict.error = errno;
        return Step::done;
    });
}

OpResult FileOps::lookup(std::string_view path, std::span<char> real) const noexcept {
    return on_object(path, need_any, true,
                     [real](const Location&, int fd, const struct ::stat& st, OpResult& out) {
                         if (!S_ISDIR(st.st_mode)) return ENOTDIR;
                         const ssize_t n = ::readlink(ProcFd(fd).c_str(), real.data(), real.size());
                         if (n <= 0 || static_cast<std::size_t>(n) >= real.size() || real[0] != '/')
                             return ENOENT;
                         out.value = static_cast<int>(n);
                         return 0;
                     });
}

OpResult FileOps::mknod(std::string_view path, mode_t mode, dev_t dev) const noexcept {
    Location loc;
    OpResult out;
    out.verdict = locate_new(path, loc);
    if (out.verdict.error == 0 && ::mknodat(loc.dir.get(), loc.name, mode, dev) != 0)
        out.verdict.error = errno;
    return out;
}

}  // namespace fdbroker::broker
