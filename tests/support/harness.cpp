#include "support/harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace fdbroker::test {

namespace {

constexpr int kTimeoutMs = 120'000;

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> out;
    out.reserve(argv.size() + 1);
    for (const auto& a : argv)
        out.push_back(const_cast<char*>(a.c_str()));
    out.push_back(nullptr);
    return out;
}

pid_t spawn(const std::vector<std::string>& argv, int& in, int& out, int& err) {
    int pin[2], pout[2], perr[2];
    if (::pipe2(pin, O_CLOEXEC) || ::pipe2(pout, O_CLOEXEC) || ::pipe2(perr, O_CLOEXEC))
        throw std::runtime_error("pipe failed");
    std::vector<char*> args = c_argv(argv);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pin[0], 0);
        ::dup2(pout[1], 1);
        ::dup2(perr[1], 2);
        ::execv(args[0], args.data());
        std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(pin[0]);
    ::close(pout[1]);
    ::close(perr[1]);
    in = pin[1];
    out = pout[0];
    err = perr[0];
    return pid;
}

int decode_status(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Reads both pipes to EOF (or the deadline, which kills pid) and reaps pid.
Outcome collect(pid_t pid, int out, int err, std::string already = {}) {
    Outcome o;
    o.out = std::move(already);
    pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    int open_count = 2;
    int waited = 0;
    while (open_count > 0) {
        const int n = ::poll(fds, 2, 1000);
        if (n == 0 && (waited += 1000) >= kTimeoutMs) {
            ::kill(pid, SIGKILL);
            o.err += "\n[test harness: killed after timeout]\n";
            break;
        }
        for (auto& p : fds) {
            if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP))) continue;
            char buf[8192];
            const ssize_t r = ::read(p.fd, buf, sizeof buf);
            if (r <= 0) {
                ::close(p.fd);
                p.fd = -1;
                --open_count;
                continue;
            }
            (p.fd == out ? o.out : o.err).append(buf, static_cast<std::size_t>(r));
        }
    }
    for (auto& p : fds)
        if (p.fd >= 0) ::close(p.fd);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    o.status = decode_status(status);
    return o;
}

// The first entry of an open directory other than "." and "..": "" when it is empty (or unreadable).
std::string first_entry(int dirfd) {
    DIR* d = ::fdopendir(::fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
    if (d == nullptr) return {};
    ::rewinddir(d);
    std::string name;
    while (const dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
            name = e->d_name;
            break;
        }
    }
    ::closedir(d);
    return name;
}

// Removes `name` in `dirfd` and everything beneath it, entering each directory by descriptor, so that
// a tree deeper than PATH_MAX goes too (std::filesystem::remove_all names every entry by its path).
void remove_beneath(int dirfd, const std::string& name) {
    std::vector<int> dirs;  // the directories entered, innermost last
    std::vector<std::string> names{name};
    if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno != EISDIR) return;
    dirs.push_back(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    while (!dirs.empty() && dirs.back() >= 0) {
        const std::string child = first_entry(dirs.back());
        if (child.empty()) {
            ::close(dirs.back());
            dirs.pop_back();
            if (::unlinkat(dirs.empty() ? dirfd : dirs.back(), names.back().c_str(), AT_REMOVEDIR) != 0)
                break;
            names.pop_back();
        } else if (::unlinkat(dirs.back(), child.c_str(), 0) != 0) {
            if (errno != EISDIR) break;
            dirs.push_back(
                ::openat(dirs.back(), child.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            names.push_back(child);
        }
    }
    for (const int fd : dirs)
        if (fd >= 0) ::close(fd);
}

}  // namespace

TempDir::TempDir() {
    char tmpl[] = "/tmp/fdbroker-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    ::chmod(tmpl, 0755);
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) remove_beneath(AT_FDCWD, path_);
}

std::string make_deep_tree(const std::string& base, int levels, std::string_view content) {
    int at = ::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    std::string path = base;
    for (int i = 0; i < levels && at >= 0; ++i) {
        const std::string name(250, static_cast<char>('a' + i % 26));
        ::mkdirat(at, name.c_str(), 0755);
        const int next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        ::close(at);
        at = next;
        path += "/" + name;
    }
    if (at < 0) throw std::runtime_error("cannot make a deep tree in " + base);
    const int file = ::openat(at, "f", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::close(at);
    if (file < 0 || ::write(file, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        throw std::runtime_error("cannot write f in a deep tree");
    ::close(file);
    return path;
}

void write_file(const std::string& path, std::string_view content, mode_t mode) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    f.close();
    ::chmod(path.c_str(), mode);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

void give_to_nobody(const std::string& path) {
    constexpr uid_t nobody = 65534;
    static_cast<void>(::lchown(path.c_str(), nobody, nobody));
    std::error_code ec;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path, ec))
        static_cast<void>(::lchown(entry.path().c_str(), nobody, nobody));
}

bool exists(const std::string& path) {
    struct ::stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> Outcome::lines() const {
    std::vector<std::string> result;
    std::istringstream s(out);
    for (std::string line; std::getline(s, line);)
        result.push_back(line);
    return result;
}

std::vector<std::string> worker_argv(const Script& script) {
    std::vector<std::string> argv{worker_bin()};
    for (std::size_t i = 0; i < script.size(); ++i) {
        if (i) argv.emplace_back(",");
        argv.insert(argv.end(), script[i].begin(), script[i].end());
    }
    return argv;
}

Outcome run_command(const std::vector<std::string>& argv, std::string_view input) {
    int in, out, err;
    const pid_t pid = spawn(argv, in, out, err);
    if (!input.empty()) [[maybe_unused]]
        auto n = ::write(in, input.data(), input.size());
    ::close(in);
    return collect(pid, out, err);
}

Outcome run_broker(const TempDir& dir, const std::string& policy, const std::vector<std::string>& program,
                   const std::vector<std::string>& extra) {
    const std::string policy_path = dir / "policy.toml";
    write_file(policy_path, policy);
    std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", policy_path};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.emplace_back("--");
    argv.insert(argv.end(), program.begin(), program.end());
    return run_command(argv);
}

Outcome run_worker(const TempDir& dir, const std::string& policy, const Script& script,
                   const std::vector<std::string>& extra) {
    return run_broker(dir, policy, worker_argv(script), extra);
}

Process::Process(const std::vector<std::string>& argv) {
    pid_ = spawn(argv, in_, out_, err_);
}

Process::~Process() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        wait();
    }
}

std::string Process::read_line() {
    for (;;) {
        const std::size_t nl = pending_.find('\n');
        if (nl != std::string::npos) {
            std::string line = pending_.substr(0, nl);
            pending_.erase(0, nl + 1);
            return line;
        }
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, kTimeoutMs) <= 0) return {};
        char buf[4096];
        const ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) return std::exchange(pending_, {});
        pending_.append(buf, static_cast<std::size_t>(n));
    }
}

bool Process::wait_for_stderr(std::string_view text) {
    while (err_seen_.find(text) == std::string::npos) {
        pollfd p{err_, POLLIN, 0};
        if (::poll(&p, 1, kTimeoutMs) <= 0) return false;
        char buf[4096];
        const ssize_t n = ::read(err_, buf, sizeof buf);
        if (n <= 0) return false;
        err_seen_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

void Process::write(std::string_view text) {
    [[maybe_unused]] auto n = ::write(in_, text.data(), text.size());
}

Outcome Process::wait() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
    Outcome o = collect(pid_, out_, err_, std::exchange(pending_, {}));
    o.err.insert(0, std::exchange(err_seen_, {}));
    pid_ = -1;
    return o;
}

namespace {

// The staged directory named by the fixture's file, or "" when there is none (or it is gone).
std::string stage_dir() {
    std::string dir;
    std::ifstream(STAGE_FILE) >> dir;
    return !dir.empty() && exists(dir + "/.fdbroker-stage") ? dir : std::string();
}

std::string stage_path(const std::string& stage, const std::string& path) {
    // The build tree usually lies inside the source tree: the longer prefix first.
    for (const auto& [tree, name] : {std::pair{std::string(BUILD_TREE), "build"}, {SOURCE_TREE, "source"}})
        if (path.starts_with(tree + "/")) return stage + "/" + name + path.substr(tree.size());
    return path;
}

}  // namespace

const std::string& staged(const std::string& path) {
    static const std::string stage = stage_dir();
    static std::mutex mutex;
    static std::map<std::string, std::string> paths;  // nodes never move: references stay valid
    const std::lock_guard lock(mutex);
    auto [it, added] = paths.try_emplace(path);
    if (added) it->second = stage.empty() ? path : stage_path(stage, path);
    return it->second;
}

const char* fdbroker_bin() {
    return FDBROKER_BIN;
}
const char* worker_bin() {
    return staged(WORKER_BIN).c_str();
}
const char* shared_library_dir() {
    return staged(LIBFDBROKER_DIR).c_str();
}

const char* c_worker_bin() {
    return staged(C_WORKER_BIN).c_str();
}
const char* attach_at_once_bin() {
    return staged(ATTACH_AT_ONCE_BIN).c_str();
}
bool is_root() {
    return ::geteuid() == 0;
}

int count_open_fds() {
    return count_open_fds(::getpid());
}

int count_open_fds(pid_t pid) {
    int n = 0;
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (d == nullptr) return -1;
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

std::size_t threads_of(pid_t pid) {
    std::size_t n = 0;
    if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
        while (const dirent* e = ::readdir(d))
            n += e->d_name[0] != '.';
        ::closedir(d);
    }
    return n;
}

bool wait_for_more_threads(pid_t pid, std::size_t threads) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (threads_of(pid) > threads) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

std::string proc_status_field(pid_t pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with(field + ":")) {
            const std::size_t v = line.find_first_not_of(" \t", field.size() + 1);
            return v == std::string::npos ? "" : line.substr(v);
        }
    return {};
}

bool contains(std::string_view text, std::string_view what) {
    return text.find(what) != std::string_view::npos;
}

void swap_with_symlink(const std::string& path, const std::string& target, const std::atomic<bool>& stop) {
    const std::string real = path + ".real", link = path + ".link";
    while (!stop) {
        ::symlink(target.c_str(), link.c_str());
        ::rename(path.c_str(), real.c_str());
        ::rename(link.c_str(), path.c_str());  // path is now the symlink
        ::rename(path.c_str(), link.c_str());
        ::rename(real.c_str(), path.c_str());  // and the real thing again
        ::unlink(link.c_str());
    }
}

}  // namespace fdbroker::test
