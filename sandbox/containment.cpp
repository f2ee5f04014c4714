#include "sandbox/containment.hpp"

#include <cap-ng.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
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

bool is_dot(const char* name) noexcept {
    return std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0;
}

// Removes every cgroup directly beneath `dir` that can be removed (the empty ones). Allocates nothing:
// the keeper runs it in memory it shares with a broker that may have died anywhere, even inside malloc.
void remove_children(int dir) noexcept {
    const unique_fd listing(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!listing) return;
    std::array<char, 4096> buf;
    // A directory removed while it is listed may hide the entries after it: list again until a pass
    // removes nothing (each pass that does removes one of finitely many).
    for (bool removed = true; removed;) {
        removed = false;
        if (::lseek(listing.get(), 0, SEEK_SET) != 0) return;
        for (ssize_t n; (n = ::getdents64(listing.get(), buf.data(), buf.size())) > 0;)
            for (ssize_t at = 0; at < n;) {
                const char* record = buf.data() + at;
                unsigned short length = 0;
                unsigned char type = 0;
                std::memcpy(&length, record + offsetof(dirent64, d_reclen), sizeof length);
                std::memcpy(&type, record + offsetof(dirent64, d_type), sizeof type);
                const char* name = record + offsetof(dirent64, d_name);
                if (length == 0) return;  // never from the kernel; a loop if it were
                at += length;
                if (type == DT_DIR && !is_dot(name) && ::unlinkat(dir, name, AT_REMOVEDIR) == 0)
                    removed = true;
            }
    }
}

// The keeper's own filter allows what waiting on a pipe, writing cgroup.kill, watching cgroup.events
// and removing directories takes; anything else kills it.
constexpr const char* kKeeperCalls[] = {"read",   "write", "pread64",    "poll",         "ppoll",
                                        "openat", "fstat", "newfstatat", "getdents64",   "unlinkat",
                                        "close",  "exit",  "exit_group", "rt_sigreturn", "restart_syscall",
                                        "brk",    "mmap",  "munmap",     "fcntl",        "lseek"};

FilterContext keeper_filter(int& error) noexcept {
    FilterContext ctx = new_filter(SCMP_ACT_KILL_PROCESS);
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
    // is enough: the bounding set limits only what an exec could gain. libcap-ng keeps its state per
    // thread, and the keeper runs on the broker's thread's: it names the process it is to change.
    capng_setpid(::getpid());
    capng_clear(CAPNG_SELECT_CAPS);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0 && ::geteuid() == 0) return EPERM;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    // Compiled at build time where it can be (prebuilt_filters.hpp): the keeper then allocates nothing.
    unique_fd none;
    if (const std::span<const sock_filter> prebuilt = prebuilt_keeper_filter(); !prebuilt.empty())
        return load_program(prebuilt, /*notify=*/false, 0, none);
    int error = 0;
    const FilterContext ctx = keeper_filter(error);
    return ctx ? -seccomp_load(ctx.get()) : error;
}

// What the keeper starts from. It is copied onto the keeper's own stack before the broker goes on.
struct KeeperStart {
    std::array<int, 5> fds;     // the pipe, cgroup.kill, cgroup.events, the cgroup, the cgroup it is in
    std::array<char, 64> name;  // the cgroup's name, beneath the last
    int ready;                  // written once the keeper is confined
};

// Places the keeper's descriptors: 3 the pipe, 4 cgroup.kill, 5 cgroup.events, 6 the cgroup, 7 the
// cgroup it is in, 8 the ready pipe; closes every other one.
bool place_keeper_fds(const KeeperStart& start) noexcept {
    // Out of the way first: a descriptor may already sit where another is to go.
    std::array<int, 6> high{};
    for (std::size_t i = 0; i < high.size(); ++i)
        if ((high[i] = ::fcntl(i < start.fds.size() ? start.fds[i] : start.ready, F_DUPFD, 100)) < 0)
            return false;
    for (std::size_t i = 0; i < high.size(); ++i)
        if (::dup2(high[i], 3 + static_cast<int>(i)) < 0) return false;
    ::syscall(SYS_close_range, 9, ~0U, 0);
    for (int fd = 0; fd < 3; ++fd)
        ::close(fd);
    return true;
}

// The keeper: waits for the broker to end (its end of the pipe closes), then kills what is left in the
// broker's cgroup and removes it. It shares the broker's memory (Containment::clone_keeper), so once
// the broker goes on it allocates nothing and calls nothing that could wait on a lock the broker held
// when it died.
[[noreturn]] void keeper_main(const KeeperStart& given) noexcept {
    const KeeperStart start = given;
    ::setsid();  // away from the terminal: its signals (Ctrl-C, hang-up) are the worker's, not ours
    ::prctl(PR_SET_NAME, "fdbroker-keeper");  // what ps shows
    // Every signal but SIGKILL and SIGSTOP (which cannot be) held off: nothing but its pipe ends it.
    sigset_t all;
    ::sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    if (!place_keeper_fds(start) || confine_keeper() != 0) ::_exit(1);
    if (!write_one(8)) ::_exit(1);
    ::close(8);
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
    ::unlinkat(7, start.name.data(), AT_REMOVEDIR);
    ::_exit(0);
}

int keeper_entry(void* start) {
    keeper_main(*static_cast<const KeeperStart*>(start));
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

// Where the broker's cgroup goes: beneath its own cgroup, where the keeper (the broker's user, without
// capabilities) can remove it again after a broker killed outright. A hierarchy's root is read-only
// even to its owner (mode 0555), and a broker whose own cgroup is the root (as in some containers)
// would leave an empty cgroup behind each time: there the broker's cgroups go into one shared
// directory, "fdbroker", which stays.
unique_fd removable_base(const std::string& own) {
    unique_fd base(::open(own.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct ::stat st {};
    if (!base || ::fstat(base.get(), &st) != 0) return base;
    if (st.st_uid == ::geteuid() && (st.st_mode & S_IWUSR) && (st.st_mode & S_IXUSR)) return base;
    if (::mkdirat(base.get(), "fdbroker", 0755) != 0 && errno != EEXIST) return base;
    unique_fd shared(::openat(base.get(), "fdbroker", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    // Only a directory the broker's user owns will do (any other could be anyone's).
    if (!shared || ::fstat(shared.get(), &st) != 0 || st.st_uid != ::geteuid()) return base;
    return shared;
}

}  // namespace

int compile_keeper_filter(std::vector<sock_filter>& program) noexcept {
    int error = 0;
    const FilterContext ctx = keeper_filter(error);
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
        base_ = removable_base(mount + own);
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

// Starts the keeper sharing the broker's memory (CLONE_VM) on a stack of its own: no copy of the
// broker's page tables to make, no copy-on-write faults in either afterwards, and no address space to
// tear down when it ends; forking cost the broker's start-up a few milliseconds. The broker waits until
// the keeper is confined, so the two never run the broker's code at once on one thread's state (errno,
// libcap-ng's). A sanitizer's runtime keeps per-thread state that cannot be shared so: forked there.
pid_t Containment::clone_keeper(void* start) noexcept {
#ifdef FDBROKER_SANITIZED
    const pid_t pid = ::fork();
    if (pid == 0) keeper_entry(start);
    return pid;
#else
    void* stack =
        ::mmap(nullptr, kKeeperStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    // A guard page below: an overflow faults instead of writing over the broker's memory.
    if (::mprotect(stack, kGuard, PROT_NONE) != 0) {
        ::munmap(stack, kKeeperStack);
        return -1;
    }
    const pid_t pid =
        ::clone(keeper_entry, static_cast<char*>(stack) + kKeeperStack, CLONE_VM | SIGCHLD, start);
    if (pid < 0)
        ::munmap(stack, kKeeperStack);
    else
        keeper_stack_ = stack;
    return pid;
#endif
}

bool Containment::start_keeper(std::string& note) noexcept {
    int pipe_fds[2];
    int ready_fds[2];
    const unique_fd events(::openat(cgroup_.get(), "cgroup.events", O_RDONLY | O_CLOEXEC));
    if (!events || ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        note = std::string("cannot start the keeper: ") + std::strerror(errno);
        return false;
    }
    unique_fd read_end(pipe_fds[0]);
    keeper_pipe_.reset(pipe_fds[1]);
    if (::pipe2(ready_fds, O_CLOEXEC) != 0) {
        note = std::string("cannot start the keeper: ") + std::strerror(errno);
        keeper_pipe_.reset();
        return false;
    }
    const unique_fd ready_read(ready_fds[0]);
    unique_fd ready_write(ready_fds[1]);
    KeeperStart start{
        {read_end.get(), kill_.get(), events.get(), cgroup_.get(), base_.get()}, {}, ready_write.get()};
    name_.copy(start.name.data(), start.name.size() - 1);
    keeper_ = clone_keeper(&start);
    ready_write.reset();
    char byte = 0;
    ssize_t n = -1;
    while (keeper_ > 0 && (n = ::read(ready_read.get(), &byte, 1)) < 0 && errno == EINTR) {
    }
    if (n == 1) return true;
    note = std::string("cannot start the keeper: ") +
           (keeper_ < 0 ? std::strerror(errno) : "it could not confine itself");
    if (keeper_ > 0) ::waitpid(keeper_, nullptr, 0);
    release_keeper_stack();
    keeper_ = -1;
    keeper_pipe_.reset();
    return false;
}

void Containment::release_keeper_stack() noexcept {
    if (keeper_stack_ != nullptr) ::munmap(keeper_stack_, kKeeperStack);
    keeper_stack_ = nullptr;
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
    // Its stack is unmapped only once it is reaped; one still busy keeps it until it is done.
    if (keeper && ::poll(&gone, 1, 1000) == 1 && ::waitpid(keeper_, nullptr, WNOHANG) == keeper_)
        release_keeper_stack();
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
