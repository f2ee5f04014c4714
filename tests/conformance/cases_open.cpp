// open, openat, openat2, creat: the flag matrix over every kind of target.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

struct Flags {
    const char* name;
    int flags;
};

constexpr Flags kOpenFlags[] = {
    {"rdonly", O_RDONLY},
    {"wronly", O_WRONLY},
    {"rdwr", O_RDWR},
    {"trunc", O_WRONLY | O_TRUNC},
    {"append", O_WRONLY | O_APPEND},
    {"creat", O_CREAT | O_WRONLY},
    {"excl", O_CREAT | O_EXCL | O_WRONLY},
    {"creat-trunc", O_CREAT | O_RDWR | O_TRUNC},
    {"directory", O_RDONLY | O_DIRECTORY},
    {"nofollow", O_RDONLY | O_NOFOLLOW},
    {"path", O_PATH},
    {"path-nofollow", O_PATH | O_NOFOLLOW},
    {"tmpfile", O_TMPFILE | O_RDWR},
    {"creat-directory", O_CREAT | O_DIRECTORY},
    {"excl-nofollow", O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY},
    {"excl-rdonly", O_CREAT | O_EXCL | O_RDONLY},
    {"ioctl-only", O_ACCMODE},
};

// The flags the *at forms are tried with (the matrix above runs on open).
constexpr Flags kAtFlags[] = {
    {"rdonly", O_RDONLY},
    {"creat", O_CREAT | O_WRONLY},
    {"excl", O_CREAT | O_EXCL | O_WRONLY},
    {"directory", O_RDONLY | O_DIRECTORY},
    {"path", O_PATH},
};

constexpr mode_t kCreateMode = 0640;

// Opening a FIFO without O_NONBLOCK waits for the other end: never in this suite. Making one that is
// there (O_CREAT | O_EXCL) opens nothing, so it stays as it is.
int adjusted(const Target& t, int flags) {
    const bool makes = (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
    return t.name == "fifo" && !makes ? flags | O_NONBLOCK : flags;
}

void add_open_matrix(Cases& out) {
    std::vector<Target> targets = common_targets();
    for (auto& more : {mode_targets(), dir_targets()})
        targets.insert(targets.end(), more.begin(), more.end());
    for (const Target& t : targets) {
        for (const Flags& f : kOpenFlags) {
            const int flags = adjusted(t, f.flags);
            const std::string path = t.path;
            out.push_back({"open." + t.name + "." + f.name, t.nodes, [path, flags](Env& e) {
                               return opened(::syscall(SYS_open, e.abs(path).c_str(), flags, kCreateMode));
                           }});
        }
    }
}

std::vector<Target> at_targets() {
    std::vector<Target> out;
    for (const Target& t : common_targets())
        if (t.name == "file" || t.name == "dir" || t.name == "lnk" || t.name == "lnkabs" ||
            t.name == "dangling" || t.name == "missing" || t.name == "noparent" || t.name == "file-slash" ||
            t.name == "lnk-dotdot")
            out.push_back(t);
    return out;
}

void add_openat(Cases& out) {
    for (const Target& t : at_targets()) {
        for (const Flags& f : kAtFlags) {
            const std::string path = t.path;
            const int flags = f.flags;
            out.push_back({"openat.cwd." + t.name + "." + f.name, t.nodes, [path, flags](Env&) {
                               return opened(
                                   ::syscall(SYS_openat, AT_FDCWD, path.c_str(), flags, kCreateMode));
                           }});
            out.push_back({"openat.dirfd." + t.name + "." + f.name, t.nodes, [path, flags](Env& e) {
                               return opened(
                                   ::syscall(SYS_openat, e.dirfd(), path.c_str(), flags, kCreateMode));
                           }});
        }
    }
    const std::vector<Node> one{file("file")};
    out.push_back({"openat.cwd.file.cloexec", one, [](Env&) {
                       return opened(::syscall(SYS_openat, AT_FDCWD, "file", O_RDONLY | O_CLOEXEC));
                   }});
    out.push_back({"openat.dirfd.file.cloexec", one, [](Env& e) {
                       return opened(::syscall(SYS_openat, e.dirfd(), "file", O_RDWR | O_CLOEXEC));
                   }});
    out.push_back({"openat.dirfd-is-file", one, [](Env& e) {
                       return with_fd(e.abs("file"), O_RDONLY, [](int fd) {
                           return opened(::syscall(SYS_openat, fd, "x", O_RDONLY));
                       });
                   }});
    out.push_back(
        {"openat.bad-dirfd", one, [](Env&) { return opened(::syscall(SYS_openat, 999, "file", O_RDONLY)); }});
    // An absolute path ignores the directory descriptor.
    out.push_back({"openat.dirfd-absolute", {dir("d"), file("file")}, [](Env& e) {
                       return with_fd(e.abs("d"), O_RDONLY | O_DIRECTORY, [&e](int fd) {
                           return opened(::syscall(SYS_openat, fd, e.abs("file").c_str(), O_RDONLY));
                       });
                   }});
    out.push_back(
        {"openat.empty", one, [](Env& e) { return opened(::syscall(SYS_openat, e.dirfd(), "", O_RDONLY)); }});
    out.push_back(
        {"openat.dot", one, [](Env&) { return opened(::syscall(SYS_openat, AT_FDCWD, ".", O_RDONLY)); }});
    out.push_back({"openat.dotdot", one, [](Env&) {
                       return opened(::syscall(SYS_openat, AT_FDCWD, "..", O_RDONLY | O_DIRECTORY));
                   }});
    out.push_back({"openat.create-mode-0777", {}, [](Env&) {
                       return opened(::syscall(SYS_openat, AT_FDCWD, "new", O_CREAT | O_WRONLY, 0777));
                   }});
    out.push_back({"openat.create-umask-077", {}, [](Env&) {
                       ::umask(077);
                       return opened(::syscall(SYS_openat, AT_FDCWD, "new", O_CREAT | O_WRONLY, 0666));
                   }});
    out.push_back({"openat.create-setgid-dir", {owned(dir("g", 02777), Owner::mine_root_group)}, [](Env&) {
                       return opened(::syscall(SYS_openat, AT_FDCWD, "g/new", O_CREAT | O_WRONLY, 02755));
                   }});
}

long openat2(int dirfd, const std::string& path, const open_how& how, std::size_t size = sizeof(open_how)) {
    return ::syscall(SYS_openat2, dirfd, path.c_str(), &how, size);
}

struct Resolve {
    const char* name;
    unsigned long long flags;
};

constexpr Resolve kResolve[] = {
    {"plain", 0},
    {"beneath", RESOLVE_BENEATH},
    {"in-root", RESOLVE_IN_ROOT},
    {"no-symlinks", RESOLVE_NO_SYMLINKS},
    {"no-magiclinks", RESOLVE_NO_MAGICLINKS},
    {"no-xdev", RESOLVE_NO_XDEV},
};

void add_openat2_resolve(Cases& out) {
    for (const Resolve& r : kResolve) {
        const unsigned long long resolve = r.flags;
        auto add = [&out, &r, resolve](const std::string& what, std::vector<Node> nodes,
                                       const std::string& path) {
            out.push_back(
                {"openat2." + std::string(r.name) + "." + what, std::move(nodes), [path, resolve](Env& e) {
                     open_how how{};
                     how.flags = O_RDONLY;
                     how.resolve = resolve;
                     std::string p = path;
                     if (p == "{absolute}") p = e.abs("file");
                     if (p == "{magic}") p = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/file";
                     if (p == "{magic-dir}") p = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/d/file";
                     return opened(openat2(e.dirfd(), p, how));
                 }});
        };
        add("file", {file("file")}, "file");
        add("lnk", {file("file"), symlink("lnk", "file")}, "lnk");
        add("lnkabs", {file("file"), symlink("lnk", "{case}/file")}, "lnk");
        add("dotdot", {dir("d"), file("file")}, "d/../file");
        add("escape", {file("file")}, "../openat2." + std::string(r.name) + ".escape/file");
        add("absolute", {file("file")}, "{absolute}");
        add("magic", {file("file")}, "{magic}");
        add("magic-dir", {dir("d"), file("d/file")}, "{magic-dir}");
        add("proc", {}, "/proc/self/status");
        add("lnkproc", {symlink("lnk", "/proc/self/status")}, "lnk");
        add("lnkroot", {symlink("lnk", "/")}, "lnk/proc/self/status");
    }
}

void add_openat2_errors(Cases& out) {
    const std::vector<Node> one{file("file")};
    auto add = [&out, &one](const std::string& what, open_how how, std::size_t size) {
        const bool creating = (how.flags & O_EXCL) != 0;
        out.push_back({"openat2." + what, creating ? std::vector<Node>{} : one,
                       [how, size](Env& e) { return opened(openat2(e.dirfd(), "file", how, size)); }});
    };
    add("unknown-flag", {0x4000000000ULL, 0, 0}, sizeof(open_how));
    add("mode-without-creat", {O_RDONLY, 0644, 0}, sizeof(open_how));
    add("unknown-resolve", {O_RDONLY, 0, 0x8000}, sizeof(open_how));
    add("short-size", {O_RDONLY, 0, 0}, sizeof(open_how) - 8);
    add("create", {O_CREAT | O_EXCL | O_WRONLY, 0640, 0}, sizeof(open_how));
    add("creat-existing", {O_CREAT | O_WRONLY | O_TRUNC, 0600, 0}, sizeof(open_how));
    out.push_back({"openat2.big-size-zero-tail", one, [](Env& e) {
                       struct {
                           open_how how;
                           std::uint64_t tail;
                       } big{{O_RDONLY, 0, 0}, 0};
                       return opened(::syscall(SYS_openat2, e.dirfd(), "file", &big, sizeof big));
                   }});
    out.push_back({"openat2.big-size-nonzero-tail", one, [](Env& e) {
                       struct {
                           open_how how;
                           std::uint64_t tail;
                       } big{{O_RDONLY, 0, 0}, 1};
                       return opened(::syscall(SYS_openat2, e.dirfd(), "file", &big, sizeof big));
                   }});
}

void add_creat(Cases& out) {
    std::vector<Target> targets;
    for (const Target& t : common_targets())
        if (t.name == "file" || t.name == "dir" || t.name == "lnk" || t.name == "dangling" ||
            t.name == "missing" || t.name == "noparent" || t.name == "file-slash")
            targets.push_back(t);
    for (const Target& t : mode_targets())
        if (t.name == "mode0400" || t.name == "root0644" || t.name == "root0666") targets.push_back(t);
    for (const Target& t : dir_targets())
        if (t.name == "dir0500-new" || t.name == "sticky-new" || t.name == "sticky-file")
            targets.push_back(t);
    for (const Target& t : targets) {
        const std::string path = t.path;
        out.push_back({"creat." + t.name, t.nodes, [path](Env& e) {
                           return opened(::syscall(SYS_creat, e.abs(path).c_str(), kCreateMode));
                       }});
    }
}

}  // namespace

void add_open_cases(Cases& out) {
    add_open_matrix(out);
    add_openat(out);
    add_openat2_resolve(out);
    add_openat2_errors(out);
    add_creat(out);
}

}  // namespace fdbroker::conformance
