// The default system call preset: what every system call gets from a worker's filter, and why.
// docs/syscalls.md gives the reason for each call; tests/corpus/collect.sh gathers the evidence.
//
// Four treatments. Allowed calls run. Quiet refusals fail with EACCES and no log line: libraries try
// them and cope, and the worker asks the broker instead (creating or changing files by path, opening
// for writing, sockets). Refused calls fail with ENOSYS (where libraries fall back, as on a kernel
// without the call) or EPERM (what an unprivileged process gets natively), with one log line per
// worker and call. Fatal calls kill the process that made them (EPERM under on_violation = "errno"):
// only an attack on the system or on the sandbox makes them. A call the preset does not name is
// refused with ENOSYS.
#pragma once

#include <cerrno>
#include <cstdint>
#include <span>
#include <string_view>

namespace fdbroker::sandbox {

enum class Treatment : std::uint8_t { allowed, quiet, refused, fatal };

// The errno a refused call fails with.
enum class RefusalErrno : std::uint8_t { enosys, eperm };

// A treatment and the errno that goes with it; built only through the named constructors, so a
// refusal always carries ENOSYS or EPERM and a quiet refusal EACCES.
class Verdict {
  public:
    static constexpr Verdict allowed() noexcept { return Verdict(Treatment::allowed, 0); }
    static constexpr Verdict quiet() noexcept { return Verdict(Treatment::quiet, EACCES); }
    static constexpr Verdict refused(RefusalErrno e) noexcept {
        return Verdict(Treatment::refused, e == RefusalErrno::enosys ? ENOSYS : EPERM);
    }
    // Under on_violation = "errno" a fatal call fails with EPERM instead.
    static constexpr Verdict fatal() noexcept { return Verdict(Treatment::fatal, EPERM); }

    [[nodiscard]] constexpr Treatment treatment() const noexcept { return treatment_; }
    // The errno the caller sees when it is not killed (0 when allowed).
    [[nodiscard]] constexpr int error() const noexcept { return error_; }
    constexpr bool operator==(const Verdict&) const noexcept = default;

  private:
    constexpr Verdict(Treatment t, int error) noexcept : treatment_(t), error_(error) {}
    Treatment treatment_;
    int error_;
};

struct Refusal {
    const char* name;
    RefusalErrno error;
};

// What a call that reached the broker's supervisor gets, by name. Some calls are allowed in some forms
// only (clone without namespace flags, ioctl below 32 bits, personality queries, read-only opens,
// sockets of some kinds): the forms that reach the broker get the treatment named here. Names the
// preset does not know are refused with ENOSYS.
[[nodiscard]] Verdict classify(std::string_view name) noexcept;

// The lists the filter is built from (each name in one list only).
[[nodiscard]] std::span<const char* const> allowed_calls() noexcept;
[[nodiscard]] std::span<const char* const> quietly_refused_calls() noexcept;
[[nodiscard]] std::span<const Refusal> refused_calls() noexcept;
[[nodiscard]] std::span<const char* const> fatal_calls() noexcept;

}  // namespace fdbroker::sandbox
