#include "broker/ops/openat2_compat.hpp"

#include <fcntl.h>
#include <linux/limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "broker/core/log.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/path_buffer.hpp"
#include "sandbox/kernel_features.hpp"

namespace fdbroker::broker {

namespace {

using policy::PathBuffer;

constexpr std::uint64_t kWalkable = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
constexpr int kMaxLinks = 40;  // MAXSYMLINKS: the kernel's limit on the symlinks of one lookup
// Every directory component of a path a PathBuffer holds takes two bytes at least ("a/").
constexpr std::size_t kMaxDepth = PathBuffer::kCapacity / 2 + 1;
constexpr int kDirFlags = O_PATH | O_DIRECTORY | O_CLOEXEC;
// What openat2 accepts beside O_PATH; anything else with it is EINVAL, where open(2) ignores it.
constexpr std::uint64_t kPathFlags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

int fail(int error) noexcept {
    errno = error;
    return -1;
}

// What openat2 itself refuses before it looks at the path, and what the walk cannot do.
int invalid(const open_how& how) noexcept {
    if ((how.flags >> 32) != 0 || (how.resolve & ~kWalkable) != 0) return EINVAL;
    if ((how.resolve & (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)) == 0) return EINVAL;
    const bool creates = (how.flags & O_CREAT) != 0 || (how.flags & O_TMPFILE) == O_TMPFILE;
    if ((how.mode != 0 && !creates) || (how.mode & ~std::uint64_t{07777}) != 0) return EINVAL;
    if ((how.flags & O_PATH) != 0 && (how.flags & ~kPathFlags) != 0) return EINVAL;
    return 0;
}

// A /proc magic link (an fd/N, cwd, exe, root, ns/... entry): a link on procfs whose text is not a
// plain relative path. procfs's ordinary links ("self" -> "1234", "mounts" -> "self/mounts") are
// relative names; a magic link's text is the absolute path of what it holds, or "pipe:[123]" and the
// like. Nothing outside procfs is magic.
bool is_magic(int link, std::string_view text) noexcept {
    struct ::statfs fs {};
    if (::fstatfs(link, &fs) != 0 || fs.f_type != PROC_SUPER_MAGIC) return false;
    if (text.front() == '/') return true;
    for (const char c : text) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                           c == '.' || c == '_' || c == '-' || c == '/';
        if (!plain) return true;
    }
    return false;
}

// The directories walked, innermost last. Under RESOLVE_BENEATH each is kept: ".." returns to the one
// the walk came from, so it can never climb above where the walk started, however the tree is renamed
// meanwhile. Otherwise only the current one is held (a descriptor for each level would spend the
// broker's descriptors on every deep path), and ".." is its real parent, as in the kernel.
class DirStack {
  public:
    explicit DirStack(bool beneath) noexcept : beneath_(beneath) {}
    [[nodiscard]] bool beneath() const noexcept { return beneath_; }
    [[nodiscard]] int top() const noexcept { return dirs_[depth_].get(); }
    [[nodiscard]] bool at_start() const noexcept { return depth_ == 0; }
    void restart(unique_fd base) noexcept {
        while (depth_ > 0)
            dirs_[depth_--].reset();
        dirs_[0] = std::move(base);
    }
    [[nodiscard]] bool push(unique_fd dir) noexcept {
        if (!beneath_) {
            dirs_[0] = std::move(dir);
            return true;
        }
        if (depth_ + 1 >= kMaxDepth) return false;
        dirs_[++depth_] = std::move(dir);
        return true;
    }
    void pop() noexcept { dirs_[depth_--].reset(); }

  private:
    bool beneath_;
    std::array<unique_fd, kMaxDepth> dirs_{};
    std::size_t depth_ = 0;
};

// One walk. Each step answers 0 to go on or the errno that ends the walk.
class Walker {
  public:
    explicit Walker(const open_how& how) noexcept : how_(how), dirs_((how.resolve & RESOLVE_BENEATH) != 0) {}
    int start(int dirfd, std::string_view path) noexcept;
    int enter(std::string_view comp, std::string_view after) noexcept;
    // The last component, not "." or "..": a descriptor, -1 with errno, or -2 when it was a symlink
    // whose text now takes its place in rest().
    int open_last(std::string_view comp) noexcept;
    int open_here() const noexcept {
        return ::openat(dirs_.top(), ".", static_cast<int>(how_.flags) | O_NOFOLLOW | O_CLOEXEC,
                        static_cast<mode_t>(how_.mode));
    }
    [[nodiscard]] std::string_view rest() const noexcept { return rest_; }
    void advance(std::string_view rest) noexcept { rest_ = rest; }

  private:
    int dotdot() noexcept;
    int follow(int link, std::string_view after) noexcept;
    int restart_at_root() noexcept;

    const open_how& how_;
    DirStack dirs_;
    std::string_view rest_;  // what remains to walk
    PathBuffer texts_[2];    // a symlink's text and what followed the link, alternately
    int spare_ = 0;          // the one of texts_ that rest_ does not point into
    int links_ = 0;
};

int Walker::restart_at_root() noexcept {
    unique_fd root(::openat(AT_FDCWD, "/", kDirFlags));
    if (!root) return errno;
    dirs_.restart(std::move(root));
    return 0;
}

int Walker::start(int dirfd, std::string_view path) noexcept {
    rest_ = path;
    if (path.front() == '/') return (how_.resolve & RESOLVE_BENEATH) != 0 ? EXDEV : restart_at_root();
    // Our own reference to dirfd, never closing the caller's; a dirfd that is not a directory fails at
    // the first component (ENOTDIR), as in the kernel.
    unique_fd base(dirfd == AT_FDCWD ? ::openat(AT_FDCWD, ".", kDirFlags)
                                     : ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
    if (!base) return errno;
    dirs_.restart(std::move(base));
    return 0;
}

int Walker::dotdot() noexcept {
    if (dirs_.beneath()) {
        if (dirs_.at_start()) return EXDEV;
        dirs_.pop();
        return 0;
    }
    // Unconstrained: the real parent (at "/", "/" itself).
    unique_fd up(::openat(dirs_.top(), "..", kDirFlags));
    if (!up) return errno;
    dirs_.restart(std::move(up));
    return 0;
}

// The symlink `link` met, with `after` (from its slash on) still to walk: its text takes its place.
int Walker::follow(int link, std::string_view after) noexcept {
    if ((how_.resolve & RESOLVE_NO_SYMLINKS) != 0 || ++links_ > kMaxLinks) return ELOOP;
    char text[PATH_MAX];
    const ssize_t n = ::readlinkat(link, "", text, sizeof text);
    if (n < 0) return errno;
    if (n == 0) return ENOENT;
    if (static_cast<std::size_t>(n) >= sizeof text) return ENAMETOOLONG;
    const std::string_view target(text, static_cast<std::size_t>(n));
    if (is_magic(link, target)) return ELOOP;  // RESOLVE_NO_MAGICLINKS: invalid() requires one of the two
    if (target.front() == '/') {
        if ((how_.resolve & RESOLVE_BENEATH) != 0) return EXDEV;
        if (const int error = restart_at_root(); error != 0) return error;
    }
    PathBuffer& next = texts_[spare_];
    if (!next.assign(target) || !next.append(after)) return ENAMETOOLONG;
    rest_ = next.view();
    spare_ = 1 - spare_;
    return 0;
}

// Copies a component into `name` (NUL-terminated for openat); ENAMETOOLONG past NAME_MAX.
int component_name(std::string_view comp, char (&name)[NAME_MAX + 1]) noexcept {
    if (comp.size() > NAME_MAX) return ENAMETOOLONG;
    std::memcpy(name, comp.data(), comp.size());
    name[comp.size()] = '\0';
    return 0;
}

// A directory on the way: "." stays, ".." climbs back, a directory is entered, a symlink followed.
int Walker::enter(std::string_view comp, std::string_view after) noexcept {
    if (comp == ".") return 0;
    if (comp == "..") return dotdot();
    char name[NAME_MAX + 1];
    if (const int error = component_name(comp, name); error != 0) return error;
    unique_fd fd(::openat(dirs_.top(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct ::stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) return errno;
    if (S_ISLNK(st.st_mode)) return follow(fd.get(), after);
    if (!S_ISDIR(st.st_mode)) return ENOTDIR;
    return dirs_.push(std::move(fd)) ? 0 : ENAMETOOLONG;
}

bool is_symlink(int fd) noexcept {
    struct ::stat st {};
    return ::fstat(fd, &st) == 0 && S_ISLNK(st.st_mode);
}

int Walker::open_last(std::string_view comp) noexcept {
    char name[NAME_MAX + 1];
    if (const int error = component_name(comp, name); error != 0) return fail(error);
    const int flags = static_cast<int>(how_.flags) | O_NOFOLLOW | O_CLOEXEC;
    unique_fd fd(::openat(dirs_.top(), name, flags, static_cast<mode_t>(how_.mode)));
    const bool follows = (how_.flags & O_NOFOLLOW) == 0;
    // Only O_PATH opens a symlink itself; any other open of one with O_NOFOLLOW fails (ELOOP, or
    // ENOTDIR with O_DIRECTORY), and then a look tells whether a symlink was there.
    if (fd && (!follows || (how_.flags & O_PATH) == 0 || !is_symlink(fd.get()))) return fd.release();
    const int error = errno;
    if (!fd) {
        if (!follows || (error != ELOOP && error != ENOTDIR)) return -1;
        fd.reset(::openat(dirs_.top(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!fd || !is_symlink(fd.get())) return fail(error);
    }
    if (const int failed = follow(fd.get(), {}); failed != 0) return fail(failed);
    return -2;
}

// The next component of `rest` (which starts past any slash), and what follows it from its slash on.
struct Split {
    std::string_view comp;
    std::string_view after;
    bool last = false;      // nothing but slashes after it
    bool trailing = false;  // ... and at least one: the path names a directory
};

Split split(std::string_view rest) noexcept {
    Split s;
    const std::size_t slash = rest.find('/');
    s.comp = rest.substr(0, slash);
    s.after = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    s.last = s.after.find_first_not_of('/') == std::string_view::npos;
    s.trailing = s.last && !s.after.empty();
    return s;
}

}  // namespace

int openat2_walk(int dirfd, const char* path, const open_how& how) noexcept {
    if (const int error = invalid(how); error != 0) return fail(error);
    const std::string_view whole(path);
    if (whole.empty()) return fail(ENOENT);
    if (whole.size() > PathBuffer::kCallerLimit) return fail(ENAMETOOLONG);
    Walker w(how);
    if (const int error = w.start(dirfd, whole); error != 0) return fail(error);
    for (;;) {
        const std::size_t from = w.rest().find_first_not_of('/');
        if (from == std::string_view::npos) return w.open_here();  // "/", or after a trailing slash
        const Split s = split(w.rest().substr(from));
        const bool dots = s.comp == "." || s.comp == "..";
        const bool creates = (how.flags & O_CREAT) != 0;
        if (!s.last || dots || (s.trailing && !creates)) {
            w.advance(s.after);
            if (const int error = w.enter(s.comp, s.after); error != 0) return fail(error);
            continue;
        }
        if (s.trailing) return fail(EISDIR);  // creating "name/"
        w.advance({});
        const int fd = w.open_last(s.comp);
        if (fd != -2) return fd;
    }
}

namespace {

// Whether openat2 answers: unknown until the first call, then remembered for the whole process.
enum Openat2 : int { unknown, present, absent };
std::atomic<int> openat2_state{unknown};

// Remembers that openat2 is missing; the first to notice says so, once for the process.
void openat2_is_absent() noexcept {
    int from = present;
    if (openat2_state.compare_exchange_strong(from, absent, std::memory_order_relaxed))
        log("openat2 answers ENOSYS (an old kernel, or a seccomp filter such as systemd's "
            "RestrictSUIDSGID=yes): paths are resolved with the broker's own walk, component by component");
}

// One openat2 (or the walk in its place) of a path the kernel takes whole.
int openat2_once(int dirfd, const char* path, const open_how& how) noexcept {
    int state = openat2_state.load(std::memory_order_relaxed);
    if (state == unknown) {
        // Simulated absence is the tests' (and doctor's) to know: no line for it.
        const int found = sandbox::simulated_absent(sandbox::Feature::openat2) ? absent : present;
        static_cast<void>(openat2_state.compare_exchange_strong(state, found, std::memory_order_relaxed));
        state = openat2_state.load(std::memory_order_relaxed);
    }
    if (state == present) {
        const long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
        openat2_is_absent();
    }
    return openat2_walk(dirfd, path, how);
}

}  // namespace

int openat2_compat(int dirfd, const char* path, const open_how& how) noexcept {
    std::string_view rest(path);
    if (rest.size() <= PathBuffer::kCallerLimit) return openat2_once(dirfd, path, how);
    // Under RESOLVE_IN_ROOT an absolute symlink met past a step would start at that step, not at dirfd.
    if ((how.resolve & RESOLVE_IN_ROOT) != 0) return fail(ENAMETOOLONG);
    // Longer than the kernel takes: the longest prefix that fits and ends at a '/' is opened as a
    // directory with the same RESOLVE_* flags, and the walk goes on from it. Without RESOLVE_BENEATH
    // that is the walk the kernel makes (".." from a directory is its real parent either way); with it,
    // each step is confined beneath the one before, which is stricter, never looser.
    open_how step{};
    step.flags = kDirFlags;
    step.resolve = how.resolve;
    unique_fd reached;
    char prefix[PATH_MAX];
    while (rest.size() > PathBuffer::kCallerLimit) {
        const std::size_t slash = rest.substr(0, PathBuffer::kCallerLimit).rfind('/');
        if (slash == std::string_view::npos) return fail(ENAMETOOLONG);  // a name longer than NAME_MAX
        std::memcpy(prefix, rest.data(), slash + 1);
        prefix[slash + 1] = '\0';
        unique_fd next(openat2_once(reached ? reached.get() : dirfd, prefix, step));
        if (!next) return -1;
        reached = std::move(next);
        // What follows is relative to the step, however many slashes separate them.
        const std::size_t from = rest.find_first_not_of('/', slash);
        rest = from == std::string_view::npos ? std::string_view(".") : rest.substr(from);
    }
    return openat2_once(reached.get(), rest.data(), how);
}

}  // namespace fdbroker::broker
