#include "broker/ops/proc_self.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

namespace {

// The rest of `path` after `prefix` when `prefix` is a whole leading part of it ("" or "/..."), else
// nothing.
bool strip(std::string_view path, std::string_view prefix, std::string_view& rest) noexcept {
    if (!path.starts_with(prefix)) return false;
    rest = path.substr(prefix.size());
    return rest.empty() || rest.front() == '/';
}

// "/proc/<n>" for a process id.
std::string_view proc_dir(pid_t pid, char (&buf)[32]) noexcept {
    const int n = std::snprintf(buf, sizeof buf, "/proc/%d", static_cast<int>(pid));
    return {buf, static_cast<std::size_t>(n)};
}

}  // namespace

pid_t ProcSelf::tgid() const noexcept {
    if (tgid_ != 0 || tid_ <= 0) return tgid_;
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(tid_));
    const unique_fd status(::open(path, O_RDONLY | O_CLOEXEC));
    char text[1024];
    const ssize_t n = status ? ::read(status.get(), text, sizeof text - 1) : -1;
    if (n <= 0) return 0;
    text[n] = '\0';
    const char* line = std::strstr(text, "\nTgid:");
    if (line == nullptr) return 0;
    line += 6;
    while (*line == '\t' || *line == ' ')
        ++line;
    int value = 0;
    if (std::from_chars(line, text + n, value).ec == std::errc{}) tgid_ = value;
    return tgid_;
}

bool ProcSelf::rewrite(std::string_view path, policy::PathBuffer& out) const noexcept {
    std::string_view rest;
    const bool self = strip(path, "/proc/self", rest);
    const bool thread = !self && strip(path, "/proc/thread-self", rest);
    if (!self && !thread) return false;
    out.truncate(0);
    const pid_t pid = tgid();
    if (pid <= 0) return true;
    char buf[32];
    char task[48];
    const std::string_view base = proc_dir(pid, buf);
    std::string_view head = base;
    if (thread) {
        const int n = std::snprintf(task, sizeof task, "%.*s/task/%d", static_cast<int>(base.size()),
                                    base.data(), static_cast<int>(tid_));
        head = {task, static_cast<std::size_t>(n)};
    }
    if (!out.assign(head) || !out.append(rest)) out.truncate(0);
    return true;
}

bool ProcSelf::owns(std::string_view path) const noexcept {
    if (!path.starts_with("/proc/") || tid_ <= 0) return false;
    char buf[32];
    std::string_view rest;
    // /proc/<tid> of a thread is its process's entry too, seen from that thread.
    return (tgid() > 0 && strip(path, proc_dir(tgid(), buf), rest)) || strip(path, proc_dir(tid_, buf), rest);
}

bool ProcSelf::is_fd_directory(std::string_view dir) const noexcept {
    if (!owns(dir) || !dir.ends_with("/fd")) return false;
    char buf[32];
    std::string_view base = proc_dir(tgid(), buf);
    if (!dir.starts_with(base) || (dir.size() > base.size() && dir[base.size()] != '/'))
        base = proc_dir(tid_, buf);
    const std::string_view middle = dir.substr(base.size(), dir.size() - base.size() - 3);
    // "/proc/<pid>/fd" or "/proc/<pid>/task/<tid>/fd"
    if (middle.empty()) return true;
    if (!middle.starts_with("/task/")) return false;
    const std::string_view tid = middle.substr(6);
    return !tid.empty() && tid.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace fdbroker::broker
