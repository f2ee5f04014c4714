// What complain mode (`fdbroker learn`) learns from: every request the profile refused and that was
// then performed anyway with the worker's own identity, and every system call the worker's filter
// refused. Injected into the performer (broker/ops/perform.hpp) and the seccomp listener
// (broker/notify/seccomp_monitor.hpp); null in every other run, where it costs one pointer test.
#pragma once

#include <cstdint>
#include <string_view>

namespace fdbroker::broker {

struct AuditRecord;

class Recorder {
  public:
    Recorder() = default;
    virtual ~Recorder() = default;
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    // One refusal, as the audit stream would have recorded it (op "syscall" for the filter's), and
    // `result`, the errno the program got once it was performed (0: it succeeded; EACCES or EPERM:
    // the worker's user may not do it either, so nothing is to be learned from it). Called from
    // whichever thread performs the request, so implementations lock; the record's views are valid
    // only during the call.
    virtual void refused(const AuditRecord& record, int result) noexcept = 0;
    // A path that a request performed anyway reached beyond the one it names (a symlink's target,
    // where a /proc/self/fd link leads), needing `needs` (policy::Need bits) there, which the profile
    // would refuse too.
    virtual void reached(std::string_view op, std::string_view path, std::uint8_t needs) noexcept = 0;
};

}  // namespace fdbroker::broker
