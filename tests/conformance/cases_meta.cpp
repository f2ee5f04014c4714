// chmod, fchmod, fchmodat, fchmodat2; chown, lchown, fchown, fchownat; truncate, ftruncate.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

// fchmodat2 (Linux 6.6) has the same number on every architecture; C libraries may not name it yet.
constexpr long kSysFchmodat2 = 452;

constexpr uid_t kKeep = static_cast<uid_t>(-1);

void add_chmod(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path,
                      mode_t mode) {
        out.push_back({"chmod." + what, std::move(nodes), [path, mode](Env& e) {
                           return sys(::syscall(SYS_chmod, e.abs(path).c_str(), mode));
                       }});
    };
    add("file-0600", {file("f")}, "f", 0600);
    add("file-0000", {file("f")}, "f", 0);
    add("file-07777", {file("f")}, "f", 07777);
    add("file-setgid-foreign-group", {owned(file("f"), Owner::mine_root_group)}, "f", 02755);
    add("file-setuid", {file("f")}, "f", 04755);
    add("dir-01777", {dir("d")}, "d", 01777);
    add("dir0000-0755", {dir("d", 0)}, "d", 0755);
    add("roots-file", {owned(file("f", 0666), Owner::root)}, "f", 0600);
    add("missing", {}, "missing", 0600);
    add("lnk", {file("f"), symlink("lnk", "f")}, "lnk", 0600);
    add("dangling", {symlink("lnk", "missing")}, "lnk", 0600);
    add("in-dir0000", {dir("d", 0), file("d/f")}, "d/f", 0600);
    add("file-slash", {file("f")}, "f/", 0600);
    add("fifo", {fifo("p")}, "p", 0600);
    add("type-bits-ignored", {file("f")}, "f", S_IFDIR | 0640);
    out.push_back({"fchmodat.cwd", {file("f")}, [](Env&) {
                       return sys(::syscall(SYS_fchmodat, AT_FDCWD, "f", 0640));
                   }});
    out.push_back({"fchmodat.dirfd-lnk", {file("f"), symlink("lnk", "f")}, [](Env& e) {
                       return sys(::syscall(SYS_fchmodat, e.dirfd(), "lnk", 0640));
                   }});
    auto add2 = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path, int flags) {
        out.push_back({"fchmodat2." + what, std::move(nodes), [path, flags](Env& e) {
                           return sys(::syscall(kSysFchmodat2, e.dirfd(), path.c_str(), 0600, flags));
                       }});
    };
    add2("plain", {file("f")}, "f", 0);
    add2("nofollow-file", {file("f")}, "f", AT_SYMLINK_NOFOLLOW);
    add2("nofollow-lnk", {file("f"), symlink("lnk", "f")}, "lnk", AT_SYMLINK_NOFOLLOW);
    add2("bad-flag", {file("f")}, "f", 0x1);
    out.push_back({"fchmodat2.empty-path", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           return sys(::syscall(kSysFchmodat2, fd, "", 0600, AT_EMPTY_PATH));
                       });
                   }});
}

void add_fchmod(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, int flags) {
        out.push_back({"fchmod." + what, std::move(nodes), [flags](Env& e) {
                           return with_fd(e.abs("f"), flags,
                                          [](int fd) { return sys(::syscall(SYS_fchmod, fd, 0604)); });
                       }});
    };
    add("mine", {file("f")}, O_RDONLY);
    add("mine-opath", {file("f")}, O_PATH);
    add("roots", {owned(file("f", 0644), Owner::root)}, O_RDONLY);
    add("mine-setgid-foreign-group", {owned(file("f", 0644), Owner::mine_root_group)}, O_RDONLY);
}

Call chown_call(long nr, const std::string& path, bool self_uid, uid_t uid, bool self_gid, gid_t gid) {
    return [nr, path, self_uid, uid, self_gid, gid](Env& e) {
        const uid_t u = self_uid ? ::geteuid() : uid;
        const gid_t g = self_gid ? ::getegid() : gid;
        return sys(::syscall(nr, e.abs(path).c_str(), u, g));
    };
}

void add_chown(Cases& out) {
    const std::vector<Node> mine{file("f")};
    const std::vector<Node> roots{owned(file("f", 0666), Owner::root)};
    out.push_back({"chown.keep-both", mine, chown_call(SYS_chown, "f", false, kKeep, false, kKeep)});
    out.push_back({"chown.to-self", mine, chown_call(SYS_chown, "f", true, 0, true, 0)});
    out.push_back({"chown.to-root", mine, chown_call(SYS_chown, "f", false, 0, false, kKeep)});
    out.push_back({"chown.group-own",
                   {owned(file("f"), Owner::mine_root_group)},
                   chown_call(SYS_chown, "f", false, kKeep, true, 0)});
    out.push_back({"chown.group-root", mine, chown_call(SYS_chown, "f", false, kKeep, false, 0)});
    out.push_back({"chown.roots-keep-both", roots, chown_call(SYS_chown, "f", false, kKeep, false, kKeep)});
    out.push_back({"chown.roots-to-self", roots, chown_call(SYS_chown, "f", true, 0, false, kKeep)});
    out.push_back({"chown.roots-group-own", roots, chown_call(SYS_chown, "f", false, kKeep, true, 0)});
    out.push_back(
        {"chown.setuid-cleared", {file("f", 06755)}, chown_call(SYS_chown, "f", false, kKeep, true, 0)});
    out.push_back({"chown.dir", {dir("d", 02755)}, chown_call(SYS_chown, "d", true, 0, true, 0)});
    out.push_back({"chown.lnk",
                   {owned(file("f"), Owner::mine_root_group), symlink("lnk", "f")},
                   chown_call(SYS_chown, "lnk", false, kKeep, true, 0)});
    out.push_back({"chown.missing", {}, chown_call(SYS_chown, "missing", true, 0, true, 0)});
    out.push_back(
        {"chown.in-dir0000", {dir("d", 0), file("d/f")}, chown_call(SYS_chown, "d/f", true, 0, true, 0)});
    out.push_back({"lchown.lnk-self",
                   {file("f"), symlink("lnk", "f")},
                   chown_call(SYS_lchown, "lnk", true, 0, true, 0)});
    out.push_back({"lchown.lnk-root",
                   {file("f"), symlink("lnk", "f")},
                   chown_call(SYS_lchown, "lnk", false, 0, false, 0)});
    out.push_back(
        {"lchown.dangling", {symlink("lnk", "missing")}, chown_call(SYS_lchown, "lnk", true, 0, true, 0)});
    out.push_back({"lchown.file", mine, chown_call(SYS_lchown, "f", false, kKeep, true, 0)});
}

void add_fchown(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path, int flags,
                      bool to_root) {
        out.push_back({"fchownat." + what, std::move(nodes), [path, flags, to_root](Env& e) {
                           const gid_t g = to_root ? 0 : ::getegid();
                           return sys(::syscall(SYS_fchownat, e.dirfd(), path.c_str(), kKeep, g, flags));
                       }});
    };
    add("file", {file("f")}, "f", 0, false);
    add("nofollow-lnk", {file("f"), symlink("lnk", "f")}, "lnk", AT_SYMLINK_NOFOLLOW, false);
    add("nofollow-lnk-root", {file("f"), symlink("lnk", "f")}, "lnk", AT_SYMLINK_NOFOLLOW, true);
    add("bad-flag", {file("f")}, "f", 0x1, false);
    add("empty-without-flag", {file("f")}, "", 0, false);
    out.push_back({"fchownat.empty-path", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           return sys(::syscall(SYS_fchownat, fd, "", kKeep, ::getegid(), AT_EMPTY_PATH));
                       });
                   }});
    auto fd_add = [&out](const std::string& what, std::vector<Node> nodes, bool to_root) {
        out.push_back({"fchown." + what, std::move(nodes), [to_root](Env& e) {
                           return with_fd(e.abs("f"), O_RDONLY, [to_root](int fd) {
                               return sys(::syscall(SYS_fchown, fd, kKeep, to_root ? 0 : ::getegid()));
                           });
                       }});
    };
    fd_add("mine-own-group", {owned(file("f"), Owner::mine_root_group)}, false);
    fd_add("mine-to-root", {file("f")}, true);
    fd_add("roots", {owned(file("f", 0644), Owner::root)}, false);
}

void add_truncate(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path,
                      long length) {
        out.push_back({"truncate." + what, std::move(nodes), [path, length](Env& e) {
                           return sys(::syscall(SYS_truncate, e.abs(path).c_str(), length));
                       }});
    };
    add("grow", {file("f")}, "f", 100);
    add("shrink", {file("f")}, "f", 2);
    add("zero", {file("f")}, "f", 0);
    add("dir", {dir("d")}, "d", 0);
    add("negative", {file("f")}, "f", -1);
    add("huge", {file("f")}, "f", 1L << 62);
    add("mode0444", {file("f", 0444)}, "f", 0);
    add("roots-0644", {owned(file("f", 0644), Owner::root)}, "f", 0);
    add("roots-0666", {owned(file("f", 0666), Owner::root)}, "f", 1);
    add("missing", {}, "missing", 0);
    add("lnk", {file("f"), symlink("lnk", "f")}, "lnk", 1);
    add("dangling", {symlink("lnk", "missing")}, "lnk", 0);
    add("file-slash", {file("f")}, "f/", 0);
    add("fifo", {fifo("p")}, "p", 0);
    add("setuid-cleared", {file("f", 06755)}, "f", 1);
    add("in-dir0000", {dir("d", 0), file("d/f")}, "d/f", 0);
    auto fd_add = [&out](const std::string& what, std::vector<Node> nodes, int flags, long length) {
        out.push_back({"ftruncate." + what, std::move(nodes), [flags, length](Env& e) {
                           return with_fd(e.abs("f"), flags, [length](int fd) {
                               return sys(::syscall(SYS_ftruncate, fd, length));
                           });
                       }});
    };
    fd_add("rdwr", {file("f")}, O_RDWR, 50);
    fd_add("rdonly", {file("f")}, O_RDONLY, 0);
    fd_add("opath", {file("f")}, O_PATH, 0);
    fd_add("append", {file("f")}, O_WRONLY | O_APPEND, 1);
    fd_add("negative", {file("f")}, O_RDWR, -5);
}

}  // namespace

void add_metadata_cases(Cases& out) {
    add_chmod(out);
    add_fchmod(out);
    add_chown(out);
    add_fchown(out);
    add_truncate(out);
}

}  // namespace fdbroker::conformance
