// mkdir, mkdirat; unlink, unlinkat, rmdir; symlink, symlinkat; mknod, mknodat; bind of a unix path.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

const std::string kName255(255, 'n');

// Fixtures where names are made or removed: directories of every mode, a sticky one of root's
// holding one file of root's and one of self's, and a set-group-ID directory of root's group.
std::vector<Node> sticky_nodes() {
    return {owned(dir("sticky", 01777), Owner::root), owned(file("sticky/theirs", 0666), Owner::root),
            file("sticky/mine"), owned(dir("sticky/theirdir", 0777), Owner::root), dir("sticky/mydir")};
}

void add_mkdir(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path,
                      mode_t mode = 0755) {
        out.push_back({"mkdir." + what, std::move(nodes), [path, mode](Env& e) {
                           return sys(::syscall(SYS_mkdir, e.abs(path).c_str(), mode));
                       }});
    };
    add("new", {}, "new");
    add("exists-dir", {dir("d")}, "d");
    add("exists-file", {file("f")}, "f");
    add("exists-lnkdir", {dir("d"), symlink("lnk", "d")}, "lnk");
    add("dangling", {symlink("lnk", "missing")}, "lnk");
    add("trailing-slash", {}, "new/");
    add("trailing-slashes", {}, "new//");
    add("file-slash", {file("f")}, "f/");
    add("dot", {}, ".");
    add("dotdot", {}, "..");
    add("noparent", {}, "nodir/new");
    add("notdir", {file("f")}, "f/new");
    add("in-dir0500", {dir("d", 0500)}, "d/new");
    add("in-dir0000", {dir("d", 0)}, "d/new");
    add("in-dir0300", {dir("d", 0300)}, "d/new");
    add("in-rootdir", {owned(dir("d"), Owner::root)}, "d/new");
    add("in-sticky", sticky_nodes(), "sticky/new");
    add("name255", {}, kName255);
    add("name256", {}, kName255 + "n");
    add("through-lnkdir", {dir("d"), symlink("lnk", "d")}, "lnk/new");
    add("lnk-dotdot", {dir("a/b"), symlink("lb", "a/b")}, "lb/../new");
    add("mode-0777", {}, "new", 0777);
    add("mode-0000", {}, "new", 0);
    add("mode-01777", {}, "new", 01777);
    add("mode-07777", {}, "new", 07777);
    add("in-setgid-dir", {owned(dir("g", 02777), Owner::mine_root_group)}, "g/new");
    out.push_back({"mkdir.umask-077", {}, [](Env&) {
                       ::umask(077);
                       return sys(::syscall(SYS_mkdir, "new", 0777));
                   }});
    out.push_back(
        {"mkdirat.dirfd", {}, [](Env& e) { return sys(::syscall(SYS_mkdirat, e.dirfd(), "new", 0750)); }});
    out.push_back(
        {"mkdirat.cwd", {}, [](Env&) { return sys(::syscall(SYS_mkdirat, AT_FDCWD, "new", 0750)); }});
    out.push_back({"mkdirat.dirfd-is-file", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY,
                                      [](int fd) { return sys(::syscall(SYS_mkdirat, fd, "new", 0755)); });
                   }});
}

void add_unlink(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path) {
        out.push_back({"unlink." + what, std::move(nodes),
                       [path](Env& e) { return sys(::syscall(SYS_unlink, e.abs(path).c_str())); }});
    };
    add("file", {file("f")}, "f");
    add("mode0000", {file("f", 0)}, "f");
    add("dir", {dir("d")}, "d");
    add("lnk", {file("f"), symlink("lnk", "f")}, "lnk");
    add("dangling", {symlink("lnk", "missing")}, "lnk");
    add("lnkdir", {dir("d"), symlink("lnk", "d")}, "lnk");
    add("lnkdir-slash", {dir("d"), symlink("lnk", "d")}, "lnk/");
    add("lnk-slash", {file("f"), symlink("lnk", "f")}, "lnk/");
    add("file-slash", {file("f")}, "f/");
    add("fifo", {fifo("p")}, "p");
    add("missing", {}, "missing");
    add("noparent", {}, "nodir/f");
    add("dot", {}, ".");
    add("name256", {}, kName255 + "n");
    add("in-dir0500", {dir("d", 0500), file("d/f")}, "d/f");
    add("in-dir0000", {dir("d", 0), file("d/f")}, "d/f");
    add("in-rootdir", {owned(dir("d"), Owner::root), file("d/f")}, "d/f");
    add("roots-file", {owned(file("f", 0600), Owner::root)}, "f");
    add("sticky-mine", sticky_nodes(), "sticky/mine");
    add("sticky-theirs", sticky_nodes(), "sticky/theirs");
    add("hardlinked", {file("f"), Node{"g", Kind::hardlink, 0, "f", Owner::self, {}}}, "g");
}

void add_unlinkat(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path, int flags) {
        out.push_back({"unlinkat." + what, std::move(nodes), [path, flags](Env& e) {
                           return sys(::syscall(SYS_unlinkat, e.dirfd(), path.c_str(), flags));
                       }});
    };
    add("file", {file("f")}, "f", 0);
    add("dir", {dir("d")}, "d", 0);
    add("removedir", {dir("d")}, "d", AT_REMOVEDIR);
    add("removedir-file", {file("f")}, "f", AT_REMOVEDIR);
    add("removedir-full", {dir("d"), file("d/f")}, "d", AT_REMOVEDIR);
    add("removedir-lnkdir", {dir("d"), symlink("lnk", "d")}, "lnk", AT_REMOVEDIR);
    add("bad-flag", {file("f")}, "f", 0x1);
    add("nested", {dir("d"), file("d/f")}, "d/f", 0);
    out.push_back(
        {"unlinkat.cwd", {file("f")}, [](Env&) { return sys(::syscall(SYS_unlinkat, AT_FDCWD, "f", 0)); }});
}

void add_rmdir(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path) {
        out.push_back({"rmdir." + what, std::move(nodes),
                       [path](Env& e) { return sys(::syscall(SYS_rmdir, e.abs(path).c_str())); }});
    };
    add("empty", {dir("d")}, "d");
    add("full", {dir("d"), file("d/f")}, "d");
    add("file", {file("f")}, "f");
    add("lnkdir", {dir("d"), symlink("lnk", "d")}, "lnk");
    add("lnkdir-slash", {dir("d"), symlink("lnk", "d")}, "lnk/");
    add("dot", {}, ".");
    add("dotdot", {}, "..");
    add("dir-dot", {dir("d")}, "d/.");
    add("dir-dotdot", {dir("d")}, "d/..");
    add("trailing-slash", {dir("d")}, "d/");
    add("missing", {}, "missing");
    add("dir0000", {dir("d", 0)}, "d");
    add("in-dir0500", {dir("p", 0500), dir("p/d")}, "p/d");
    add("in-dir0000", {dir("p", 0), dir("p/d")}, "p/d");
    add("sticky-mine", sticky_nodes(), "sticky/mydir");
    add("sticky-theirs", sticky_nodes(), "sticky/theirdir");
    add("roots-dir", {owned(dir("d", 0755), Owner::root)}, "d");
}

void add_symlink(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& target,
                      const std::string& path) {
        out.push_back({"symlink." + what, std::move(nodes), [target, path](Env& e) {
                           return sys(::syscall(SYS_symlink, target.c_str(), e.abs(path).c_str()));
                       }});
    };
    add("new", {file("f")}, "f", "new");
    add("absolute", {}, "/etc/hostname", "new");
    add("dangling", {}, "missing", "new");
    add("exists-file", {file("f")}, "x", "f");
    add("exists-dangling", {symlink("lnk", "missing")}, "x", "lnk");
    add("exists-dir", {dir("d")}, "x", "d");
    add("noparent", {}, "x", "nodir/new");
    add("notdir", {file("f")}, "x", "f/new");
    add("trailing-slash", {}, "x", "new/");
    add("empty-target", {}, "", "new");
    add("target-4095", {}, std::string(4095, 't'), "new");
    add("target-4096", {}, std::string(4096, 't'), "new");
    add("name256", {}, "x", kName255 + "n");
    add("in-dir0500", {dir("d", 0500)}, "x", "d/new");
    add("in-sticky", sticky_nodes(), "x", "sticky/new");
    add("through-lnkdir", {dir("d"), symlink("lnk", "d")}, "x", "lnk/new");
    out.push_back(
        {"symlinkat.dirfd", {}, [](Env& e) { return sys(::syscall(SYS_symlinkat, "t", e.dirfd(), "new")); }});
    out.push_back(
        {"symlinkat.cwd", {}, [](Env&) { return sys(::syscall(SYS_symlinkat, "t", AT_FDCWD, "new")); }});
}

void add_mknod(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path, mode_t mode,
                      dev_t dev = 0) {
        out.push_back({"mknod." + what, std::move(nodes), [path, mode, dev](Env& e) {
                           return sys(::syscall(SYS_mknod, e.abs(path).c_str(), mode, dev));
                       }});
    };
    add("fifo", {}, "new", S_IFIFO | 0666);
    add("socket", {}, "new", S_IFSOCK | 0640);
    add("regular", {}, "new", S_IFREG | 0600);
    add("no-type", {}, "new", 0600);
    add("fifo-setgid", {}, "new", S_IFIFO | 02755);
    add("chr", {}, "new", S_IFCHR | 0600, makedev(1, 3));
    add("blk", {}, "new", S_IFBLK | 0600, makedev(7, 0));
    add("whiteout", {}, "new", S_IFCHR | 0600, 0);
    add("dir", {}, "new", S_IFDIR | 0755);
    add("bad-type", {}, "new", 0170000 | 0644);
    add("exists", {file("f")}, "f", S_IFIFO | 0644);
    add("noparent", {}, "nodir/new", S_IFIFO | 0644);
    add("in-dir0500", {dir("d", 0500)}, "d/new", S_IFIFO | 0644);
    add("trailing-slash", {}, "new/", S_IFIFO | 0644);
    out.push_back({"mknodat.dirfd", {}, [](Env& e) {
                       return sys(::syscall(SYS_mknodat, e.dirfd(), "new", S_IFIFO | 0600, 0));
                   }});
    out.push_back({"mknodat.cwd-socket", {}, [](Env&) {
                       return sys(::syscall(SYS_mknodat, AT_FDCWD, "new", S_IFSOCK | 0600, 0));
                   }});
}

// bind(2) of a unix stream socket makes a socket file, as mknod does; `path` as the call names it.
Result bind_unix(const std::string& path, bool twice = false) {
    const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return sys(-1);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) {
        ::close(sock);
        return sys(-1);
    }
    std::memcpy(sa.sun_path, path.data(), path.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    long rc = ::syscall(SYS_bind, sock, &sa, len);
    if (rc == 0 && twice) rc = ::syscall(SYS_bind, sock, &sa, len);
    Result r = sys(rc);
    ::close(sock);
    return r;
}

void add_bind(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path) {
        out.push_back({"bind." + what, std::move(nodes), [path](Env&) { return bind_unix(path); }});
    };
    add("relative", {}, "new");
    add("in-dir", {dir("d")}, "d/new");
    add("exists", {file("f")}, "f");
    add("exists-socket", {Node{"s", Kind::socket, 0600, {}, Owner::self, {}}}, "s");
    add("noparent", {}, "nodir/new");
    add("in-dir0500", {dir("d", 0500)}, "d/new");
    add("in-sticky", sticky_nodes(), "sticky/new");
    add("parent-is-file", {file("f")}, "f/new");
    out.push_back({"bind.absolute", {}, [](Env& e) { return bind_unix(e.abs("new")); }});
    out.push_back({"bind.twice", {}, [](Env&) { return bind_unix("new", true); }});
    // A relative name from a working directory whose own path is too long for sun_path.
    const std::string deep = std::string(60, 'a') + "/" + std::string(60, 'b');
    out.push_back({"bind.from-deep-cwd", {dir(deep)}, [deep](Env&) {
                       if (::syscall(SYS_chdir, deep.c_str()) != 0) return sys(-1);
                       return bind_unix("new");
                   }});
    out.push_back({"bind.name-too-long", {dir(deep)}, [deep](Env&) { return bind_unix(deep + "/new"); }});
}

}  // namespace

void add_name_cases(Cases& out) {
    add_mkdir(out);
    add_unlink(out);
    add_unlinkat(out);
    add_rmdir(out);
    add_symlink(out);
    add_mknod(out);
    add_bind(out);
}

}  // namespace fdbroker::conformance
