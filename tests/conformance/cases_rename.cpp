// rename, renameat, renameat2 and its flags; link, linkat.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

std::vector<Node> sticky_nodes() {
    return {owned(dir("sticky", 01777), Owner::root), owned(file("sticky/theirs", 0666), Owner::root),
            file("sticky/mine", 0644, "mine\n")};
}

Node hardlink(std::string path, std::string to) {
    return Node{std::move(path), Kind::hardlink, 0, std::move(to), Owner::self, {}};
}

Node other_fs(std::string path) {
    return Node{std::move(path), Kind::other_fs, 0, {}, Owner::self, {}};
}

// The second file system's directory is reached through the symlink "other"; without one both runs
// print the same skip line.
Result if_other_fs(const Env& e, const std::function<Result()>& call) {
    if (e.other().empty()) return Result{0, 0, false, "skipped: no second file system"};
    return call();
}

void add_rename(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& from,
                      const std::string& to) {
        out.push_back({"rename." + what, std::move(nodes), [from, to](Env& e) {
                           return sys(::syscall(SYS_rename, e.abs(from).c_str(), e.abs(to).c_str()));
                       }});
    };
    add("file-to-new", {file("f")}, "f", "g");
    add("file-to-file", {file("f"), file("g", 0600, "other\n")}, "f", "g");
    add("file-to-dir", {file("f"), dir("d")}, "f", "d");
    add("dir-to-file", {dir("d"), file("f")}, "d", "f");
    add("dir-to-empty-dir", {dir("d"), dir("e", 0700)}, "d", "e");
    add("dir-to-full-dir", {dir("d"), dir("e"), file("e/f")}, "d", "e");
    add("dir-into-itself", {dir("d")}, "d", "d/sub");
    add("dir-into-own-subdir", {dir("d/sub")}, "d", "d/sub/d");
    add("hardlinks", {file("f"), hardlink("g", "f")}, "f", "g");
    add("to-itself", {file("f")}, "f", "f");
    add("lnk", {file("f"), symlink("lnk", "f")}, "lnk", "moved");
    add("dangling", {symlink("lnk", "missing")}, "lnk", "moved");
    add("onto-lnk", {file("f"), file("g"), symlink("lnk", "g")}, "f", "lnk");
    add("missing", {}, "missing", "g");
    add("to-noparent", {file("f")}, "f", "nodir/g");
    add("to-notdir", {file("f"), file("g")}, "f", "g/h");
    add("file-slash", {file("f")}, "f/", "g");
    add("to-slash", {file("f")}, "f", "g/");
    add("dir-slash", {dir("d")}, "d/", "e/");
    add("dot", {dir("d")}, "d/.", "e");
    add("to-dotdot", {dir("d")}, "d", "d/..");
    add("name256", {file("f")}, "f", std::string(256, 'r'));
    add("from-dir0500", {dir("d", 0500), file("d/f")}, "d/f", "g");
    add("into-dir0500", {dir("d", 0500), file("f")}, "f", "d/f");
    add("dir0555-between-dirs", {dir("a/d", 0555), dir("b")}, "a/d", "b/d");
    add("within-dir0000", {dir("d", 0), file("d/f")}, "d/f", "d/g");
    add("sticky-mine", sticky_nodes(), "sticky/mine", "sticky/m2");
    add("sticky-theirs", sticky_nodes(), "sticky/theirs", "sticky/t2");
    add("sticky-onto-theirs", sticky_nodes(), "sticky/mine", "sticky/theirs");
    add("roots-file", {owned(file("f", 0600), Owner::root)}, "f", "g");
    add("onto-roots-file", {file("f"), owned(file("g", 0600), Owner::root)}, "f", "g");
    add("through-lnkdir", {dir("d"), symlink("lnk", "d"), file("f")}, "f", "lnk/f");
    out.push_back({"rename.cross-device", {file("f"), other_fs("other")}, [](Env& e) {
                       return if_other_fs(e, [&e] {
                           return sys(::syscall(SYS_rename, e.abs("f").c_str(), e.abs("other/f").c_str()));
                       });
                   }});
}

void add_renameat(Cases& out) {
    out.push_back({"renameat.dirfd", {file("f")}, [](Env& e) {
                       return sys(::syscall(SYS_renameat, e.dirfd(), "f", e.dirfd(), "g"));
                   }});
    out.push_back({"renameat.cwd", {file("f")}, [](Env&) {
                       return sys(::syscall(SYS_renameat, AT_FDCWD, "f", AT_FDCWD, "g"));
                   }});
    out.push_back({"renameat.mixed", {file("f"), dir("d")}, [](Env& e) {
                       return sys(::syscall(SYS_renameat, e.dirfd(), "f", AT_FDCWD, "d/f"));
                   }});
    out.push_back({"renameat.dirfd-is-file", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           return sys(::syscall(SYS_renameat, fd, "x", AT_FDCWD, "g"));
                       });
                   }});
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& from,
                      const std::string& to, unsigned flags) {
        out.push_back(
            {"renameat2." + what, std::move(nodes), [from, to, flags](Env& e) {
                 return sys(::syscall(SYS_renameat2, e.dirfd(), from.c_str(), AT_FDCWD, to.c_str(), flags));
             }});
    };
    add("plain", {file("f"), file("g")}, "f", "g", 0);
    add("noreplace-new", {file("f")}, "f", "g", RENAME_NOREPLACE);
    add("noreplace-existing", {file("f"), file("g")}, "f", "g", RENAME_NOREPLACE);
    add("noreplace-dangling", {file("f"), symlink("g", "missing")}, "f", "g", RENAME_NOREPLACE);
    add("noreplace-dir", {dir("d"), dir("e")}, "d", "e", RENAME_NOREPLACE);
    add("exchange-files", {file("f", 0600, "f\n"), file("g", 0644, "gg\n")}, "f", "g", RENAME_EXCHANGE);
    add("exchange-file-dir", {file("f"), dir("d"), file("d/inner")}, "f", "d", RENAME_EXCHANGE);
    add("exchange-missing", {file("f")}, "f", "g", RENAME_EXCHANGE);
    add("exchange-same", {file("f")}, "f", "f", RENAME_EXCHANGE);
    add("exchange-into-subdir", {dir("d/sub")}, "d", "d/sub", RENAME_EXCHANGE);
    add("exchange-lnk", {file("f"), symlink("lnk", "f")}, "f", "lnk", RENAME_EXCHANGE);
    add("exchange-sticky-theirs", sticky_nodes(), "sticky/mine", "sticky/theirs", RENAME_EXCHANGE);
    add("exchange-noreplace", {file("f"), file("g")}, "f", "g", RENAME_EXCHANGE | RENAME_NOREPLACE);
    add("whiteout", {file("f")}, "f", "g", RENAME_WHITEOUT);
    add("bad-flag", {file("f")}, "f", "g", 0x80);
    add("noreplace-into-dir0500", {file("f"), dir("d", 0500)}, "f", "d/f", RENAME_NOREPLACE);
}

void add_link(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& from,
                      const std::string& to) {
        out.push_back({"link." + what, std::move(nodes), [from, to](Env& e) {
                           return sys(::syscall(SYS_link, e.abs(from).c_str(), e.abs(to).c_str()));
                       }});
    };
    add("file", {file("f")}, "f", "new");
    add("exists", {file("f"), file("g")}, "f", "g");
    add("onto-dangling", {file("f"), symlink("g", "missing")}, "f", "g");
    add("dir", {dir("d")}, "d", "new");
    add("missing", {}, "missing", "new");
    add("lnk", {file("f"), symlink("lnk", "f")}, "lnk", "new");
    add("dangling", {symlink("lnk", "missing")}, "lnk", "new");
    add("fifo", {fifo("p")}, "p", "new");
    add("noparent", {file("f")}, "f", "nodir/new");
    add("new-slash", {file("f")}, "f", "new/");
    add("old-slash", {file("f")}, "f/", "new");
    add("mode0000", {file("f", 0)}, "f", "new");
    add("roots-0644", {owned(file("f", 0644), Owner::root)}, "f", "new");
    add("roots-0666", {owned(file("f", 0666), Owner::root)}, "f", "new");
    add("roots-0600", {owned(file("f", 0600), Owner::root)}, "f", "new");
    add("setuid-mine", {file("f", 04755)}, "f", "new");
    add("into-dir0500", {file("f"), dir("d", 0500)}, "f", "d/new");
    add("from-dir0000", {dir("d", 0), file("d/f")}, "d/f", "new");
    add("into-sticky", sticky_nodes(), "sticky/mine", "sticky/new");
    add("name256", {file("f")}, "f", std::string(256, 'l'));
    out.push_back({"link.cross-device", {file("f"), other_fs("other")}, [](Env& e) {
                       return if_other_fs(e, [&e] {
                           return sys(::syscall(SYS_link, e.abs("f").c_str(), e.abs("other/f").c_str()));
                       });
                   }});
}

void add_linkat(Cases& out) {
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& from, int flags) {
        out.push_back({"linkat." + what, std::move(nodes), [from, flags](Env& e) {
                           return sys(::syscall(SYS_linkat, e.dirfd(), from.c_str(), AT_FDCWD, "new", flags));
                       }});
    };
    add("plain", {file("f")}, "f", 0);
    add("follow-lnk", {file("f"), symlink("lnk", "f")}, "lnk", AT_SYMLINK_FOLLOW);
    add("follow-dangling", {symlink("lnk", "missing")}, "lnk", AT_SYMLINK_FOLLOW);
    add("follow-lnkdir", {dir("d"), symlink("lnk", "d")}, "lnk", AT_SYMLINK_FOLLOW);
    add("bad-flag", {file("f")}, "f", 0x1);
    add("empty-without-flag", {file("f")}, "", 0);
    // The kernel lets only CAP_DAC_READ_SEARCH link a descriptor by AT_EMPTY_PATH.
    out.push_back({"linkat.empty-path", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           return sys(::syscall(SYS_linkat, fd, "", AT_FDCWD, "new", AT_EMPTY_PATH));
                       });
                   }});
    // What anyone may do instead: link the descriptor's /proc/self/fd entry, following it.
    out.push_back({"linkat.proc-fd", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           const std::string magic = "/proc/self/fd/" + std::to_string(fd);
                           return sys(::syscall(SYS_linkat, AT_FDCWD, magic.c_str(), AT_FDCWD, "new",
                                                AT_SYMLINK_FOLLOW));
                       });
                   }});
    for (const bool exclusive : {false, true}) {
        out.push_back(
            {std::string("linkat.tmpfile") + (exclusive ? "-excl" : ""), {}, [exclusive](Env&) {
                 const int flags = O_TMPFILE | O_RDWR | (exclusive ? O_EXCL : 0);
                 const unique_fd fd(static_cast<int>(::syscall(SYS_openat, AT_FDCWD, ".", flags, 0640)));
                 if (!fd) return Result{-1, errno, false, "(O_TMPFILE open failed)"};
                 [[maybe_unused]] const ssize_t n = ::write(fd.get(), "tmp\n", 4);
                 const std::string magic = "/proc/self/fd/" + std::to_string(fd.get());
                 return sys(
                     ::syscall(SYS_linkat, AT_FDCWD, magic.c_str(), AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
             }});
    }
}

}  // namespace

void add_rename_cases(Cases& out) {
    add_rename(out);
    add_renameat(out);
}

void add_link_cases(Cases& out) {
    add_link(out);
    add_linkat(out);
}

}  // namespace fdbroker::conformance
