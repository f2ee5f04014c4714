// /proc/self, /proc/thread-self, /proc/<own pid> and /proc/self/fd/N: the caller's own entries.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

Result open_result_of(const std::string& path) {
    return opened(::syscall(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY));
}

// What a status file says about its process, as far as it is the same in every run: the ids, and
// whether it is the caller's.
Result status_of(const std::string& path) {
    const unique_fd fd(static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC)));
    if (!fd) return sys(-1);
    std::string text(8192, '\0');
    const ssize_t n = ::read(fd.get(), text.data(), text.size());
    if (n < 0) return Result{-1, errno, false, "(read failed)"};
    text.resize(static_cast<std::size_t>(n));
    Result r{0, 0, false, {}};
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("Tgid:"))
            line = std::string("caller's: ") + (std::stol(line.substr(5)) == ::getpid() ? "yes" : "no");
        if (line.starts_with("caller's") || line.starts_with("Uid:") || line.starts_with("Gid:") ||
            line.starts_with("CapEff:"))
            r.detail += (r.detail.empty() ? "" : ", ") + line;
    }
    for (char& ch : r.detail)
        if (ch == '\t') ch = ' ';
    return r;
}

Result link_text(const std::string& path) {
    std::string buf(4096, '\0');
    const long n = ::syscall(SYS_readlink, path.c_str(), buf.data(), buf.size());
    Result r = sys(n);
    r.length = true;
    if (n >= 0) r.detail = "\"" + buf.substr(0, static_cast<std::size_t>(n)) + "\"";
    return r;
}

std::string own(const char* rest) {
    return "/proc/" + std::to_string(::getpid()) + rest;
}

std::string thread(const char* rest) {
    return own("/task/") + std::to_string(::gettid()) + rest;
}

void add_status(Cases& out) {
    out.push_back({"proc.self-status", {}, [](Env&) { return status_of("/proc/self/status"); }});
    out.push_back(
        {"proc.thread-self-status", {}, [](Env&) { return status_of("/proc/thread-self/status"); }});
    out.push_back({"proc.own-pid-status", {}, [](Env&) { return status_of(own("/status")); }});
    out.push_back({"proc.init-status", {}, [](Env&) { return status_of("/proc/1/status"); }});
    out.push_back({"proc.init-environ", {}, [](Env&) { return open_result_of("/proc/1/environ"); }});
    out.push_back({"proc.self-environ", {}, [](Env&) { return open_result_of("/proc/self/environ"); }});
    out.push_back({"proc.self-mountinfo", {}, [](Env&) { return open_result_of("/proc/self/mountinfo"); }});
    out.push_back(
        {"proc.self-access", {}, [](Env&) { return sys(::syscall(SYS_access, "/proc/self/status", R_OK)); }});
    out.push_back({"proc.self-fd-dir-stat", {}, [](Env&) {
                       struct stat st {};
                       return stat_result(::syscall(SYS_stat, "/proc/self/fd", &st), st);
                   }});
    out.push_back({"proc.self-readlink", {}, [](Env&) {
                       Result r = link_text("/proc/self");
                       if (r.ret >= 0)
                           r.detail = r.detail == "\"" + std::to_string(::getpid()) + "\"" ? "caller's"
                                                                                           : "another's";
                       return r;
                   }});
    out.push_back({"proc.thread-self-readlink", {}, [](Env&) {
                       Result r = link_text("/proc/thread-self");
                       const std::string mine =
                           std::to_string(::getpid()) + "/task/" + std::to_string(::gettid());
                       if (r.ret >= 0) r.detail = r.detail == "\"" + mine + "\"" ? "caller's" : "another's";
                       return r;
                   }});
    out.push_back({"proc.own-task-status", {}, [](Env&) { return status_of(thread("/status")); }});
}

void add_fds(Cases& out) {
    auto reopen = [&out](const std::string& what, std::vector<Node> nodes, int first, int second) {
        out.push_back({"proc.fd-reopen." + what, std::move(nodes), [first, second](Env& e) {
                           return with_fd(e.abs("f"), first, [second](int fd) {
                               const std::string magic = "/proc/self/fd/" + std::to_string(fd);
                               return opened(::syscall(SYS_openat, AT_FDCWD, magic.c_str(), second));
                           });
                       }});
    };
    reopen("rdonly", {file("f")}, O_RDONLY, O_RDONLY);
    reopen("upgrade-rdwr", {file("f")}, O_RDONLY, O_RDWR);
    reopen("upgrade-roots", {owned(file("f"), Owner::root)}, O_RDONLY, O_RDWR);
    reopen("from-opath", {file("f", 0600)}, O_PATH, O_RDWR);
    reopen("trunc", {file("f")}, O_RDONLY, O_WRONLY | O_TRUNC);
    out.push_back({"proc.fd-readlink", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           return link_text("/proc/self/fd/" + std::to_string(fd));
                       });
                   }});
    out.push_back({"proc.cwd-readlink", {}, [](Env&) { return link_text("/proc/self/cwd"); }});
    out.push_back({"proc.fd-dir-walk", {file("f")}, [](Env& e) {
                       const std::string via = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/f";
                       return opened(::syscall(SYS_openat, AT_FDCWD, via.c_str(), O_RDONLY));
                   }});
    // A name beneath a held directory's fd/N link, reached relative to a descriptor of /proc/self/fd,
    // and through a directory that is itself reached so.
    out.push_back({"proc.fd-dir-walk-sub", {dir("d"), file("d/f")}, [](Env& e) {
                       const std::string via = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/d/f";
                       return opened(::syscall(SYS_openat, AT_FDCWD, via.c_str(), O_RDONLY));
                   }});
    out.push_back({"proc.fd-dir-walk-missing", {}, [](Env& e) {
                       const std::string via = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/none";
                       return opened(::syscall(SYS_openat, AT_FDCWD, via.c_str(), O_RDONLY));
                   }});
    out.push_back({"proc.fd-dir-walk-create", {}, [](Env& e) {
                       const std::string via = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/new";
                       return opened(::syscall(SYS_openat, AT_FDCWD, via.c_str(), O_CREAT | O_WRONLY, 0640));
                   }});
    out.push_back({"proc.fd-dir-walk-mkdir", {}, [](Env& e) {
                       const std::string via = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/sub";
                       return sys(::syscall(SYS_mkdirat, AT_FDCWD, via.c_str(), 0750));
                   }});
    out.push_back({"proc.fd-dir-walk-stat", {file("f", 0600)}, [](Env& e) {
                       struct stat st {};
                       const std::string via = "/proc/self/fd/" + std::to_string(e.dirfd()) + "/f";
                       return stat_result(::syscall(SYS_newfstatat, AT_FDCWD, via.c_str(), &st, 0), st);
                   }});
    out.push_back({"proc.fd-dir-walk-file", {file("f")}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           const std::string via = "/proc/self/fd/" + std::to_string(fd) + "/x";
                           return opened(::syscall(SYS_openat, AT_FDCWD, via.c_str(), O_RDONLY));
                       });
                   }});
    // A walk into /proc through a symlink, then an ordinary call: the first must leave nothing behind
    // that changes the second.
    out.push_back({"proc.link-then-open", {file("f"), symlink("lnk", "/proc/self/status")}, [](Env& e) {
                       struct stat st {};
                       if (::syscall(SYS_newfstatat, e.dirfd(), "lnk", &st, 0) != 0) return sys(-1);
                       return opened(::syscall(SYS_openat, e.dirfd(), "f", O_RDONLY));
                   }});
    out.push_back({"proc.fd-stat", {file("f", 0640)}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           struct stat st {};
                           const std::string magic = "/proc/self/fd/" + std::to_string(fd);
                           return stat_result(::syscall(SYS_stat, magic.c_str(), &st), st);
                       });
                   }});
    out.push_back({"proc.fd-lstat", {file("f", 0640)}, [](Env& e) {
                       return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                           struct stat st {};
                           const std::string magic = "/proc/self/fd/" + std::to_string(fd);
                           Result r = stat_result(::syscall(SYS_lstat, magic.c_str(), &st), st);
                           if (r.ret == 0)
                               r.detail = r.detail.substr(0, 1);  // the link's mode is its opener's
                           return r;
                       });
                   }});
}

}  // namespace

void add_proc_cases(Cases& out) {
    add_status(out);
    add_fds(out);
}

}  // namespace fdbroker::conformance
