// The path walk: chdir and relative names, ".." after symlinks, odd spellings, ELOOP, ENAMETOOLONG,
// deep trees; /proc/self, /proc/thread-self and /proc/self/fd.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

Result open_rel(const char* path, int flags = O_RDONLY) {
    return opened(::syscall(SYS_openat, AT_FDCWD, path, flags, 0640));
}

Result stat_rel(const std::string& path) {
    struct stat st {};
    return stat_result(::syscall(SYS_newfstatat, AT_FDCWD, path.c_str(), &st, 0), st);
}

void add_chdir(Cases& out) {
    const std::vector<Node> d{dir("d"), file("d/f"), file("f", 0600, "top\n")};
    auto add = [&out](const std::string& what, std::vector<Node> nodes, const std::string& to,
                      const Call& then) {
        out.push_back({"chdir." + what, std::move(nodes), [to, then](Env& e) {
                           if (::chdir(e.abs(to).c_str()) != 0)
                               return Result{-1, errno, false, "(chdir failed)"};
                           return then(e);
                       }});
    };
    add("open", d, "d", [](Env&) { return open_rel("f"); });
    add("open-dotdot", d, "d", [](Env&) { return open_rel("../f"); });
    add("mkdir", d, "d", [](Env&) { return sys(::syscall(SYS_mkdir, "new", 0755)); });
    add("stat-dotdot", d, "d", [](Env&) { return stat_rel(".."); });
    add("unlink", d, "d", [](Env&) { return sys(::syscall(SYS_unlink, "f")); });
    add("rename-up", d, "d", [](Env&) { return sys(::syscall(SYS_rename, "f", "../g")); });
    add("search-only-dir", {dir("d", 0100), file("d/f")}, "d", [](Env&) { return open_rel("f"); });
    add("search-only-stat", {dir("d", 0100), file("d/f")}, "d", [](Env&) { return stat_rel("f"); });
    add("search-only-create", {dir("d", 0300)}, "d",
        [](Env&) { return open_rel("new", O_CREAT | O_WRONLY); });
    // ".." of a directory entered through a symlink is its physical parent.
    add("through-lnk-dotdot", {dir("a/b"), file("a/f"), file("f", 0600, "top\n"), symlink("lb", "a/b")}, "lb",
        [](Env&) { return open_rel("../f"); });
    add("dir0000", {dir("d", 0)}, "d", [](Env&) { return sys(0); });
    add("file", {file("f")}, "f", [](Env&) { return sys(0); });
    add("ancestor", {}, "../..", [](Env&) { return stat_rel("."); });
    out.push_back({"fchdir.open", d, [](Env& e) {
                       return with_fd(e.abs("d"), O_RDONLY | O_DIRECTORY, [](int fd) {
                           if (::fchdir(fd) != 0) return Result{-1, errno, false, "(fchdir failed)"};
                           return open_rel("f");
                       });
                   }});
    out.push_back({"fchdir.opath", d, [](Env& e) {
                       return with_fd(e.abs("d"), O_PATH | O_DIRECTORY, [](int fd) {
                           if (::fchdir(fd) != 0) return Result{-1, errno, false, "(fchdir failed)"};
                           return open_rel("f", O_RDWR);
                       });
                   }});
}

void add_spellings(Cases& out) {
    const std::vector<Node> d{dir("d"), file("d/f"), file("f")};
    for (const char* path :
         {"d//f", "./d/f", "d/./f", "d/../f", "d/../d/../f", "./", "d/f/.", "d/f/..", "d/.."}) {
        const std::string p = path;
        std::string id = p;
        for (char& ch : id)
            if (ch == '/') ch = '_';
        out.push_back({"open.spelling." + id, d, [p](Env&) { return open_rel(p.c_str()); }});
        out.push_back({"stat.spelling." + id, d, [p](Env&) { return stat_rel(p); }});
    }
    out.push_back({"open.chained-links",
                   {dir("a/b"), file("a/b/x"), file("a/f"), symlink("l2", "a/b"), symlink("l1", "l2/x")},
                   [](Env&) { return open_rel("l1"); }});
    out.push_back({"open.chained-links-dotdot",
                   {dir("a/b"), file("a/f"), symlink("l2", "a/b"), symlink("l1", "l2/..")},
                   [](Env&) { return open_rel("l1/f"); }});
    // Names missing (or no directory) beyond a symlinked directory: what a search path through a
    // symlink probes (Perl's @INC), each call as it comes.
    const std::vector<Node> linked{dir("real/sub"), file("real/f"), symlink("link", "real"),
                                   symlink("rel", "./real/sub/..")};
    for (const char* path : {"link/none/x", "link/none/x/y", "link/f/x", "link/f/x/y", "rel/none/x",
                             "link/sub/none/x", "link/sub/../none/x"}) {
        std::string id = path;
        for (char& ch : id)
            if (ch == '/') ch = '_';
        out.push_back(
            {"stat.beyond-link." + id, linked, [p = std::string(path)](Env&) { return stat_rel(p); }});
        out.push_back({"open.beyond-link." + id, linked,
                       [p = std::string(path)](Env&) { return open_rel(p.c_str()); }});
        out.push_back({"mkdir.beyond-link." + id, linked,
                       [p = std::string(path)](Env&) { return sys(::syscall(SYS_mkdir, p.c_str(), 0755)); }});
    }
    out.push_back({"unlink.lnk-dotdot", {dir("a/b"), file("a/f"), file("f"), symlink("lb", "a/b")}, [](Env&) {
                       return sys(::syscall(SYS_unlink, "lb/../f"));
                   }});
    out.push_back({"rename.lnk-dotdot", {dir("a/b"), file("a/f"), file("f"), symlink("lb", "a/b")}, [](Env&) {
                       return sys(::syscall(SYS_rename, "lb/../f", "g"));
                   }});
}

// A chain of `n` symlinks ending at a file: the kernel follows at most 40.
std::vector<Node> chain(int n) {
    std::vector<Node> nodes{file("f")};
    for (int i = 1; i <= n; ++i)
        nodes.push_back(symlink("s" + std::to_string(i), i == n ? "f" : "s" + std::to_string(i + 1)));
    return nodes;
}

void add_loops(Cases& out) {
    for (const int n : {40, 41}) {
        const std::string id = std::to_string(n);
        out.push_back({"open.chain" + id, chain(n), [](Env&) { return open_rel("s1"); }});
        out.push_back({"stat.chain" + id, chain(n), [](Env&) { return stat_rel("s1"); }});
    }
    const std::vector<Node> self{symlink("self", "self")};
    out.push_back({"open.self-loop", self, [](Env&) { return open_rel("self"); }});
    out.push_back({"open.self-loop-creat", self, [](Env&) { return open_rel("self", O_CREAT | O_WRONLY); }});
    out.push_back(
        {"open.self-loop-opath-nofollow", self, [](Env&) { return open_rel("self", O_PATH | O_NOFOLLOW); }});
    out.push_back({"stat.self-loop", self, [](Env&) { return stat_rel("self"); }});
    out.push_back({"stat.self-loop-component", self, [](Env&) { return stat_rel("self/x"); }});
    out.push_back(
        {"mkdir.self-loop-parent", self, [](Env&) { return sys(::syscall(SYS_mkdir, "self/new", 0755)); }});
    out.push_back(
        {"open.dir-loop", {dir("d"), symlink("d/l", "../d/l/x")}, [](Env&) { return open_rel("d/l"); }});
    out.push_back({"open.nofollow-lnkdir-directory", {dir("d"), symlink("lnk", "d")}, [](Env&) {
                       return open_rel("lnk", O_RDONLY | O_NOFOLLOW | O_DIRECTORY);
                   }});
}

constexpr std::size_t kComponent = 250;
constexpr int kDepth = 16;

// A path of 16 directories with 250-character names (4016 characters): reachable natively only by
// relative names, since the absolute one is longer than PATH_MAX.
std::string deep() {
    std::string p;
    for (int i = 0; i < kDepth; ++i)
        p += (i ? "/" : "") + std::string(kComponent, static_cast<char>('a' + i));
    return p;
}

void add_long_paths(Cases& out) {
    const std::string d = deep();
    const std::string name4095(4095 - d.size() - 1, 'z');
    const std::vector<Node> nodes{file(d + "/f"), file(d + "/" + name4095)};
    out.push_back({"open.deep-relative", nodes, [d](Env&) { return open_rel((d + "/f").c_str()); }});
    out.push_back({"openat.deep-dirfd", nodes, [d](Env& e) {
                       return opened(::syscall(SYS_openat, e.dirfd(), (d + "/f").c_str(), O_RDONLY));
                   }});
    out.push_back({"open.deep-absolute", nodes, [d](Env& e) { return open_rel(e.abs(d + "/f").c_str()); }});
    out.push_back(
        {"open.path-4095", nodes, [d, name4095](Env&) { return open_rel((d + "/" + name4095).c_str()); }});
    out.push_back({"open.path-4096", nodes,
                   [d, name4095](Env&) { return open_rel((d + "/" + name4095 + "z").c_str()); }});
    out.push_back({"stat.deep-relative", nodes, [d](Env&) { return stat_rel(d + "/f"); }});
    out.push_back({"mkdir.deep-relative", nodes,
                   [d](Env&) { return sys(::syscall(SYS_mkdir, (d + "/new").c_str(), 0755)); }});
    out.push_back({"unlink.deep-relative", nodes,
                   [d](Env&) { return sys(::syscall(SYS_unlink, (d + "/f").c_str())); }});
    out.push_back({"chdir.deep", nodes, [d](Env&) {
                       if (::chdir(d.c_str()) != 0) return Result{-1, errno, false, "(chdir failed)"};
                       return open_rel("f", O_RDWR);
                   }});
    const std::string too_long = std::string(5000, 'x');
    out.push_back(
        {"open.component-5000", {}, [too_long](Env&) { return open_rel(("d/" + too_long).c_str()); }});
    for (const char* call : {"open", "stat", "mkdir", "unlink", "access", "readlink"}) {
        const std::string c = call;
        std::string path;
        for (int i = 0; i < 1100; ++i)
            path += "d/";
        path += "f";
        out.push_back({c + ".path-over-4096", {}, [c, path](Env&) {
                           char buf[16];
                           if (c == "open") return open_rel(path.c_str());
                           if (c == "stat") return stat_rel(path);
                           if (c == "mkdir") return sys(::syscall(SYS_mkdir, path.c_str(), 0755));
                           if (c == "unlink") return sys(::syscall(SYS_unlink, path.c_str()));
                           if (c == "access") return sys(::syscall(SYS_access, path.c_str(), F_OK));
                           return sys(::syscall(SYS_readlink, path.c_str(), buf, sizeof buf));
                       }});
    }
}

}  // namespace

void add_path_cases(Cases& out) {
    add_chdir(out);
    add_spellings(out);
    add_loops(out);
    add_long_paths(out);
}

}  // namespace fdbroker::conformance
