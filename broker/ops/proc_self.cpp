#include "broker/ops/proc_self.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
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

// Linux follows at most 40 links in one lookup; an fd/N step is one.
constexpr int kMaxFdHops = 40;

bool all_digits(std::string_view s) noexcept {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// "/proc/<n>" for a process id.
std::string_view proc_dir(pid_t pid, char (&buf)[32]) noexcept {
    const int n = std::snprintf(buf, sizeof buf, "/proc/%d", static_cast<int>(pid));
    return {buf, static_cast<std::size_t>(n)};
}

// The symlinks in /dev that every Linux system points into /proc/self/fd (udev, systemd-tmpfiles, a
// container's /dev), with the text they have there.
struct DevAlias {
    std::string_view link;
    std::string_view text;
};
constexpr DevAlias kDevAliases[] = {{"/dev/fd", "/proc/self/fd"},
                                    {"/dev/stdin", "/proc/self/fd/0"},
                                    {"/dev/stdout", "/proc/self/fd/1"},
                                    {"/dev/stderr", "/proc/self/fd/2"}};

// Whether the alias is on this system as it should be, read once: /dev belongs to root, so what the
// link says does not change under a worker.
bool alias_present(std::size_t index) noexcept {
    static const auto present = [] {
        std::array<bool, std::size(kDevAliases)> found{};
        for (std::size_t i = 0; i < found.size(); ++i) {
            char text[32];
            const std::string link(kDevAliases[i].link);
            const ssize_t n = ::readlink(link.c_str(), text, sizeof text);
            found[i] = n > 0 && std::string_view(text, static_cast<std::size_t>(n)) == kDevAliases[i].text;
        }
        return found;
    }();
    return present[index];
}

}  // namespace

std::string_view ProcSelf::alias_text(std::string_view path) noexcept {
    for (std::size_t i = 0; i < std::size(kDevAliases); ++i)
        if (path == kDevAliases[i].link && alias_present(i)) return kDevAliases[i].text;
    return {};
}

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
    // Everything rewritten below begins so; this is the answer for nearly every request.
    if (!path.starts_with("/proc") && !path.starts_with("/dev/")) return false;
    bool changed = rewrite_self(path, out);
    if (changed && out.size() == 0) return true;
    // Each step may land in /proc again (a descriptor of /proc/self/fd itself): as many as the kernel
    // follows links in one lookup.
    policy::PathBuffer step;
    for (int hop = 0; hop <= kMaxFdHops; ++hop) {
        const int through = through_fd(changed ? out.view() : path, step);
        if (through == 0) return changed;
        if (through < 0 || !out.assign(step.view())) break;
        changed = true;
    }
    out.truncate(0);
    return true;
}

bool ProcSelf::rewrite_self(std::string_view path, policy::PathBuffer& out) const noexcept {
    std::string_view rest;
    // /dev/fd/N is /proc/self/fd/N, as the kernel follows the link.
    policy::PathBuffer aliased;
    if (path.starts_with("/dev/std") || path.starts_with("/dev/fd"))
        for (const DevAlias& alias : kDevAliases)
            if (strip(path, alias.link, rest) && !alias_text(alias.link).empty()) {
                if (!aliased.assign(alias.text) || !aliased.append(rest)) {
                    out.truncate(0);
                    return true;
                }
                path = aliased.view();
                break;
            }
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

int ProcSelf::through_fd(std::string_view path, policy::PathBuffer& out) const noexcept {
    if (!owns(path)) return 0;
    // The first "/fd/N/" whose fd directory is the caller's: /proc/<pid>/fd or .../task/<tid>/fd.
    for (std::size_t at = path.find("/fd/"); at != std::string_view::npos; at = path.find("/fd/", at + 1)) {
        if (!is_fd_directory(path.substr(0, at + 3))) continue;
        const std::size_t end = path.find('/', at + 4);
        if (end == std::string_view::npos || !all_digits(path.substr(at + 4, end - at - 4))) return 0;
        policy::PathBuffer link;
        char target[policy::PathBuffer::kCapacity];
        if (!link.assign(path.substr(0, end))) return -1;
        const ssize_t n = ::readlink(link.c_str(), target, sizeof target);
        if (n <= 0 || static_cast<std::size_t>(n) >= sizeof target) return -1;
        const std::string_view dir(target, static_cast<std::size_t>(n));
        // A pipe, a socket, an anonymous inode or a removed directory: no path to go on from.
        if (dir.front() != '/' || dir.ends_with(" (deleted)")) return -1;
        const bool fits =
            out.assign(dir) && (dir == "/" || out.append("/")) && out.append(path.substr(end + 1));
        return fits ? 1 : -1;
    }
    return 0;
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
    return all_digits(middle.substr(6));
}

bool through_magic_link(std::string_view path, bool follows_last) noexcept {
    std::string_view rest;
    if (!strip(path, "/proc", rest)) return false;
    // The components after /proc, one at a time; `last` says whether the one just taken ends the path.
    bool last = false;
    auto next = [&rest, &last]() {
        if (rest.empty()) return std::string_view();
        rest.remove_prefix(1);
        const std::size_t end = std::min(rest.find('/'), rest.size());
        const std::string_view part = rest.substr(0, end);
        rest.remove_prefix(end);
        last = rest.empty();
        return part;
    };
    // /proc/<pid>, /proc/self, /proc/thread-self, then /task/<tid> for a thread's own entries.
    const std::string_view process = next();
    if (!(all_digits(process) || process == "self" || process == "thread-self")) return false;
    std::string_view entry = next();
    if (entry == "task" && process != "thread-self" && !last) {
        if (!all_digits(next())) return false;
        entry = next();
    }
    if (entry == "fd" || entry == "ns" || entry == "map_files") {
        if (last || next().empty()) return false;
    } else if (entry != "cwd" && entry != "root" && entry != "exe") {
        return false;
    }
    return !last || follows_last;
}

}  // namespace fdbroker::broker
