// What one or more complain-mode runs saw the program do that its profile did not grant: per path the
// permissions it needed, per address the connects and listens, the system calls outside its filter
// and whether it executed programs, each with how often and one example for the provenance comments
// of the rules written from it (learned_rules.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "broker/core/recorder.hpp"

namespace fdbroker::broker::learn {

// How often something was asked for, and one request as an example ("open O_RDWR|O_CREAT").
struct Use {
    std::uint64_t calls = 0;
    std::string example;  // "OP PATH (WHAT)", the first request seen
};

// The requests on one path, per permission they needed (a request needing several counts in each).
struct PathUse {
    std::uint8_t needs = 0;  // policy::Need bits, over every request on the path
    Use read;
    Use write;
    Use create;
    Use lookup;  // requests that needed only to see the path (stat, readlink, access F_OK)
    Use all;     // every request
};

struct Observations {
    std::map<std::string, PathUse, std::less<>> paths;
    std::map<std::string, Use, std::less<>> connects;  // addresses, as the program wrote them
    std::map<std::string, Use, std::less<>> listens;
    std::map<std::string, Use, std::less<>> syscalls;  // names, execve excepted
    Use exec;                                          // execve after the program started

    // Adds one request on `path` needing `needs`, described by `example`.
    void path(std::string_view path, std::uint8_t needs, std::string_view example);
    [[nodiscard]] bool empty() const noexcept;
};

// The policy::Need bits an audit record's operation needs of its path (of `path2` with `second`: a
// rename's destination, a link's old name); 0 for what no path rule grants (sockets, system calls).
[[nodiscard]] std::uint8_t needs_of(std::string_view op, std::uint32_t flags, bool second = false) noexcept;

// The recorder complain mode hands its refusals to: it turns them into Observations.
class Collector final : public Recorder {
  public:
    void refused(const AuditRecord& record, int result) noexcept override;
    void reached(std::string_view op, std::string_view path, std::uint8_t needs) noexcept override;
    // What has been collected (once the run is over: no locking).
    [[nodiscard]] const Observations& observations() const noexcept { return seen_; }
    // Adds one record (what refused() does, under the lock).
    void add(const AuditRecord& record, int result);

  private:
    std::mutex lock_;
    Observations seen_;
};

}  // namespace fdbroker::broker::learn
