// stat, lstat, newfstatat, statx; access, faccessat, faccessat2; readlink, readlinkat.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "conformance/case.hpp"
#include "conformance/describe.hpp"

namespace fdbroker::conformance {

namespace {

constexpr const char* kName255 =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

// Paths starting with '/' are used as they are, others are taken in the case's directory.
std::string where(const Env& e, const std::string& path) {
    return path.starts_with('/') ? path : e.abs(path);
}

Result statx_result(long ret, const struct statx& sx) {
    Result r = sys(ret);
    if (ret != 0) return r;
    struct stat st {};
    st.st_mode = sx.stx_mode;
    st.st_uid = sx.stx_uid;
    st.st_gid = sx.stx_gid;
    st.st_nlink = sx.stx_nlink;
    st.st_size = static_cast<off_t>(sx.stx_size);
    r.detail = describe_stat(st);
    if ((sx.stx_mask & STATX_BASIC_STATS) != STATX_BASIC_STATS) r.detail += " mask=" + octal(sx.stx_mask);
    return r;
}

std::vector<Target> stat_targets() {
    std::vector<Target> out = common_targets();
    const std::string long_name = kName255;
    out.push_back({"dot", {}, "."});
    out.push_back({"dotdot", {}, ".."});
    out.push_back({"ancestor", {}, "../.."});
    out.push_back({"root", {}, "/"});
    out.push_back({"empty", {}, ""});
    out.push_back({"name255", {file(long_name)}, long_name});
    out.push_back({"name256", {}, long_name + "a"});
    out.push_back({"dir0", {dir("d", 0)}, "d"});
    out.push_back({"socket", {Node{"s", Kind::socket, 0755, {}, Owner::self, {}}}, "s"});
    return out;
}

void add_stat_matrix(Cases& out) {
    for (const Target& t : stat_targets()) {
        const std::string p = t.path;
        auto add = [&out, &t](const std::string& form, Call call) {
            out.push_back({form + "." + t.name, t.nodes, std::move(call)});
        };
        add("stat", [p](Env& e) {
            struct stat st {};
            return stat_result(::syscall(SYS_stat, p.empty() ? "" : where(e, p).c_str(), &st), st);
        });
        add("lstat", [p](Env& e) {
            struct stat st {};
            return stat_result(::syscall(SYS_lstat, p.empty() ? "" : where(e, p).c_str(), &st), st);
        });
        add("newfstatat.cwd", [p](Env&) {
            struct stat st {};
            return stat_result(::syscall(SYS_newfstatat, AT_FDCWD, p.c_str(), &st, 0), st);
        });
        add("newfstatat.nofollow", [p](Env& e) {
            struct stat st {};
            return stat_result(::syscall(SYS_newfstatat, e.dirfd(), p.c_str(), &st, AT_SYMLINK_NOFOLLOW), st);
        });
        add("statx.cwd", [p](Env&) {
            struct statx sx {};
            return statx_result(::syscall(SYS_statx, AT_FDCWD, p.c_str(), 0, STATX_BASIC_STATS, &sx), sx);
        });
        add("statx.nofollow", [p](Env& e) {
            struct statx sx {};
            return statx_result(
                ::syscall(SYS_statx, e.dirfd(), p.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx), sx);
        });
    }
}

// AT_EMPTY_PATH, empty names and descriptors that are not directories.
void add_stat_special(Cases& out) {
    const std::vector<Node> one{file("file", 0640)};
    auto fd_stat = [](int flags, int how) {
        return [flags, how](Env& e) {
            return with_fd(e.abs("file"), flags, [how](int fd) {
                struct stat st {};
                return stat_result(::syscall(SYS_newfstatat, fd, "", &st, how), st);
            });
        };
    };
    out.push_back({"newfstatat.empty-path.file", one, fd_stat(O_RDONLY, AT_EMPTY_PATH)});
    out.push_back({"newfstatat.empty-path.opath", one, fd_stat(O_PATH, AT_EMPTY_PATH)});
    out.push_back({"newfstatat.empty-without-flag", one, fd_stat(O_RDONLY, 0)});
    out.push_back({"newfstatat.empty-path.cwd", one, [](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_newfstatat, AT_FDCWD, "", &st, AT_EMPTY_PATH), st);
                   }});
    out.push_back({"newfstatat.bad-flag", one, [](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_newfstatat, AT_FDCWD, "file", &st, 0x40000000), st);
                   }});
    out.push_back({"newfstatat.dirfd-is-file", one, [](Env& e) {
                       return with_fd(e.abs("file"), O_RDONLY, [](int fd) {
                           struct stat st {};
                           return stat_result(::syscall(SYS_newfstatat, fd, "x", &st, 0), st);
                       });
                   }});
    out.push_back({"statx.empty-path.file", one, [](Env& e) {
                       return with_fd(e.abs("file"), O_RDONLY, [](int fd) {
                           struct statx sx {};
                           return statx_result(
                               ::syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx), sx);
                       });
                   }});
    out.push_back({"statx.null-path", one, [](Env& e) {
                       return with_fd(e.abs("file"), O_RDONLY, [](int fd) {
                           struct statx sx {};
                           return statx_result(
                               ::syscall(SYS_statx, fd, nullptr, AT_EMPTY_PATH, STATX_BASIC_STATS, &sx), sx);
                       });
                   }});
}

// Arguments the kernel refuses before it looks at any file.
void add_stat_refusals(Cases& out) {
    const std::vector<Node> one{file("file", 0640)};
    out.push_back({"statx.reserved-mask", one, [](Env&) {
                       struct statx sx {};
                       return statx_result(::syscall(SYS_statx, AT_FDCWD, "file", 0, 0x80000000U, &sx), sx);
                   }});
    out.push_back({"statx.bad-sync-flags", one, [](Env&) {
                       struct statx sx {};
                       return statx_result(
                           ::syscall(SYS_statx, AT_FDCWD, "file", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                                     STATX_BASIC_STATS, &sx),
                           sx);
                   }});
    out.push_back({"stat.null", {}, [](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_stat, nullptr, &st), st);
                   }});
    out.push_back({"stat.bad-address", {}, [](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_stat, reinterpret_cast<const char*>(8), &st), st);
                   }});
    out.push_back({"stat.bad-buffer", one, [](Env& e) {
                       return sys(
                           ::syscall(SYS_stat, e.abs("file").c_str(), reinterpret_cast<struct stat*>(8)));
                   }});
}

struct Mode {
    const char* name;
    int mode;
};

constexpr Mode kAccessModes[] = {{"f", F_OK}, {"r", R_OK}, {"w", W_OK}, {"x", X_OK}, {"rw", R_OK | W_OK}};

std::vector<Target> access_targets() {
    std::vector<Target> out = mode_targets();
    out.push_back({"root0755", {owned(file("f", 0755), Owner::root)}, "f"});
    for (const Target& t : common_targets())
        if (t.name == "dir" || t.name == "lnk" || t.name == "dangling" || t.name == "missing" ||
            t.name == "noparent" || t.name == "file-slash" || t.name == "locked" || t.name == "lnkdir")
            out.push_back(t);
    for (const Target& t : dir_targets())
        if (t.name == "dir0000" || t.name == "dir0500" || t.name == "sticky" || t.name == "dir0000-file")
            out.push_back(t);
    out.push_back({"ancestor", {}, "../.."});
    return out;
}

void add_access_matrix(Cases& out) {
    for (const Target& t : access_targets()) {
        for (const Mode& m : kAccessModes) {
            const std::string p = t.path;
            const int mode = m.mode;
            out.push_back({"access." + t.name + "." + m.name, t.nodes,
                           [p, mode](Env& e) { return sys(::syscall(SYS_access, e.abs(p).c_str(), mode)); }});
        }
    }
}

void add_faccessat(Cases& out) {
    auto pick = [](std::initializer_list<const char*> names) {
        std::vector<Target> picked;
        for (const Target& t : access_targets())
            for (const char* n : names)
                if (t.name == n) picked.push_back(t);
        return picked;
    };
    for (const Target& t : pick({"mode0644", "mode0755", "root0644", "dir0500", "lnk"}))
        for (const Mode& m : kAccessModes) {
            const std::string p = t.path;
            const int mode = m.mode;
            out.push_back({"faccessat." + t.name + "." + m.name, t.nodes, [p, mode](Env&) {
                               return sys(::syscall(SYS_faccessat, AT_FDCWD, p.c_str(), mode));
                           }});
            out.push_back({"faccessat2.eaccess." + t.name + "." + m.name, t.nodes, [p, mode](Env& e) {
                               return sys(::syscall(SYS_faccessat2, e.dirfd(), p.c_str(), mode, AT_EACCESS));
                           }});
        }
    for (const Target& t : pick({"lnk", "dangling", "lnkdir"}))
        for (const Mode& m : {kAccessModes[0], kAccessModes[1], kAccessModes[3]}) {
            const std::string p = t.path;
            const int mode = m.mode;
            out.push_back(
                {"faccessat2.nofollow." + t.name + "." + m.name, t.nodes, [p, mode](Env& e) {
                     return sys(::syscall(SYS_faccessat2, e.dirfd(), p.c_str(), mode, AT_SYMLINK_NOFOLLOW));
                 }});
        }
}

void add_access_special(Cases& out) {
    const std::vector<Node> one{file("file", 0640)};
    for (const Mode& m : kAccessModes) {
        const int mode = m.mode;
        out.push_back({"faccessat2.empty-path." + std::string(m.name), one, [mode](Env& e) {
                           return with_fd(e.abs("file"), O_RDONLY, [mode](int fd) {
                               return sys(::syscall(SYS_faccessat2, fd, "", mode, AT_EMPTY_PATH));
                           });
                       }});
    }
    out.push_back({"access.bad-mode", one, [](Env&) { return sys(::syscall(SYS_access, "file", 8)); }});
    out.push_back({"faccessat2.bad-flag", one,
                   [](Env&) { return sys(::syscall(SYS_faccessat2, AT_FDCWD, "file", R_OK, 0x1)); }});
    out.push_back(
        {"access.relative", one, [](Env&) { return sys(::syscall(SYS_access, "file", R_OK | W_OK)); }});
    out.push_back({"access.empty", one, [](Env&) { return sys(::syscall(SYS_access, "", F_OK)); }});
}

Result readlink_result(long ret, const std::string& buf) {
    Result r = sys(ret);
    r.length = true;
    if (ret >= 0) r.detail = "\"" + compact(buf.substr(0, static_cast<std::size_t>(ret))) + "\"";
    return r;
}

void add_readlink_matrix(Cases& out) {
    std::vector<Target> targets = common_targets();
    targets.push_back({"long-target", {symlink("lnk", std::string(4095, 'x'))}, "lnk"});
    targets.push_back({"locked-lnk", {dir("locked", 0), symlink("locked/lnk", "x")}, "locked/lnk"});
    for (const Target& t : targets) {
        const std::string p = t.path;
        out.push_back({"readlink." + t.name, t.nodes, [p](Env& e) {
                           std::string buf(4096, '\0');
                           return readlink_result(
                               ::syscall(SYS_readlink, e.abs(p).c_str(), buf.data(), buf.size()), buf);
                       }});
    }
    for (const Target& t : {targets[2], targets[3], targets[0]}) {
        const std::string p = t.path;
        out.push_back({"readlinkat." + t.name, t.nodes, [p](Env& e) {
                           std::string buf(4096, '\0');
                           return readlink_result(
                               ::syscall(SYS_readlinkat, e.dirfd(), p.c_str(), buf.data(), buf.size()), buf);
                       }});
    }
}

void add_readlink_special(Cases& out) {
    const std::vector<Node> lnk{file("file"), symlink("lnk", "file")};
    for (const std::size_t size : {0UL, 1UL, 3UL, 4UL}) {
        out.push_back({"readlink.buffer-" + std::to_string(size), lnk, [size](Env&) {
                           std::string buf(8, '\0');
                           return readlink_result(::syscall(SYS_readlink, "lnk", buf.data(), size), buf);
                       }});
    }
    out.push_back({"readlinkat.empty-path.opath-link", lnk, [](Env& e) {
                       return with_fd(e.abs("lnk"), O_PATH | O_NOFOLLOW, [](int fd) {
                           std::string buf(64, '\0');
                           return readlink_result(::syscall(SYS_readlinkat, fd, "", buf.data(), buf.size()),
                                                  buf);
                       });
                   }});
    out.push_back({"readlinkat.empty-path.dir", lnk, [](Env& e) {
                       std::string buf(64, '\0');
                       return readlink_result(
                           ::syscall(SYS_readlinkat, e.dirfd(), "", buf.data(), buf.size()), buf);
                   }});
    out.push_back({"readlink.bad-buffer", lnk,
                   [](Env&) { return sys(::syscall(SYS_readlink, "lnk", reinterpret_cast<char*>(8), 64)); }});
}

}  // namespace

void add_stat_cases(Cases& out) {
    add_stat_matrix(out);
    add_stat_special(out);
    add_stat_refusals(out);
}

void add_access_cases(Cases& out) {
    add_access_matrix(out);
    add_faccessat(out);
    add_access_special(out);
    add_readlink_matrix(out);
    add_readlink_special(out);
}

}  // namespace fdbroker::conformance
