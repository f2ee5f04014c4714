#include "broker/learn/observations.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include "broker/core/audit.hpp"
#include "broker/ops/file_ops.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker::learn {

namespace {

using policy::need_any;
using policy::need_create;
using policy::need_read;
using policy::need_write;

// "read", "read+write+create", "lookup": what a request needed, for its example.
std::string describe_needs(std::uint8_t needs) {
    std::string text;
    for (const auto& [bit, name] :
         {std::pair{need_read, "read"}, {need_write, "write"}, {need_create, "create"}}) {
        if ((needs & bit) == 0) continue;
        if (!text.empty()) text += '+';
        text += name;
    }
    return text.empty() ? "lookup" : text;
}

// Whether a rule could be written for `path`: an absolute path that is not the caller's own /proc
// entry (always granted; what its fd links lead to is reached, and recorded, on its own).
bool learnable(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/') return false;
    for (const std::string_view own : {"/proc/self", "/proc/thread-self"})
        if (path == own || (path.starts_with(own) && path[own.size()] == '/')) return false;
    return true;
}

void count(Use& use, std::string_view example) {
    if (use.calls++ == 0) use.example = example;
}

}  // namespace

std::uint8_t needs_of(std::string_view op, std::uint32_t flags, bool second) noexcept {
    if (op == "open") return FileOps::open_needs(flags);
    if (op == "access") {
        std::uint8_t needs = 0;
        if (flags & R_OK) needs |= need_read;
        if (flags & W_OK) needs |= need_write;
        return needs != 0 ? needs : static_cast<std::uint8_t>(need_any);
    }
    if (op == "stat" || op == "readlink" || op == "lookup") return need_any;
    if (op == "getxattr" || op == "listxattr") return need_read;
    if (op == "chmod" || op == "chown" || op == "truncate" || op == "utimens" || op == "setxattr" ||
        op == "removexattr")
        return need_write;
    // A hard link's old name is only looked up; every other path operation creates or removes names.
    if (op == "link" && second) return need_any;
    if (op == "mkdir" || op == "unlink" || op == "rmdir" || op == "rename" || op == "symlink" ||
        op == "mknod" || op == "link")
        return need_create;
    return 0;
}

void Observations::path(std::string_view path, std::uint8_t needs, std::string_view example) {
    auto it = paths.find(path);
    if (it == paths.end()) it = paths.emplace(std::string(path), PathUse{}).first;
    PathUse& use = it->second;
    use.needs |= needs;
    if (needs & need_read) count(use.read, example);
    if (needs & need_write) count(use.write, example);
    if (needs & need_create) count(use.create, example);
    if ((needs & ~need_any) == 0) count(use.lookup, example);
    count(use.all, example);
}

bool Observations::empty() const noexcept {
    return paths.empty() && connects.empty() && listens.empty() && syscalls.empty() && exec.calls == 0;
}

void Collector::refused(const AuditRecord& record, int result) noexcept {
    try {
        const std::lock_guard guard(lock_);
        add(record, result);
    } catch (const std::bad_alloc&) {
        // One observation fewer: the learned policy may miss a rule, which its run then shows.
    }
}

void Collector::reached(std::string_view op, std::string_view path, std::uint8_t needs) noexcept {
    if (!learnable(path)) return;
    try {
        const std::lock_guard guard(lock_);
        seen_.path(path, needs,
                   std::string(op) + " reaching " + std::string(path) + " (" + describe_needs(needs) + ")");
    } catch (const std::bad_alloc&) {
    }
}

void Collector::add(const AuditRecord& record, int result) {
    const std::string op(record.op);
    if (op == "syscall") {
        if (record.syscall == "execve")
            count(seen_.exec, "execve after the program started");
        else
            count(seen_.syscalls[std::string(record.syscall)], std::string(record.syscall));
        return;
    }
    if (op == "connect") return count(seen_.connects[std::string(record.path)], "connect");
    if (op == "bind" || op == "listen") return count(seen_.listens[std::string(record.path)], op);
    // Refused to the worker's user too: a rule would grant what it cannot do itself (and, in library
    // mode, what the broker's privileges can), so nothing is learned.
    if (result == EACCES || result == EPERM) return;
    std::uint8_t needs = needs_of(op, record.flags);
    // EEXIST comes before the right to create (the broker answers it wherever the path is visible).
    if (result == EEXIST && (op == "mkdir" || op == "symlink" || op == "mknod" || op == "link"))
        needs = need_any;
    if (needs == 0 || !learnable(record.path)) return;
    seen_.path(record.path, needs, op + " " + std::string(record.path) + " (" + describe_needs(needs) + ")");
    // A symlink's text is no path it touches; a rename's destination and a link's old name are.
    if (op == "symlink" || !learnable(record.path2)) return;
    const std::uint8_t second = needs_of(op, record.flags, /*second=*/true);
    seen_.path(record.path2, second,
               op + " " + std::string(record.path2) + " (" + describe_needs(second) + ")");
}

}  // namespace fdbroker::broker::learn
