// Where a request really lands. Judging the path a worker wrote is not enough: symlinks, mounts,
// /proc magic links and concurrent renames decide what a path reaches. So the broker opens the
// request's parent directory with the kernel's help (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_MAGICLINKS from the granting rule's anchor), asks the kernel which directory that really
// is, and judges "real directory / final name" against the policy before touching the final name with
// *at() calls that never follow it. Nothing with a side effect happens before both judgements pass.
#pragma once

#include <cstdint>
#include <string_view>

#include "broker/ops/proc_self.hpp"
#include "fdbroker/unique_fd.hpp"
#include "policy/path_buffer.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker {

using policy::PathBuffer;

// The outcome of a policy check, for the reply and the audit line.
struct Verdict {
    bool allowed = false;
    const policy::Rule* rule = nullptr;  // deciding rule (nullptr: default deny)
    int error = 0;                       // errno for the worker; 0 = go ahead
};

struct Location {
    unique_fd dir;            // O_PATH descriptor of the directory that holds the final component
    PathBuffer real;          // the real path that was judged: real directory + "/" + name
    std::size_t dir_len = 0;  // real.view().substr(0, dir_len) is the real directory
    const char* name = ".";   // final component, NUL-terminated; "." when the target is "/"
    PathBuffer name_storage;
};

// Judges `path` lexically, then resolves and judges it for real. On success (error 0) `out` holds the
// directory and name to operate on. Denials are EACCES whether or not anything exists. /proc/self
// names `self`, whose own /proc entries it may read without a rule (proc_self.hpp).
[[nodiscard]] Verdict locate(const policy::Profile& profile, const ProcSelf& self, std::string_view path,
                             std::uint8_t needs, Location& out) noexcept;

// Complain mode (Performer::perform_refused): sees every path judged on this thread while it is set,
// the symlinks' targets and the real paths of what a request reaches included.
class JudgeWitness {
  public:
    virtual void judged(std::string_view path, std::uint8_t needs) noexcept = 0;

  protected:
    ~JudgeWitness() = default;
};

// Sets (or, with nullptr, clears) the calling thread's witness; returns the one it replaces.
JudgeWitness* witness_judgements(JudgeWitness* witness) noexcept;

// The policy's decision, with the caller's own /proc entries readable.
[[nodiscard]] policy::Decision judge(const policy::Profile& profile, const ProcSelf& self,
                                     std::string_view path, std::uint8_t needs) noexcept;

}  // namespace fdbroker::broker
