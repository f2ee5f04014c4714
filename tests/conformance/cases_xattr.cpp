// Extended attributes by path, by path without following, and on descriptors: get, list, set, remove.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

Node tagged(Node n) {
    n.xattrs = {{"user.a", "1"}, {"user.b", "two"}};
    return n;
}

Result value_result(long ret, const std::string& buf) {
    Result r = sys(ret);
    if (ret > 0 && static_cast<std::size_t>(ret) <= buf.size())
        r.detail = "\"" + buf.substr(0, static_cast<std::size_t>(ret)) + "\"";
    return r;
}

// A list of names, sorted: the order the kernel lists them in is the file system's.
Result list_result(long ret, const std::string& buf) {
    Result r = sys(ret);
    if (ret <= 0 || static_cast<std::size_t>(ret) > buf.size()) return r;
    std::vector<std::string> names;
    for (std::size_t at = 0; at < static_cast<std::size_t>(ret); at += names.back().size() + 1)
        names.emplace_back(buf.c_str() + at);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names)
        r.detail += (r.detail.empty() ? "" : ",") + n;
    return r;
}

std::vector<Target> xattr_targets() {
    return {
        {"file", {tagged(file("f"))}, "f"},
        {"dir", {tagged(dir("d"))}, "d"},
        {"lnk", {tagged(file("f")), symlink("lnk", "f")}, "lnk"},
        {"dangling", {symlink("lnk", "missing")}, "lnk"},
        {"missing", {}, "missing"},
        {"mode0000", {tagged(file("f", 0))}, "f"},
        {"mode0444", {tagged(file("f", 0444))}, "f"},
        {"roots-0600", {owned(tagged(file("f", 0600)), Owner::root)}, "f"},
        {"roots-0644", {owned(tagged(file("f", 0644)), Owner::root)}, "f"},
        {"roots-0666", {owned(tagged(file("f", 0666)), Owner::root)}, "f"},
        {"in-dir0000", {dir("d", 0), tagged(file("d/f"))}, "d/f"},
        {"fifo", {fifo("p")}, "p"},
        {"sticky-theirs", {owned(dir("d", 01777), Owner::root)}, "d"},
    };
}

// Each call by path and without following; the descriptor forms are in add_fd_xattrs.
void add_xattr_matrix(Cases& out) {
    for (const Target& t : xattr_targets()) {
        const std::string p = t.path;
        for (const bool follow : {true, false}) {
            const std::string l = follow ? "" : "l";
            const long get = follow ? SYS_getxattr : SYS_lgetxattr;
            const long list = follow ? SYS_listxattr : SYS_llistxattr;
            const long set = follow ? SYS_setxattr : SYS_lsetxattr;
            const long remove = follow ? SYS_removexattr : SYS_lremovexattr;
            out.push_back({l + "getxattr." + t.name, t.nodes, [p, get](Env& e) {
                               std::string buf(64, '\0');
                               return value_result(
                                   ::syscall(get, e.abs(p).c_str(), "user.b", buf.data(), buf.size()), buf);
                           }});
            out.push_back({l + "listxattr." + t.name, t.nodes, [p, list](Env& e) {
                               std::string buf(256, '\0');
                               return list_result(::syscall(list, e.abs(p).c_str(), buf.data(), buf.size()),
                                                  buf);
                           }});
            out.push_back({l + "setxattr." + t.name, t.nodes, [p, set](Env& e) {
                               return sys(::syscall(set, e.abs(p).c_str(), "user.new", "v", 1, 0));
                           }});
            out.push_back({l + "removexattr." + t.name, t.nodes, [p, remove](Env& e) {
                               return sys(::syscall(remove, e.abs(p).c_str(), "user.a"));
                           }});
        }
    }
}

void add_get_special(Cases& out) {
    const std::vector<Node> f{tagged(file("f"))};
    auto get = [&out, &f](const std::string& what, const std::string& name, std::size_t size) {
        out.push_back({"getxattr." + what, f, [name, size](Env&) {
                           std::string buf(std::max<std::size_t>(size, 1), '\0');
                           return value_result(::syscall(SYS_getxattr, "f", name.c_str(), buf.data(), size),
                                               buf);
                       }});
    };
    get("no-such-attr", "user.zzz", 64);
    get("probe-size", "user.b", 0);
    get("small-buffer", "user.b", 1);
    get("trusted", "trusted.a", 64);
    get("security", "security.a", 64);
    get("acl", "system.posix_acl_access", 64);
    get("bad-namespace", "foo.bar", 64);
    get("empty-name", "", 64);
    get("long-name", "user." + std::string(251, 'x'), 64);
    auto list = [&out, &f](const std::string& what, std::size_t size) {
        out.push_back({"listxattr." + what, f, [size](Env&) {
                           std::string buf(std::max<std::size_t>(size, 1), '\0');
                           return list_result(::syscall(SYS_listxattr, "f", buf.data(), size), buf);
                       }});
    };
    list("probe-size", 0);
    list("small-buffer", 4);
    out.push_back({"listxattr.none", {file("f")}, [](Env&) {
                       std::string buf(64, '\0');
                       return list_result(::syscall(SYS_listxattr, "f", buf.data(), buf.size()), buf);
                   }});
}

void add_set_special(Cases& out) {
    const std::vector<Node> f{tagged(file("f"))};
    auto set = [&out, &f](const std::string& what, const std::string& name, const std::string& value,
                          int flags) {
        out.push_back({"setxattr." + what, f, [name, value, flags](Env&) {
                           return sys(
                               ::syscall(SYS_setxattr, "f", name.c_str(), value.data(), value.size(), flags));
                       }});
    };
    set("replace-existing", "user.a", "changed", 0);
    set("create-existing", "user.a", "x", XATTR_CREATE);
    set("create-new", "user.c", "x", XATTR_CREATE);
    set("replace-missing", "user.c", "x", XATTR_REPLACE);
    set("replace-present", "user.b", "new", XATTR_REPLACE);
    set("bad-flags", "user.c", "x", 4);
    set("trusted", "trusted.c", "x", 0);
    set("security", "security.c", "x", 0);
    set("bad-namespace", "foo.c", "x", 0);
    set("empty-name", "", "x", 0);
    set("empty-value", "user.c", "", 0);
    set("too-big", "user.c", std::string(65537, 'v'), 0);
    auto remove = [&out, &f](const std::string& what, const std::string& name) {
        out.push_back({"removexattr." + what, f,
                       [name](Env&) { return sys(::syscall(SYS_removexattr, "f", name.c_str())); }});
    };
    remove("no-such-attr", "user.zzz");
    remove("trusted", "trusted.a");
    remove("bad-namespace", "foo.a");
}

void add_fd_xattrs(Cases& out) {
    for (const int flags : {O_RDONLY, O_PATH}) {
        const std::string how = flags == O_PATH ? ".opath" : ".rdonly";
        for (const Owner owner : {Owner::self, Owner::root}) {
            const std::string who = owner == Owner::self ? ".mine" : ".roots";
            const std::vector<Node> f{owned(tagged(file("f", 0644)), owner)};
            auto add = [&out, &f, &how, &who, flags](const std::string& call,
                                                     const std::function<Result(int)>& fn) {
                std::string id = call;
                id += how;
                id += who;
                out.push_back({id, f, [flags, fn](Env& e) { return with_fd(e.abs("f"), flags, fn); }});
            };
            add("fgetxattr", [](int fd) {
                std::string buf(64, '\0');
                return value_result(::syscall(SYS_fgetxattr, fd, "user.b", buf.data(), buf.size()), buf);
            });
            add("flistxattr", [](int fd) {
                std::string buf(256, '\0');
                return list_result(::syscall(SYS_flistxattr, fd, buf.data(), buf.size()), buf);
            });
            add("fsetxattr", [](int fd) { return sys(::syscall(SYS_fsetxattr, fd, "user.new", "v", 1, 0)); });
            add("fremovexattr", [](int fd) { return sys(::syscall(SYS_fremovexattr, fd, "user.a")); });
        }
    }
}

}  // namespace

void add_xattr_cases(Cases& out) {
    add_xattr_matrix(out);
    add_get_special(out);
    add_set_special(out);
    add_fd_xattrs(out);
}

}  // namespace fdbroker::conformance
