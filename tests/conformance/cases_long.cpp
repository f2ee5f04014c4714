// Relative names that the kernel takes (shorter than PATH_MAX) whose absolute form, the case's
// directory before them, is longer than PATH_MAX: every call that names a path, and the edge where the
// name itself reaches PATH_MAX (ENAMETOOLONG).
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

// 16 directories with 250-character names: 4015 characters.
std::string deep_dir() {
    std::string p;
    for (int i = 0; i < 16; ++i)
        p += (i ? "/" : "") + std::string(250, static_cast<char>('a' + i));
    return p;
}

// A name in deep_dir() whose whole relative path is 4095 characters (the longest the kernel takes),
// or, with `extra`, longer by that much.
std::string deep(char c, std::size_t extra = 0) {
    const std::string d = deep_dir();
    return d + "/" + std::string(4095 - d.size() - 1 + extra, c);
}

Result statx_call(const std::string& p) {
    struct statx sx {};
    const long ret = ::syscall(SYS_statx, AT_FDCWD, p.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
    Result r = sys(ret);
    if (ret == 0) r.detail = "mode=" + octal(sx.stx_mode) + " size=" + std::to_string(sx.stx_size);
    return r;
}

Result xattr_value(long ret, const std::string& buf) {
    Result r = sys(ret);
    if (ret > 0) r.detail = buf.substr(0, static_cast<std::size_t>(ret));
    return r;
}

void add_opens(Cases& out, const std::vector<Node>& nodes, const std::string& f, const std::string& n) {
    out.push_back(
        {"open.long-rel", nodes, [f](Env&) { return opened(::syscall(SYS_open, f.c_str(), O_RDWR)); }});
    out.push_back({"open.long-rel-creat", nodes, [n](Env&) {
                       return opened(::syscall(SYS_open, n.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0640));
                   }});
    out.push_back({"open.long-rel-trunc", nodes,
                   [f](Env&) { return opened(::syscall(SYS_open, f.c_str(), O_WRONLY | O_TRUNC)); }});
    out.push_back({"openat.long-rel-dirfd", nodes,
                   [f](Env& e) { return opened(::syscall(SYS_openat, e.dirfd(), f.c_str(), O_RDONLY)); }});
    out.push_back(
        {"creat.long-rel", nodes, [n](Env&) { return opened(::syscall(SYS_creat, n.c_str(), 0600)); }});
}

void add_looks(Cases& out, const std::vector<Node>& nodes, const std::string& f, const std::string& l) {
    out.push_back({"stat.long-rel", nodes, [f](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_stat, f.c_str(), &st), st);
                   }});
    out.push_back({"lstat.long-rel", nodes, [l](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_lstat, l.c_str(), &st), st);
                   }});
    out.push_back({"newfstatat.long-rel-dirfd", nodes, [f](Env& e) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_newfstatat, e.dirfd(), f.c_str(), &st, 0), st);
                   }});
    out.push_back({"statx.long-rel", nodes, [f](Env&) { return statx_call(f); }});
    out.push_back(
        {"access.long-rel", nodes, [f](Env&) { return sys(::syscall(SYS_access, f.c_str(), W_OK)); }});
    out.push_back({"readlink.long-rel", nodes, [l](Env&) {
                       char buf[64] = {};
                       const long ret = ::syscall(SYS_readlink, l.c_str(), buf, sizeof buf);
                       Result r = sys(ret);
                       if (ret > 0) r.detail = std::string(buf, static_cast<std::size_t>(ret));
                       return r;
                   }});
}

void add_names(Cases& out, const std::vector<Node>& nodes, const std::string& f, const std::string& n,
               const std::string& e) {
    out.push_back(
        {"mkdir.long-rel", nodes, [n](Env&) { return sys(::syscall(SYS_mkdir, n.c_str(), 0750)); }});
    out.push_back({"rmdir.long-rel", nodes, [e](Env&) { return sys(::syscall(SYS_rmdir, e.c_str())); }});
    out.push_back({"unlink.long-rel", nodes, [f](Env&) { return sys(::syscall(SYS_unlink, f.c_str())); }});
    out.push_back({"rename.long-rel", nodes,
                   [f, n](Env&) { return sys(::syscall(SYS_rename, f.c_str(), n.c_str())); }});
    out.push_back({"rename.long-rel-dir", nodes,
                   [e, n](Env&) { return sys(::syscall(SYS_rename, e.c_str(), n.c_str())); }});
    out.push_back(
        {"link.long-rel", nodes, [f, n](Env&) { return sys(::syscall(SYS_link, f.c_str(), n.c_str())); }});
    out.push_back(
        {"symlink.long-rel", nodes, [n](Env&) { return sys(::syscall(SYS_symlink, "target", n.c_str())); }});
    out.push_back({"mknod.long-rel-fifo", nodes,
                   [n](Env&) { return sys(::syscall(SYS_mknod, n.c_str(), S_IFIFO | 0640, 0)); }});
    out.push_back({"mknod.long-rel-file", nodes,
                   [n](Env&) { return sys(::syscall(SYS_mknod, n.c_str(), S_IFREG | 0640, 0)); }});
}

void add_metadata(Cases& out, const std::vector<Node>& nodes, const std::string& f, const std::string& l) {
    out.push_back(
        {"chmod.long-rel", nodes, [f](Env&) { return sys(::syscall(SYS_chmod, f.c_str(), 0600)); }});
    out.push_back({"chown.long-rel", nodes,
                   [f](Env&) { return sys(::syscall(SYS_chown, f.c_str(), ::geteuid(), ::getegid())); }});
    out.push_back({"lchown.long-rel", nodes,
                   [l](Env&) { return sys(::syscall(SYS_lchown, l.c_str(), ::geteuid(), ::getegid())); }});
    out.push_back(
        {"truncate.long-rel", nodes, [f](Env&) { return sys(::syscall(SYS_truncate, f.c_str(), 2)); }});
    out.push_back({"utimensat.long-rel", nodes,
                   [f](Env&) {
                       const timespec ts[2] = {{kFixtureTime + 5, 0}, {kFixtureTime + 7, 0}};
                       return sys(::syscall(SYS_utimensat, AT_FDCWD, f.c_str(), ts, 0));
                   },
                   true});
    out.push_back({"setxattr.long-rel", nodes,
                   [f](Env&) { return sys(::syscall(SYS_setxattr, f.c_str(), "user.new", "v", 1, 0)); }});
    out.push_back({"getxattr.long-rel", nodes, [f](Env&) {
                       std::string buf(64, '\0');
                       return xattr_value(
                           ::syscall(SYS_getxattr, f.c_str(), "user.a", buf.data(), buf.size()), buf);
                   }});
    out.push_back({"listxattr.long-rel", nodes, [f](Env&) {
                       std::string buf(256, '\0');
                       return xattr_value(::syscall(SYS_listxattr, f.c_str(), buf.data(), buf.size()), buf);
                   }});
    out.push_back({"removexattr.long-rel", nodes,
                   [f](Env&) { return sys(::syscall(SYS_removexattr, f.c_str(), "user.a")); }});
}

// A relative name of PATH_MAX characters or more: ENAMETOOLONG, before anything is looked up.
void add_too_long(Cases& out, const std::vector<Node>& nodes, const std::string& f) {
    const std::string over = deep('z', 1);
    out.push_back({"open.long-rel-4096-creat", nodes, [over](Env&) {
                       return opened(::syscall(SYS_open, over.c_str(), O_CREAT | O_WRONLY, 0640));
                   }});
    out.push_back({"mkdir.long-rel-4096", nodes,
                   [over](Env&) { return sys(::syscall(SYS_mkdir, over.c_str(), 0755)); }});
    out.push_back(
        {"unlink.long-rel-4096", nodes, [over](Env&) { return sys(::syscall(SYS_unlink, over.c_str())); }});
    out.push_back({"rename.long-rel-4096", nodes,
                   [f, over](Env&) { return sys(::syscall(SYS_rename, f.c_str(), over.c_str())); }});
    out.push_back({"symlink.long-rel-4096", nodes,
                   [over](Env&) { return sys(::syscall(SYS_symlink, "target", over.c_str())); }});
    out.push_back({"chmod.long-rel-4096", nodes,
                   [over](Env&) { return sys(::syscall(SYS_chmod, over.c_str(), 0600)); }});
    out.push_back({"stat.long-rel-4096", nodes, [over](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_stat, over.c_str(), &st), st);
                   }});
    const std::string name256 = deep_dir().substr(0, 250) + "/" + std::string(256, 'n');
    out.push_back({"mkdir.long-rel-name256", nodes,
                   [name256](Env&) { return sys(::syscall(SYS_mkdir, name256.c_str(), 0755)); }});
}

// A directory whose own path is PATH_MAX long or more, which the kernel cannot name (d_path): the
// broker cannot tell where a name relative to it lies.
void add_beyond(Cases& out, const std::string& e) {
    const std::vector<Node> nodes{dir(e), file(e + "/x")};
    out.push_back({"unlinkat.long-dirfd", nodes, [e](Env&) {
                       return with_fd(e, O_RDONLY | O_DIRECTORY,
                                      [](int fd) { return sys(::syscall(SYS_unlinkat, fd, "x", 0)); });
                   }});
    out.push_back({"chdir.long-rel", nodes, [e](Env&) {
                       if (::chdir(e.c_str()) != 0) return Result{-1, errno, false, "(chdir failed)"};
                       return sys(::syscall(SYS_unlink, "x"));
                   }});
}

}  // namespace

void add_long_name_cases(Cases& out) {
    const std::string f = deep('f');  // a file, with an extended attribute
    const std::string l = deep('l');  // a symlink to it
    const std::string e = deep('e');  // an empty directory
    const std::string n = deep('n');  // a new name
    Node with_xattr = file(f);
    with_xattr.xattrs = {{"user.a", "1"}};
    const std::vector<Node> nodes{with_xattr, symlink(l, std::string(79, 'f')), dir(e)};
    add_opens(out, nodes, f, n);
    add_looks(out, nodes, f, l);
    add_names(out, nodes, f, n, e);
    add_metadata(out, nodes, f, l);
    add_too_long(out, nodes, f);
    add_beyond(out, e);
}

}  // namespace fdbroker::conformance
