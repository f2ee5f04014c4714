#include "sandbox/containment.hpp"

#include <cap-ng.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sandbox/kernel_features.hpp"
#include "sandbox/prebuilt_filters.hpp"
#include "sandbox/seccomp_filter.hpp"

namespace fdbroker::sandbox {

namespace {

// The broker's own cgroup in the v2 hierarchy ("/..."), from /proc/self/cgroup's "0::" line.
std::string own_cgroup() {
    std::ifstream cgroup("/proc/self/cgroup");
    for (std::string line; std::getline(cgroup, line);)
        if (line.starts_with("0::")) return line.substr(3);
    return {};
}

bool write_one(int fd) noexcept {
    return ::write(fd, "1", 1) == 1;
}

// Whether a cgroup's cgroup.events says no process is left in it or beneath it (a cgroup removed
// already, whose file no longer reads, has none either).
bool empty(int events) noexcept {
    std::array<char, 256> buf{};
    const ssize_t n = ::pread(events, buf.data(), buf.size() - 1, 0);
    return n <= 0 || std::strstr(buf.data(), "populated 0") != nullptr;
}

// Removes every cgroup directly beneath `dir` that can be removed (the empty ones).
void remove_children(int dir) noexcept {
    const int copy = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (copy < 0) return;
    DIR* d = ::fdopendir(copy);
    if (d == nullptr) {
        ::close(copy);
        return;
    }
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d))
        if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
            names.emplace_back(e->d_name);
    ::closedir(d);
    for (const std::string& n : names)
        ::unlinkat(dir, n.c_str(), AT_REMOVEDIR);
}

// The keeper's own filter allows what waiting on a pipe, writing cgroup.kill, watching cgroup.events
// and removing directories takes; anything else kills it.
constexpr const char* kKeeperCalls[] = {"read",   "write", "pread64",    "poll",         "ppoll",
                                        "openat", "fstat", "newfstatat", "getdents64",   "unlinkat",
                                        "close",  "exit",  "exit_group", "rt_sigreturn", "restart_syscall",
                                        "brk",    "mmap",  "munmap",     "fcntl",        "lseek"};

struct FilterDeleter {
    void operator()(scmp_filter_ctx ctx) const noexcept { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

Filter keeper_filter(int& error) noexcept {
    Filter ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
    if (!ctx) {
        error = ENOMEM;
        return ctx;
    }
    for (const char* name : kKeeperCalls)
        if (const int nr = seccomp_syscall_resolve_name(name); nr != __NR_SCMP_ERROR)
            if (const int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); rc != 0) {
                error = -rc;
                return {};
            }
    return ctx;
}

int confine_keeper() noexcept {
    // The keeper never executes anything, so emptying the effective, permitted and inheritable sets
    // is enough: the bounding set limits only what an exec could gain.
    capng_clear(CAPNG_SELECT_CAPS);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0 && ::geteuid() == 0) return EPERM;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    // Compiled at build time where it can be (prebuilt_filters.hpp): the keeper then allocates nothing.
    unique_fd none;
    if (const std::span<const sock_filter> prebuilt = prebuilt_keeper_filter(); !prebuilt.empty())
        return load_program(prebuilt, /*notify=*/false, 0, none);
    int error = 0;
    const Filter ctx = keeper_filter(error);
    return ctx ? -seccomp_load(ctx.get()) : error;
}

// The keeper, in a child of the broker: waits for the broker to end (its end of `pipe` closes), then
// kills what is left in the broker's cgroup and removes it. Descriptors: 3 the pipe, 4 cgroup.kill,
// 5 cgroup.events, 6 the cgroup, 7 the cgroup it is in.
[[noreturn]] void keeper_main(const std::array<int, 5>& fds, const char* name) noexcept {
    ::setsid();  // away from the terminal: its signals (Ctrl-C, hang-up) are the worker's, not ours
    ::prctl(PR_SET_NAME, "fdbroker-keeper");  // what ps shows
    // Every signal but SIGKILL and SIGSTOP (which cannot be) held off: nothing but its pipe ends it.
    sigset_t all;
    ::sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    // Out of the way first: a descriptor may already sit where another is to go.
    std::array<int, 5> high{};
    for (std::size_t i = 0; i < high.size(); ++i)
        if ((high[i] = ::fcntl(fds[i], F_DUPFD, 100)) < 0) ::_exit(1);
    for (std::size_t i = 0; i < high.size(); ++i)
        if (::dup2(high[i], 3 + static_cast<int>(i)) < 0) ::_exit(1);
    ::syscall(SYS_close_range, 8, ~0U, 0);
    for (int fd = 0; fd < 3; ++fd)
        ::close(fd);
    if (confine_keeper() != 0) ::_exit(1);
    for (char byte;;) {
        const ssize_t n = ::read(3, &byte, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    write_one(4);
    // SIGKILL makes every process leave at once, unless one is stuck where even SIGKILL waits.
    for (int waited = 0; !empty(5) && waited < 600; ++waited) {
        pollfd p{5, POLLPRI, 0};
        ::poll(&p, 1, 100);
    }
    remove_children(6);
    ::unlinkat(7, name, AT_REMOVEDIR);
    ::_exit(0);
}

// One process's parent and whether it is still alive (not a zombie), from /proc/PID/stat.
bool read_stat(pid_t pid, pid_t& ppid, bool& alive) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    const unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    std::array<char, 512> buf{};
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size() - 1);
    if (n <= 0) return false;
    const std::string_view stat(buf.data(), static_cast<std::size_t>(n));
    const std::size_t close = stat.rfind(')');
    if (close == std::string_view::npos || close + 4 >= stat.size()) return false;
    const char state = stat[close + 2];
    alive = state != 'Z' && state != 'X';
    const std::string_view rest = stat.substr(close + 4);
    return std::from_chars(rest.data(), rest.data() + rest.size(), ppid).ec == std::errc();
}

// Every live descendant of `root` but `spare` and what descends from it.
std::vector<pid_t> descendants(pid_t root, pid_t spare) {
    std::unordered_map<pid_t, std::vector<pid_t>> children;
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    if (!proc) return {};
    while (const dirent* e = ::readdir(proc.get())) {
        pid_t pid = 0;
        if (std::from_chars(e->d_name, e->d_name + std::strlen(e->d_name), pid).ec != std::errc()) continue;
        pid_t ppid = 0;
        bool alive = false;
        if (read_stat(pid, ppid, alive) && alive) children[ppid].push_back(pid);
    }
    std::vector<pid_t> out;
    std::vector<pid_t> pending{root};
    while (!pending.empty()) {
        const pid_t p = pending.back();
        pending.pop_back();
        for (const pid_t c : children[p])
            if (c != spare) {
                out.push_back(c);
                pending.push_back(c);
            }
    }
    return out;
}

// SIGKILL through a pidfd, after checking that the pid still names a descendant: its parent is one of
// `tree` (or the broker). A pid recycled meanwhile by an unrelated process is left alone.
bool kill_if_still_ours(pid_t pid, const std::unordered_set<pid_t>& tree) noexcept {
    const unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    pid_t ppid = 0;
    bool alive = false;
    if (!pidfd || !read_stat(pid, ppid, alive) || !alive || !tree.contains(ppid)) return false;
    return ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0;
}

void reap_children() noexcept {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}

}  // namespace

int compile_keeper_filter(std::vector<sock_filter>& program) noexcept {
    int error = 0;
    const Filter ctx = keeper_filter(error);
    return ctx ? export_program(ctx.get(), program) : error;
}

int kill_descendants(pid_t spare, int rounds) noexcept {
    int killed = 0;
    try {
        for (int round = 0; round < rounds; ++round) {
            const std::vector<pid_t> found = descendants(::getpid(), spare);
            if (found.empty()) break;
            std::unordered_set<pid_t> tree(found.begin(), found.end());
            tree.insert(::getpid());
            for (const pid_t pid : found)
                killed += kill_if_still_ours(pid, tree) ? 1 : 0;
            reap_children();
            // Killed processes take a moment to be gone; a fork that raced the scan shows next round.
            if (round > 0) ::usleep(1000);
        }
    } catch (const std::bad_alloc&) {
    }
    reap_children();
    return killed;
}

std::unique_ptr<Containment> Containment::create(std::string& note) {
    auto c = std::make_unique<Containment>();
    if (c->make_cgroup(note) && !c->start_keeper(note)) {
        // Without a keeper the cgroup would outlive a broker killed outright; the tree will do.
        ::unlinkat(c->base_.get(), c->name_.c_str(), AT_REMOVEDIR);
        c->cgroup_.reset();
        c->kill_.reset();
    }
    return c;
}

bool Containment::make_cgroup(std::string& note) noexcept {
    try {
        const std::string mount = cgroup2_mount();
        const std::string own = own_cgroup();
        if (mount.empty() || own.empty()) {
            note = "no cgroup v2 hierarchy: descendants of the worker are tracked through the process tree";
            return false;
        }
        base_.reset(::open((mount + own).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        name_ = "fdbroker-" + std::to_string(::getpid());
        ::unlinkat(base_.get(), name_.c_str(), AT_REMOVEDIR);  // left by an earlier broker of this pid
        if (!base_ || ::mkdirat(base_.get(), name_.c_str(), 0755) != 0) {
            note = "cannot create a cgroup beneath " + own + " (" + std::strerror(errno) +
                   "): descendants of the worker are tracked through the process tree";
            return false;
        }
        cgroup_.reset(::openat(base_.get(), name_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (cgroup_) kill_.reset(::openat(cgroup_.get(), "cgroup.kill", O_WRONLY | O_CLOEXEC));
        if (!kill_) {
            note =
                "this kernel has no cgroup.kill (Linux 5.14): descendants of the worker are tracked through "
                "the process tree";
            cgroup_.reset();
            ::unlinkat(base_.get(), name_.c_str(), AT_REMOVEDIR);
            return false;
        }
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

bool Containment::start_keeper(std::string& note) noexcept {
    int pipe_fds[2];
    const unique_fd events(::openat(cgroup_.get(), "cgroup.events", O_RDONLY | O_CLOEXEC));
    if (!events || ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        note = std::string("cannot start the keeper: ") + std::strerror(errno);
        return false;
    }
    unique_fd read_end(pipe_fds[0]);
    keeper_pipe_.reset(pipe_fds[1]);
    const std::array<int, 5> fds{read_end.get(), kill_.get(), events.get(), cgroup_.get(), base_.get()};
    const pid_t pid = ::fork();
    if (pid < 0) {
        note = std::string("cannot start the keeper: ") + std::strerror(errno);
        keeper_pipe_.reset();
        return false;
    }
    if (pid == 0) keeper_main(fds, name_.c_str());
    keeper_ = pid;
    return true;
}

Containment::~Containment() {
    bool removed = false;
    if (cgroup_) {
        remove_children(cgroup_.get());
        removed = ::unlinkat(base_.get(), name_.c_str(), AT_REMOVEDIR) == 0;
    }
    if (keeper_ <= 0) return;
    // The keeper sees its pipe close and ends: reaped here rather than left to whoever inherits it.
    // With the broker's cgroup removed (the kernel removes only an empty one, and no process can leave
    // it) nothing is left for it to end: it is killed rather than woken, which spares it running its
    // clean-up before it can exit. Otherwise it does that clean-up; if it is still busy (something
    // would not die), it finishes on its own.
    const unique_fd keeper(static_cast<int>(::syscall(SYS_pidfd_open, keeper_, 0)));
    if (removed && keeper) ::syscall(SYS_pidfd_send_signal, keeper.get(), SIGKILL, nullptr, 0);
    keeper_pipe_.reset();
    pollfd gone{keeper.get(), POLLIN, 0};
    if (keeper && ::poll(&gone, 1, 1000) == 1) ::waitpid(keeper_, nullptr, WNOHANG);
}

unique_fd Containment::cgroup_for(std::string_view name) noexcept {
    if (!cgroup_) return {};
    try {
        const std::string n(name);
        if (::mkdirat(cgroup_.get(), n.c_str(), 0755) != 0) return {};
        return unique_fd(::openat(cgroup_.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    } catch (const std::bad_alloc&) {
        errno = ENOMEM;
        return {};
    }
}

void Containment::end(std::string_view name) noexcept {
    if (!cgroup_) return;
    try {
        const std::string kill = std::string(name) + "/cgroup.kill";
        const unique_fd fd(::openat(cgroup_.get(), kill.c_str(), O_WRONLY | O_CLOEXEC));
        if (fd) write_one(fd.get());
        // Removed once empty: now if the processes are gone already, else by a later end() or end_all().
        remove_children(cgroup_.get());
    } catch (const std::bad_alloc&) {
    }
}

void Containment::end_all() noexcept {
    if (!cgroup_) {
        kill_descendants(keeper_);
        return;
    }
    write_one(kill_.get());
    const unique_fd events(::openat(cgroup_.get(), "cgroup.events", O_RDONLY | O_CLOEXEC));
    // The processes are killed already (a fatal signal is pending on each: none of them runs another
    // instruction); waiting only lets the cgroups be removed now rather than by the keeper.
    for (int waited = 0; events && !empty(events.get()) && waited < 20; ++waited) {
        reap_children();
        pollfd p{events.get(), POLLPRI, 0};
        ::poll(&p, 1, 50);
    }
    reap_children();
    remove_children(cgroup_.get());
}

}  // namespace fdbroker::sandbox
