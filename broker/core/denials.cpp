#include "broker/core/denials.hpp"

#include <fcntl.h>

#include <new>

#include "broker/core/audit.hpp"
#include "broker/core/log.hpp"

namespace fdbroker::broker {

namespace {

// What an open asked for, in the words of the policy's rule kinds.
std::string_view open_need(std::uint32_t flags) noexcept {
    if (flags & O_PATH) return "look up";
    if (flags & O_CREAT) return "create";
    switch (flags & O_ACCMODE) {
        case O_WRONLY:
            return "write";
        case O_RDWR:
            return "read-write";
        default:
            return (flags & (O_TRUNC | O_APPEND)) ? "write" : "read";
    }
}

// The verb of the line: for an open the access it asked for, otherwise the operation itself.
std::string_view verb(const AuditRecord& r) noexcept {
    return r.op == "open" ? open_need(r.flags) : r.op;
}

// The rule kind an operation needs (docs/policy.md, Decisions), for "no rule grants ...".
std::string_view needed_kind(const AuditRecord& r) noexcept {
    const std::string_view op = r.op;
    if (op == "open") return (r.flags & O_PATH) ? "anything" : open_need(r.flags);
    if (op == "mkdir" || op == "unlink" || op == "rmdir" || op == "rename" || op == "symlink" ||
        op == "link" || op == "mknod")
        return "create";
    if (op == "chmod" || op == "chown" || op == "truncate" || op == "utimens" || op == "setxattr" ||
        op == "removexattr")
        return "write";
    if (op == "getxattr" || op == "listxattr") return "read";
    return "anything";  // stat, access, readlink, lookup: any rule at all would do
}

bool is_socket_op(std::string_view op) noexcept {
    return op == "connect" || op == "bind" || op == "listen";
}

// A refusal by the worker's confinement rather than by a path rule (exec = false): the same whatever
// the path, so one line says it however many paths execvp tries.
bool is_exec(std::string_view op) noexcept {
    return op == "exec" || op == "execve" || op == "execveat";
}

std::string reason(const AuditRecord& r, std::string_view policy_file) {
    if (is_exec(r.op)) return "the profile has exec = false";
    if (r.rule != nullptr) {
        std::string at = "rule at " + std::string(policy_file) + ":" + std::to_string(r.rule->line) + ":" +
                         std::to_string(r.rule->column) + " (" +
                         std::string(policy::kind_name(r.rule->kind)) + " \"" +
                         std::string(r.rule->pattern.text()) + "\")";
        return at + (r.rule->kind == policy::RuleKind::deny ? " denies it" : " decides it");
    }
    if (r.syscall.starts_with("ioctl "))
        return "no worker may push input into, take or redirect a terminal (docs/security-model.md)";
    if (is_socket_op(r.op))
        return "no " + std::string(r.op == "connect" ? "connect" : "listen") + " rule matches";
    if (r.op.empty() || r.path.empty()) return "the profile does not allow it";
    return "no rule grants " + std::string(needed_kind(r));
}

}  // namespace

bool is_loader_path(std::string_view path) noexcept {
    if (path.starts_with("/etc/ld.so.")) return true;
    const std::size_t slash = path.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    return name.find(".so.") != std::string_view::npos || name.ends_with(".so");
}

std::string Denials::describe(const AuditRecord& r, std::string_view policy_file) {
    std::string line = "denied ";
    line += verb(r);
    if (!r.syscall.empty()) {  // a system call the filter sent to the broker: which one
        line += ' ';
        line += r.syscall;
    }
    if (!r.path.empty() && !is_exec(r.op)) {
        line += ' ';
        line += r.path;
        if (!r.path2.empty() && r.op != "symlink") {
            line += r.op == "link" ? " from " : " to ";
            line += r.path2;
        }
    }
    line += " (profile ";
    line += r.profile;
    line += "): ";
    line += reason(r, policy_file);
    return line;
}

std::string Denials::key(const AuditRecord& r) {
    std::string k(r.profile);
    k += '\0';
    k += verb(r);
    k += r.syscall;
    if (is_exec(r.op)) return k;
    k += '\0';
    k += r.path;
    k += '\0';
    k += r.path2;
    k += '\0';
    k += std::to_string(reinterpret_cast<std::uintptr_t>(r.rule));
    return k;
}

void Denials::note(const AuditRecord& r, std::string_view policy_file) noexcept {
    ++decisions_;
    if (r.allowed) return;
    ++denied_;
    try {
        if (first_.empty()) first_ = describe(r, policy_file);
        if (loader_path_.empty() && !is_socket_op(r.op) && is_loader_path(r.path)) loader_path_ = r.path;
        if (!verbose_) return;
        std::string k = key(r);
        if (seen_.contains(k)) return;
        if (seen_.size() < kRemembered) seen_.insert(std::move(k));
        print(describe(r, policy_file));
    } catch (const std::bad_alloc&) {
        // A line not printed: the decision itself is unaffected, and the audit stream still has it.
    }
}

void Denials::print(const std::string& line) noexcept {
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= kWindow) {
        flush(/*force=*/true);
        window_start_ = now;
        written_ = 0;
    }
    if (written_ >= kBurst) {
        ++left_out_;
        return;
    }
    ++written_;
    log("%s", line.c_str());
}

void Denials::flush(bool force) noexcept {
    if (left_out_ == 0 || (!force && std::chrono::steady_clock::now() - window_start_ < kWindow)) return;
    log("%llu more distinct denials were not shown (at most %d lines per %lld s)",
        static_cast<unsigned long long>(left_out_), kBurst, static_cast<long long>(kWindow.count()));
    left_out_ = 0;
}

}  // namespace fdbroker::broker
