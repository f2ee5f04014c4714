// The audit stream: one JSON object per decision, written in batches at the end of each loop turn.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "broker/core/denials.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

struct AuditRecord {
    pid_t pid = 0;
    uid_t uid = 0;
    std::string_view profile;
    std::string_view op;
    std::string_view path;
    std::string_view path2;   // rename destination, else empty
    std::uint32_t flags = 0;  // open flags or access mode, 0 when the op has none
    std::uint8_t needs = 0;   // the permission asked (policy::Need bits), 0 for sockets and syscalls
    bool allowed = false;
    const policy::Rule* rule = nullptr;                 // the deciding rule; nullptr for the default deny
    const policy::AddressRule* address_rule = nullptr;  // connect, listen: the granting socket rule
    int error = 0;                                      // errno the worker saw, 0 on success
    // op "syscall": a system call the worker's filter refused (its name), and whether the process
    // that made it was killed for it.
    std::string_view syscall{};
    bool killed = false;
    // Complain mode (`fdbroker learn`): the profile refused this, and it was performed anyway with the
    // worker's own identity; `allowed`, `rule` and `error` are then what the program got.
    bool complained = false;
};

class Audit {
  public:
    Audit() = default;  // disabled: record() writes nothing
    // "-" is `dash` (standard output unless the caller says otherwise: `run` shares standard output
    // with its program); anything else is a file opened for appending (created 0640).
    [[nodiscard]] static Audit open(const std::string& target, std::string& error, int dash = 1);

    [[nodiscard]] bool enabled() const noexcept { return fd_.get() >= 0; }
    void set_policy_file(std::string_view file) { policy_file_ = file; }
    // Every record also goes to `denials` (the -v lines and fdbroker run's hints), stream or not.
    void watch(Denials* denials) noexcept { denials_ = denials; }
    void record(const AuditRecord& r);
    // Writes whatever has been recorded since the last flush.
    void flush() noexcept;

  private:
    explicit Audit(unique_fd fd) : fd_(std::move(fd)) { buffer_.reserve(1 << 16); }
    unique_fd fd_;
    std::string policy_file_;
    std::string buffer_;
    Denials* denials_ = nullptr;
    bool write_failed_ = false;  // logged once: a full disk would otherwise log on every decision
};

// Appends s to out as the body of a JSON string (without quotes). Bytes that are not printable ASCII
// are written as \u00XX so that any path, valid UTF-8 or not, yields valid JSON.
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace fdbroker::broker
