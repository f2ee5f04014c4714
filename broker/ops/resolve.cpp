#include "broker/ops/resolve.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "broker/core/worker_identity.hpp"
#include "broker/ops/openat2_compat.hpp"
#include "policy/path.hpp"

namespace fdbroker::broker {

namespace {

int openat2_dir(int dirfd, const char* path, std::uint64_t resolve) noexcept {
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = resolve;
    for (int attempt = 0;; ++attempt) {
        const int fd = openat2_compat(dirfd, path, how);
        // EAGAIN: a rename or mount changed the tree during openat2's RESOLVE_BENEATH walk; try again.
        // (The userspace walk never answers EAGAIN.)
        if (fd < 0 && errno == EAGAIN && attempt < 8) continue;
        return fd;
    }
}

Verdict deny(const policy::Rule* rule = nullptr) noexcept {
    return {false, rule, EACCES};
}
Verdict fail(int error, const policy::Rule* rule) noexcept {
    return {true, rule, error};
}

// Whether a symlink's text climbs with ".." after a name: the kernel resolves that ".." from wherever
// the name leads (another symlink's target, maybe where the policy grants nothing), which the text
// does not say. Leading ".." components climb from the link's own directory, whose real path is known.
bool climbs_after_a_name(std::string_view target) noexcept {
    bool named = false;
    while (!target.empty()) {
        const std::size_t slash = target.find('/');
        const std::string_view component = target.substr(0, slash);
        if (component == "..") {
            if (named) return true;
        } else if (!component.empty() && component != ".") {
            named = true;
        }
        if (slash == std::string_view::npos) break;
        target.remove_prefix(slash + 1);
    }
    return false;
}

// Linux follows at most 40 symlinks in one lookup.
constexpr int kKernelLinkLimit = 40;

// After the kernel refused to resolve the directory `dir` with ELOOP (a symlink loop, or a /proc magic
// link): whether it is a loop every link of which lies where the policy grants something, so that the
// kernel's own ELOOP tells the worker nothing the granted tree does not hold. Each symlink met is read
// and its text put in its place, walking from the root again, until more links than the kernel follows
// have been met. Anything else is not such a loop: a link where nothing is granted, one in /proc (a
// magic link), a target that climbs with ".." after a name, a walk that ends.
bool granted_loop(const policy::Profile& profile, const ProcSelf& self, std::string_view dir) noexcept {
    PathBuffer paths[2];
    if (!paths[0].assign(dir)) return false;
    int current = 0;
    int links = 0;
    std::size_t at = 1;  // where the next component starts
    for (;;) {
        const std::string_view whole = paths[current].view();
        const std::size_t end = std::min(whole.find('/', at), whole.size());
        PathBuffer prefix;
        struct ::stat st {};
        if (!prefix.assign(whole.substr(0, end)) ||
            ::fstatat(AT_FDCWD, prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return false;
        if (!S_ISLNK(st.st_mode)) {
            if (!S_ISDIR(st.st_mode) || end == whole.size()) return false;
            at = end + 1;
            continue;
        }
        if (++links > kKernelLinkLimit) return true;
        const std::string_view link = prefix.view();
        if (link.starts_with("/proc/") || !judge(profile, self, link, policy::need_any).allowed) return false;
        char target[PathBuffer::kCapacity];
        const ssize_t n = ::readlink(prefix.c_str(), target, sizeof target);
        if (n <= 0 || static_cast<std::size_t>(n) >= sizeof target) return false;
        const std::string_view text(target, static_cast<std::size_t>(n));
        // The link's text in its place, then what followed it.
        PathBuffer& next = paths[1 - current];
        if (climbs_after_a_name(text) || !policy::join_lexically(policy::parent_of(link), text, next) ||
            (end < whole.size() && !next.append(whole.substr(end))))
            return false;
        current = 1 - current;
        at = 1;
    }
}

// The directory a failed resolution was walking to, and what judges the links met on the way.
struct Walk {
    const policy::Profile& profile;
    const ProcSelf& self;
    std::string_view dir;
};

bool stopped_where_visible(const Walk& walk, int anchor, std::string_view rel, std::uint64_t resolve,
                           int error) noexcept;

// A failed resolution may report the real errno only when no symlink was involved, or when the walk
// stopped where the worker may look (stopped_where_visible); otherwise a symlink planted in a granted
// tree would tell the worker whether some denied directory exists. A symlink loop is ELOOP where its
// every link lies in granted territory, as it is natively; a /proc magic link, or a loop through
// anything else, is never followed.
Verdict resolution_failure(const Walk& walk, int anchor, const char* rel, std::uint64_t resolve, int error,
                           const policy::Rule* rule) noexcept {
    if (error == ELOOP) return granted_loop(walk.profile, walk.self, walk.dir) ? fail(ELOOP, rule) : deny();
    unique_fd probe(openat2_dir(anchor, rel, resolve | RESOLVE_NO_SYMLINKS));
    if (!probe && errno == error) return fail(error, rule);
    if ((error == ENOENT || error == ENOTDIR) && stopped_where_visible(walk, anchor, rel, resolve, error))
        return fail(error, rule);
    return deny();
}

bool is_under(std::string_view dir, std::string_view anchor) noexcept {
    if (anchor == "/") return true;
    return dir.starts_with(anchor) && (dir.size() == anchor.size() || dir[anchor.size()] == '/');
}

// The real path of an open directory, as the kernel names it.
bool real_path_of(int fd, PathBuffer& out) noexcept {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = ::readlink(link, out.data(), PathBuffer::kCapacity);
    if (n <= 0 || static_cast<std::size_t>(n) >= PathBuffer::kCapacity) return false;
    out.truncate(static_cast<std::size_t>(n));
    // A directory removed since it was opened reads "... (deleted)"; anything not absolute is not a
    // path in our tree (e.g. another mount namespace's root).
    return out.view().front() == '/' && !out.view().ends_with(" (deleted)");
}

// After a walk through symlinks failed with `error` (ENOENT, ENOTDIR): whether it stopped at a name
// the worker may look up, found again the kernel's way, one component at a time: the directory
// reached last, by its real path, and the component it lacks (or that is no directory). Then the
// kernel's errno says only what a stat of that name would (a missing module in a search path reached
// through a symlinked directory, as Perl's @INC has).
bool stopped_where_visible(const Walk& walk, int anchor, std::string_view rel, std::uint64_t resolve,
                           int error) noexcept {
    PathBuffer prefix;
    unique_fd reached(openat2_dir(anchor, rel.starts_with('/') ? "/" : ".", resolve));
    for (std::size_t at = rel.find_first_not_of('/'); reached && at < rel.size();) {
        const std::size_t end = std::min(rel.find('/', at), rel.size());
        if (!prefix.assign(rel.substr(0, end))) return false;
        unique_fd next(openat2_dir(anchor, prefix.c_str(), resolve));
        if (!next) {
            if (errno != error) return false;
            PathBuffer stopped;
            const std::string_view name = rel.substr(at, end - at);
            if (!real_path_of(reached.get(), stopped) || (stopped.view() != "/" && !stopped.append("/")) ||
                !stopped.append(name))
                return false;
            // A symlink there failed beyond itself, where its text leads: its own name says nothing of
            // that place.
            struct ::stat st {};
            const char* last = stopped.c_str() + stopped.size() - name.size();
            if (::fstatat(reached.get(), last, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return false;
            return judge(walk.profile, walk.self, stopped.view(), policy::need_any).allowed;
        }
        reached = std::move(next);
        at = rel.find_first_not_of('/', end);
    }
    return false;
}

}  // namespace

namespace {
Verdict locate_once(const policy::Profile& profile, const ProcSelf& self, std::string_view path,
                    std::uint8_t needs, Location& out) noexcept;
}  // namespace

namespace {
thread_local JudgeWitness* witness = nullptr;
}  // namespace

JudgeWitness* witness_judgements(JudgeWitness* w) noexcept {
    JudgeWitness* const before = witness;
    witness = w;
    return before;
}

policy::Decision judge(const policy::Profile& profile, const ProcSelf& self, std::string_view path,
                       std::uint8_t needs) noexcept {
    if (witness != nullptr) [[unlikely]]
        witness->judged(path, needs);
    constexpr std::uint8_t looking = policy::need_read | policy::need_any;
    // Its own entries the caller may read; its fd/N links lead to files judged where they land (or,
    // without a name, held: FileOps::held_unnamed), so passing through one needs no rule.
    if (self.owns(path) && ((needs & ~looking) == 0 || self.is_fd_directory(policy::parent_of(path))))
        return {true, nullptr};
    return profile.decide(path, needs);
}

Verdict locate(const policy::Profile& profile, const ProcSelf& self, std::string_view path,
               std::uint8_t needs, Location& out) noexcept {
    const Verdict verdict = locate_once(profile, self, path, needs, out);
    // What lies in /proc is reached on the worker's own standing: a walk that got there (by a symlink)
    // with the CAP_SYS_PTRACE that transparent mode's file operations keep is made again without it
    // (worker_identity.hpp).
    const std::string_view real = out.real.view();
    if (!(real == "/proc" || real.starts_with("/proc/")) || !thread_identity::without_ptrace())
        return verdict;
    out.dir.reset();
    return locate_once(profile, self, path, needs, out);
}

namespace {

Verdict locate_once(const policy::Profile& profile, const ProcSelf& self, std::string_view path,
                    std::uint8_t needs, Location& out) noexcept {
    PathBuffer rewritten;
    if (self.rewrite(path, rewritten)) {
        if (rewritten.size() == 0) return deny();
        path = rewritten.view();
    }
    const policy::Decision lexical = judge(profile, self, path, needs);
    if (!lexical.allowed) return deny(lexical.rule);

    const bool is_root = path == "/";
    const std::string_view parent = is_root ? std::string_view("/") : policy::parent_of(path);
    if (!is_root && !out.name_storage.assign(policy::name_of(path))) return fail(ENAMETOOLONG, lexical.rule);
    out.name = is_root ? "." : out.name_storage.c_str();

    PathBuffer buf;
    if (!buf.assign(parent)) return fail(ENAMETOOLONG, lexical.rule);
    // Fast path: a walk that meets no symlink and no magic link reaches exactly the path as written
    // (normal, so no "." or ".."), which the lexical decision has just judged. Only when the kernel
    // reports a symlink on the way (ELOOP) does the request take the careful path below.
    out.dir.reset(openat2_dir(AT_FDCWD, buf.c_str(), RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS));
    if (out.dir) {
        static_cast<void>(out.real.assign(path));  // fits: both are PathBuffers
        out.dir_len = parent.size();
        return {true, lexical.rule, 0};
    }
    // Failing without meeting a symlink, the walk failed on the path as written: a real error.
    if (errno != ELOOP) return fail(errno, lexical.rule);

    const Walk walk{profile, self, parent};
    // Careful path. Open the rule's anchor (written by the administrator, so its own symlinks are
    // followed), then walk from it to the parent with the kernel refusing to leave it.
    std::string_view anchor = lexical.rule != nullptr ? lexical.rule->pattern.anchor() : parent;
    if (!is_under(parent, anchor)) anchor = parent;  // "/a/**" granting "/a" itself
    if (!buf.assign(anchor)) return fail(ENAMETOOLONG, lexical.rule);
    unique_fd anchor_fd(openat2_dir(AT_FDCWD, buf.c_str(), RESOLVE_NO_MAGICLINKS));
    if (!anchor_fd)
        return resolution_failure(walk, AT_FDCWD, buf.c_str(), RESOLVE_NO_MAGICLINKS, errno, lexical.rule);

    std::string_view rel = parent.substr(anchor.size());
    while (!rel.empty() && rel.front() == '/')
        rel.remove_prefix(1);
    if (rel.empty()) {
        out.dir = std::move(anchor_fd);
    } else {
        if (!buf.assign(rel)) return fail(ENAMETOOLONG, lexical.rule);
        out.dir.reset(openat2_dir(anchor_fd.get(), buf.c_str(), RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS));
        if (!out.dir && errno == EXDEV) {
            // A symlink leads out of the anchor. Follow it from the root instead: what it reaches is
            // judged below by its real path, so a target that is also granted still works.
            if (!buf.assign(parent)) return fail(ENAMETOOLONG, lexical.rule);
            out.dir.reset(openat2_dir(AT_FDCWD, buf.c_str(), RESOLVE_NO_MAGICLINKS));
            if (!out.dir)
                return resolution_failure(walk, AT_FDCWD, buf.c_str(), RESOLVE_NO_MAGICLINKS, errno,
                                          lexical.rule);
        } else if (!out.dir) {
            return resolution_failure(walk, anchor_fd.get(), buf.c_str(),
                                      RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, errno, lexical.rule);
        }
    }

    // Judge what the kernel actually reached.
    if (!real_path_of(out.dir.get(), out.real)) return deny();
    out.dir_len = out.real.size();
    if (!is_root) {
        const bool fits = (out.real.view() == "/" || out.real.append("/")) && out.real.append(out.name);
        if (!fits) return fail(ENAMETOOLONG, lexical.rule);
    }
    const policy::Decision real = judge(profile, self, out.real.view(), needs);
    if (!real.allowed) return deny(real.rule);
    return {true, real.rule, 0};
}

}  // namespace

}  // namespace fdbroker::broker
