#include "broker/notify/path_form.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "broker/ops/proc_self.hpp"
#include "policy/path.hpp"

namespace fdbroker::broker {

namespace {

struct Looked {
    int error = 0;
    bool directory = false;
};

// The path looked up as the operation would (the policy's and the worker's permissions included).
Looked look(const Performer& performer, const Caller& caller, const op::PathBuffer& path, bool follow) {
    op::Operation stat{std::in_place_type<op::Stat>};
    auto& s = std::get<op::Stat>(stat);
    static_cast<void>(s.path.assign(path.view()));  // fits: it came from a PathBuffer
    s.follow = follow;
    Outcome out;
    performer.perform(caller, stat, out);
    return {out.error, out.error == 0 && S_ISDIR(out.st.st_mode)};
}

int existing_directory(const Performer& performer, const Caller& caller, const op::PathBuffer& path) {
    const Looked l = look(performer, caller, path, true);
    return l.error != 0 ? l.error : (l.directory ? 0 : ENOTDIR);
}

// Through a trailing slash only a directory is ever created: a new name of another kind is ENOENT
// while missing, EEXIST once there.
int new_name(const Performer& performer, const Caller& caller, const op::PathBuffer& path) {
    const Looked l = look(performer, caller, path, false);
    return l.error != 0 ? l.error : EEXIST;
}

// rename(2): a trailing slash on either name needs the source to be a directory; the target may be
// missing, or must be a directory.
int rename_slash(const Performer& performer, const Caller& caller, const op::Rename& o,
                 const std::array<PathEnd, 2>& slash) {
    if (const int err = existing_directory(performer, caller, o.from); err != 0) return err;
    if (!slash[1]) return 0;
    const Looked to = look(performer, caller, o.to, false);
    if (to.error == ENOENT) return 0;
    return to.error != 0 ? to.error : (to.directory ? 0 : ENOTDIR);
}

template <class T>
constexpr bool kFollows =
    std::is_same_v<T, op::Stat> || std::is_same_v<T, op::Access> || std::is_same_v<T, op::Chmod> ||
    std::is_same_v<T, op::Chown> || std::is_same_v<T, op::Utimens> || std::is_same_v<T, op::Xattr>;

// A last component "." or ".." names a directory by one of its links, which the calls that remove or
// make a name refuse (rmdir(2), rename(2), mkdir(2)): 0 where the slash rules alone apply.
template <class T>
int on_dots(const std::array<PathEnd, 2>& end) {
    const std::uint8_t dots = end[0].dots;
    if constexpr (std::is_same_v<T, op::Rmdir>) {
        if (dots != 0) return dots == 1 ? EINVAL : ENOTEMPTY;
    } else if constexpr (std::is_same_v<T, op::Rename>) {
        if (dots != 0 || end[1].dots != 0) return EBUSY;
    } else if constexpr (std::is_same_v<T, op::Unlink>) {
        if (dots != 0) return EISDIR;
    } else if constexpr (std::is_same_v<T, op::Mkdir> || std::is_same_v<T, op::Symlink> ||
                         std::is_same_v<T, op::Mknod>) {
        if (dots != 0) return EEXIST;
    } else if constexpr (std::is_same_v<T, op::Link>) {
        if (end[1].dots != 0) return EEXIST;
    }
    return 0;
}

template <class T>
int on_operation(T& o, const Performer& performer, const Caller& caller,
                 const std::array<PathEnd, 2>& slash) {
    if (const int err = on_dots<T>(slash); err != 0) return err;
    if constexpr (std::is_same_v<T, op::Open>) {
        if ((o.flags & O_CREAT) && (o.flags & O_DIRECTORY)) return EINVAL;  // as without the slash
        if (o.flags & O_CREAT) return EISDIR;
        o.flags &= ~static_cast<std::uint64_t>(O_NOFOLLOW);  // the slash follows a final symlink regardless
        return existing_directory(performer, caller, o.path);
    } else if constexpr (std::is_same_v<T, op::Unlink>) {
        const Looked l = look(performer, caller, o.path, false);
        return l.error != 0 ? l.error : (l.directory ? EISDIR : ENOTDIR);
    } else if constexpr (std::is_same_v<T, op::Rename>) {
        return rename_slash(performer, caller, o, slash);
    } else if constexpr (std::is_same_v<T, op::Symlink> || std::is_same_v<T, op::Mknod>) {
        return new_name(performer, caller, o.path);
    } else if constexpr (std::is_same_v<T, op::Link>) {
        if (slash[0])
            if (const int err = existing_directory(performer, caller, o.from); err != 0) return err;
        return slash[1] ? new_name(performer, caller, o.to) : 0;
    } else if constexpr (std::is_same_v<T, op::Readlink>) {
        // The slash follows the link to a directory, which is not a link.
        const int err = existing_directory(performer, caller, o.path);
        return err != 0 ? err : EINVAL;
    } else if constexpr (std::is_same_v<T, op::Statx>) {
        o.flags &= ~AT_SYMLINK_NOFOLLOW;
        return existing_directory(performer, caller, o.path);
    } else if constexpr (kFollows<T>) {
        o.follow = true;
        return existing_directory(performer, caller, o.path);
    } else if constexpr (std::is_same_v<T, op::Truncate> || std::is_same_v<T, op::Rmdir>) {
        return existing_directory(performer, caller, o.path);
    } else {
        return 0;  // mkdir, and what takes no path
    }
}

// The real directory `path` leads to (op::Lookup, judged hop by hop as the worker).
int real_directory(const Performer& performer, const Caller& caller, std::string_view path,
                   op::PathBuffer& out) {
    op::Operation lookup{std::in_place_type<op::Lookup>};
    static_cast<void>(std::get<op::Lookup>(lookup).path.assign(path));  // fits: it came from a PathBuffer
    Outcome o;
    performer.perform(caller, lookup, o);
    if (o.error != 0) return o.error;
    return out.assign({o.link, static_cast<std::size_t>(o.value)}) ? 0 : ENAMETOOLONG;
}

// `unresolved` as the kernel walks it: names are taken as written until a ".." follows one, which goes
// to the parent of the directory the path so far really leads to.
int walk(const op::PathBuffer& unresolved, const Performer& performer, const Caller& caller,
         op::PathBuffer& out) {
    op::PathBuffer path;
    static_cast<void>(path.assign("/"));
    bool named = false;  // a name was appended since `path` was last real
    const std::string_view raw = unresolved.view();
    for (std::size_t start = 0; start <= raw.size();) {
        std::size_t end = raw.find('/', start);
        if (end == std::string_view::npos) end = raw.size();
        const std::string_view c = raw.substr(start, end - start);
        start = end + 1;
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (named)
                if (const int err = real_directory(performer, caller, path.view(), path); err != 0)
                    return err;
            named = false;
            if (path.view() != "/")
                path.truncate(std::max<std::size_t>(1, policy::parent_of(path.view()).size()));
            continue;
        }
        const bool fits = (path.view() == "/" || path.append("/")) && path.append(c);
        if (!fits) return ENAMETOOLONG;
        named = true;
    }
    return out.assign(path.view()) ? 0 : ENAMETOOLONG;
}

// What openat2's scoping flags allow a walk from `root`: RESOLVE_NO_SYMLINKS no symlink at all (ELOOP),
// RESOLVE_BENEATH never leaving root (EXDEV: an absolute path or link, or ".." above it),
// RESOLVE_IN_ROOT taking root as "/" for all of them, RESOLVE_NO_XDEV never leaving root's mount
// (EXDEV: a mount point, ".." out of a mount's root, a jump to a root on another mount). Each step is looked
// up and each link read as the operation's own (judged, as the worker); `out` is where the walk leads.
class ScopedWalk {
  public:
    ScopedWalk(const Performer& performer, const Caller& caller, std::uint64_t scope,
               const op::PathBuffer& root)
        : performer_(performer), caller_(caller), scope_(scope), root_(root) {}

    int run(std::string_view raw, bool follow_final, op::PathBuffer& out) {
        // The kernel knows the root only once a walk starts there (an absolute path, RESOLVE_IN_ROOT);
        // until then, with RESOLVE_NO_XDEV, every jump to it counts as leaving the mount.
        rooted_ = raw.starts_with('/') || (scope_ & RESOLVE_IN_ROOT);
        if (!raw.starts_with('/'))
            if (const int err = on_mount(root_); err != 0) return err;
        if (const int err = push(raw); err != 0) return err;
        for (int hops = 0; !pending_.empty();) {
            const std::string c = std::move(pending_.back());
            pending_.pop_back();
            if (c.empty() || c == ".") continue;
            if (c == "..") {
                if (const int err = up(); err != 0) return err;
                continue;
            }
            if (const int err = step(c, follow_final || !pending_.empty(), hops); err != 0) return err;
        }
        return out.assign(path_.view()) ? 0 : ENAMETOOLONG;
    }

  private:
    // Puts the components of `text` before those still to walk; an absolute one starts over.
    int push(std::string_view text) {
        if (text.starts_with('/')) {
            if ((scope_ & RESOLVE_BENEATH) || ((scope_ & RESOLVE_NO_XDEV) && !rooted_)) return EXDEV;
            const bool restarted =
                (scope_ & RESOLVE_IN_ROOT) ? path_.assign(root_.view()) : path_.assign("/");
            if (!restarted) return ENAMETOOLONG;
            if (const int err = on_mount(path_); err != 0) return err;
        } else if (path_.size() == 0 && !path_.assign(root_.view())) {
            return ENAMETOOLONG;
        }
        std::vector<std::string> parts;
        for (std::size_t start = 0; start <= text.size();) {
            std::size_t end = text.find('/', start);
            if (end == std::string_view::npos) end = text.size();
            parts.emplace_back(text.substr(start, end - start));
            start = end + 1;
        }
        pending_.insert(pending_.end(), parts.rbegin(), parts.rend());
        return 0;
    }
    int up() {
        if ((scope_ & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) && path_.view() == root_.view())
            return (scope_ & RESOLVE_BENEATH) ? EXDEV : 0;
        if (path_.view() != "/")
            path_.truncate(std::max<std::size_t>(1, policy::parent_of(path_.view()).size()));
        return on_mount(path_);
    }
    // RESOLVE_NO_XDEV: whether `path` (not followed) lies on the mount the walk started on. The first
    // call, on the walk's root, notes that mount.
    int on_mount(const op::PathBuffer& path) {
        if (!(scope_ & RESOLVE_NO_XDEV)) return 0;
        Outcome looked = perform<op::Statx>(path, [](op::Statx& s) {
            s.flags = AT_SYMLINK_NOFOLLOW;
            s.mask = STATX_MNT_ID;
        });
        if (looked.error != 0) return looked.error;
        if (!(looked.stx.stx_mask & STATX_MNT_ID)) return 0;  // a kernel before 5.8 cannot say
        if (!mount_) mount_ = looked.stx.stx_mnt_id;
        return *mount_ == looked.stx.stx_mnt_id ? 0 : EXDEV;
    }
    int step(const std::string& name, bool follows, int& hops) {
        const std::size_t before = path_.size();
        if (!((path_.view() == "/" || path_.append("/")) && path_.append(name))) return ENAMETOOLONG;
        Outcome looked = perform<op::Stat>(path_, [](op::Stat& s) { s.follow = false; });
        if (looked.error == ENOENT && pending_.empty()) return 0;  // the open says what a missing name means
        if (looked.error != 0) return looked.error;
        if (const int err = on_mount(path_); err != 0) return err;
        // The links the operations follow by name (proc_self.hpp) look like what they lead to.
        const std::string_view alias = ProcSelf::alias_text(path_.view());
        const bool own = path_.view() == "/proc/self" || path_.view() == "/proc/thread-self";
        if (!(S_ISLNK(looked.st.st_mode) || own || !alias.empty()) || !follows) return 0;
        if ((scope_ & RESOLVE_NO_SYMLINKS) || ++hops > 40) return ELOOP;
        std::string text(alias);
        if (alias.empty()) {
            Outcome link =
                perform<op::Readlink>(path_, [](op::Readlink& r) { r.size = sizeof(Outcome::link); });
            if (link.error != 0) return link.error;
            text.assign(link.link, static_cast<std::size_t>(link.value));
        }
        path_.truncate(before);
        return push(text);
    }
    template <class Op, class Set>
    Outcome perform(const op::PathBuffer& path, Set&& set) const {
        op::Operation operation{std::in_place_type<Op>};
        Op& o = std::get<Op>(operation);
        static_cast<void>(o.path.assign(path.view()));  // fits: it came from a PathBuffer
        set(o);
        Outcome out;
        performer_.perform(caller_, operation, out);
        return out;
    }

    const Performer& performer_;
    const Caller& caller_;
    std::uint64_t scope_;
    const op::PathBuffer& root_;
    op::PathBuffer path_;
    std::vector<std::string> pending_;    // components still to walk, the next one last
    std::optional<std::uint64_t> mount_;  // RESOLVE_NO_XDEV: the mount the walk started on
    bool rooted_ = false;                 // whether the kernel's walk would know its root
};

// The operation's path `index` (0: the path, or a rename's or link's first; 1: their second).
op::PathBuffer* path_of(op::Operation& operation, int index) {
    return std::visit(
        [index](auto& o) -> op::PathBuffer* {
            if constexpr (requires { o.to; })
                return index == 0 ? &o.from : &o.to;
            else if constexpr (requires { o.path; })
                return index == 0 ? &o.path : nullptr;
            else
                return nullptr;
        },
        operation);
}

}  // namespace

int apply_path_form(Decoded& decoded, const Performer& performer, const Caller& caller) noexcept {
    try {
        if (auto* open = std::get_if<op::Open>(&decoded.operation); open != nullptr && decoded.scope != 0) {
            ScopedWalk walk(performer, caller, decoded.scope, decoded.scope_root);
            const bool follow = !(open->flags & O_NOFOLLOW);
            if (const int err = walk.run(decoded.trailing_slash[0].unresolved.view(), follow, open->path);
                err != 0)
                return err;
        }
        for (int i = 0; i < 2; ++i) {
            const PathEnd& end = decoded.trailing_slash[static_cast<std::size_t>(i)];
            op::PathBuffer* path = end.walk ? path_of(decoded.operation, i) : nullptr;
            if (path != nullptr)
                if (const int err = walk(end.unresolved, performer, caller, *path); err != 0) return err;
        }
        if (!decoded.trailing_slash[0] && !decoded.trailing_slash[1]) return 0;
        return std::visit([&](auto& o) { return on_operation(o, performer, caller, decoded.trailing_slash); },
                          decoded.operation);
    } catch (...) {
        return ENOMEM;  // std::visit on a valueless variant, which decoding never leaves
    }
}

}  // namespace fdbroker::broker
