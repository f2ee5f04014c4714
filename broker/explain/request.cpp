#include "broker/explain/request.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <string_view>

#include "policy/path.hpp"

namespace fdbroker::broker::explain {

namespace {

// Open flags from a mode such as "r", "w", "rw", "wc" (create), "wt" (truncate), "wa" (append).
std::optional<std::uint32_t> open_flags(std::string_view mode) {
    bool r = false, w = false;
    std::uint32_t extra = 0;
    for (const char c : mode) {
        switch (c) {
            case 'r':
                r = true;
                break;
            case 'w':
                w = true;
                break;
            case 'c':
                extra |= O_CREAT;
                break;
            case 't':
                extra |= O_TRUNC;
                break;
            case 'a':
                extra |= O_APPEND;
                break;
            default:
                return std::nullopt;
        }
    }
    if (!r && !w) r = true;
    const std::uint32_t access = r && w ? O_RDWR : (w ? O_WRONLY : O_RDONLY);
    return access | extra;
}

// access(2) modes from "r", "w", "x", "f" or a combination ("rw").
std::optional<std::uint32_t> access_mode(std::string_view mode) {
    std::uint32_t out = F_OK;
    for (const char c : mode) {
        switch (c) {
            case 'r':
                out |= R_OK;
                break;
            case 'w':
                out |= W_OK;
                break;
            case 'x':
                out |= X_OK;
                break;
            case 'f':
                break;
            default:
                return std::nullopt;
        }
    }
    return out;
}

bool normalise(const std::string& written, std::string& judged, std::string& error) {
    if (written.empty() || written.front() != '/') {
        error =
            "path '" + written + "' must be absolute: explain judges a path as the worker wrote it, from /";
        return false;
    }
    policy::PathBuffer out;
    if (!policy::join_lexically("/", written, out)) {
        error = "path '" + written + "' is too long";
        return false;
    }
    judged.assign(out.view());
    return true;
}

// An operation of type T on the (single) judged path.
template <class T>
bool on_path(Request& r, T o = T{}) {
    if (!o.path.assign(r.judged.at(0))) return false;
    r.operation = std::move(o);
    return true;
}

// An operation of type T from the first judged path to the second.
template <class T>
bool on_two_paths(Request& r) {
    T o;
    if (!o.from.assign(r.judged.at(0)) || !o.to.assign(r.judged.at(1))) return false;
    r.operation = std::move(o);
    return true;
}

bool xattr_operation(Request& r) {
    op::Xattr o;
    const std::string& op = r.op;
    o.kind = op == "getxattr"    ? op::Xattr::Kind::get
             : op == "listxattr" ? op::Xattr::Kind::list
             : op == "setxattr"  ? op::Xattr::Kind::set
                                 : op::Xattr::Kind::remove;
    return on_path(r, std::move(o));
}

// The typed operation for `op` on the judged paths with `flags` (open flags, access mode); false for
// an unknown op. The symlink's text is not judged (every open through it is), so only its place is.
bool make_operation(Request& r, std::uint32_t flags) {
    const std::string& op = r.op;
    if (op == "open") {
        op::Open o;
        o.flags = flags;
        return on_path(r, o);
    }
    if (op == "access") {
        op::Access o;
        o.mode = flags;
        return on_path(r, o);
    }
    if (op == "stat") return on_path<op::Stat>(r);
    if (op == "readlink") return on_path<op::Readlink>(r);
    if (op == "lookup") return on_path<op::Lookup>(r);
    if (op == "mkdir") return on_path<op::Mkdir>(r);
    if (op == "unlink") return on_path<op::Unlink>(r);
    if (op == "rmdir") return on_path<op::Rmdir>(r);
    if (op == "mknod" || op == "mkfifo") return on_path<op::Mknod>(r);
    if (op == "symlink") return on_path<op::Symlink>(r);
    if (op == "chmod") return on_path<op::Chmod>(r);
    if (op == "chown") return on_path<op::Chown>(r);
    if (op == "truncate") return on_path<op::Truncate>(r);
    if (op == "utimens" || op == "utimes" || op == "touch") return on_path<op::Utimens>(r);
    if (op == "getxattr" || op == "listxattr" || op == "setxattr" || op == "removexattr")
        return xattr_operation(r);
    if (op == "rename") return on_two_paths<op::Rename>(r);
    if (op == "link") return on_two_paths<op::Link>(r);
    return false;
}

std::size_t paths_of(const std::string& op) {
    return op == "rename" || op == "link" ? 2 : 1;
}

}  // namespace

const char* known_operations() noexcept {
    return "open PATH [r|w|rw, and c (create), t (truncate), a (append)], stat, access PATH [r|w|x|f], "
           "readlink, mkdir, unlink, rmdir, mknod, symlink, chmod, chown, truncate, utimens, getxattr, "
           "listxattr, setxattr, removexattr, rename FROM TO, link FROM TO, exec PATH, connect ADDRESS, "
           "listen ADDRESS";
}

std::optional<Request> parse_request(const std::vector<std::string>& words, std::string& error) {
    if (words.empty()) {
        error = "no request given: OP TARGET... (" + std::string(known_operations()) + ")";
        return std::nullopt;
    }
    Request r;
    r.op = words.front();
    if (r.op == "connect" || r.op == "listen") {
        if (words.size() != 2) {
            error = r.op + " takes one address (tcp:HOST:PORT, udp:HOST:PORT, unix:/path, unix:@name)";
            return std::nullopt;
        }
        r.socket = true;
        r.written = {words[1]};
        r.judged = {words[1]};
        return r;
    }
    const std::size_t paths = paths_of(r.op);
    const bool takes_mode = r.op == "open" || r.op == "access";
    if (words.size() < 1 + paths || words.size() > 1 + paths + (takes_mode ? 1 : 0)) {
        error = "'" + r.op + "' takes " + (paths == 2 ? "two paths" : "one path") +
                (takes_mode ? " and an optional mode" : "") + " (" + known_operations() + ")";
        return std::nullopt;
    }
    r.written.assign(words.begin() + 1, words.begin() + 1 + static_cast<std::ptrdiff_t>(paths));
    r.judged.resize(paths);
    for (std::size_t i = 0; i < paths; ++i)
        if (!normalise(r.written[i], r.judged[i], error)) return std::nullopt;
    const std::string mode = words.size() > 1 + paths ? words.back() : std::string();
    if (r.op == "exec") {
        r.exec = true;
        return r;
    }
    std::optional<std::uint32_t> flags = 0;
    if (r.op == "open") flags = open_flags(mode);
    if (r.op == "access") flags = access_mode(mode);
    if (!flags) {
        error = "mode '" + mode + "' of '" + r.op + "' is not one of " +
                (r.op == "open" ? "r, w, rw, with c, t or a" : "r, w, x, f");
        return std::nullopt;
    }
    if (!make_operation(r, *flags)) {
        error = "unknown operation '" + r.op + "' (" + known_operations() + ")";
        return std::nullopt;
    }
    return r;
}

std::optional<Request> request_from_audit(const std::string& op, const std::string& path,
                                          const std::string& path2, std::uint32_t flags) {
    Request r;
    r.op = op;
    if (op == "connect" || op == "listen" || op == "bind") {
        r.op = op == "bind" ? "listen" : op;  // a bind is judged by the listen rules
        r.socket = true;
        r.written = {path};
        r.judged = {path};
        return r;
    }
    // Audit lines name a rename's source first and a link's new name first (path2: its source).
    std::vector<std::string> paths{path};
    if (op == "rename") paths.push_back(path2);
    if (op == "link") paths = {path2, path};
    r.written = paths;
    r.judged.resize(paths.size());
    std::string error;
    for (std::size_t i = 0; i < paths.size(); ++i)
        if (!normalise(paths[i], r.judged[i], error)) return std::nullopt;
    if (!make_operation(r, flags)) return std::nullopt;
    return r;
}

}  // namespace fdbroker::broker::explain
