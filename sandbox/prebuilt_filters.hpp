// Worker filters compiled at build time. libseccomp takes milliseconds to compile the default preset,
// the largest part of a worker's start; the build runs the same code (fdbroker_filter_gen, linked with
// libseccomp) for the options a profile that adds no system call rules can have, exports each program
// with seccomp_export_bpf, and compiles the programs in. At run time a filter is taken from this table
// only when it is exactly the one libseccomp would compile now: same options, no `syscalls.allow` or
// `syscalls.deny`, same architecture, same libseccomp version (an updated library is used as it is,
// compiling at run time, until the package is rebuilt). Otherwise the filter is compiled at run time.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <span>

#include "policy/confinement.hpp"
#include "sandbox/seccomp_filter.hpp"

namespace fdbroker::sandbox {

// The options of one prebuilt filter.
struct PrebuiltVariant {
    FilterAction action;
    bool exec;
    policy::DatagramReach datagram_reach;
    policy::Terminal terminal;

    [[nodiscard]] FilterOptions options() const noexcept {
        return {.exec = exec, .action = action, .datagram_reach = datagram_reach, .terminal = terminal};
    }
};

// Every variant the build compiles, in the order of the table's programs.
[[nodiscard]] std::span<const PrebuiltVariant> prebuilt_variants() noexcept;

// What the build generated: one program per variant, and what it was generated with. No programs when
// the build could not generate them (a cross build, or a build machine whose kernel lacks seccomp
// user notification, which libseccomp checks for): every filter is then compiled at run time.
struct PrebuiltTable {
    std::uint32_t arch;            // seccomp_arch_native() of the generator
    unsigned major, minor, micro;  // seccomp_version() of the generator
    std::span<const std::span<const sock_filter>> programs;
    std::span<const sock_filter> keeper;                   // containment.hpp's keeper
    std::span<const std::span<const sock_filter>> broker;  // self_confine.hpp's, by broker_variant()
};
extern const PrebuiltTable kPrebuiltFilters;

// The prebuilt program for `rules` and `options`, or an empty span when there is none that is exactly
// what libseccomp would compile here and now.
[[nodiscard]] std::span<const sock_filter> prebuilt_worker_filter(const policy::SyscallRules& rules,
                                                                  const FilterOptions& options) noexcept;

// The broker's own filter (self_confine.hpp) depends on two of its needs: the index of its program.
inline constexpr std::size_t kBrokerVariants = 4;
[[nodiscard]] constexpr std::size_t broker_variant(bool spawns_workers, bool reads_worker_memory) noexcept {
    return (spawns_workers ? 2 : 0) + (reads_worker_memory ? 1 : 0);
}

// The keeper's and the broker's own filters compiled at build time, under the same conditions as the
// workers': empty where the build compiled none or compiled them for another libseccomp.
[[nodiscard]] std::span<const sock_filter> prebuilt_keeper_filter() noexcept;
[[nodiscard]] std::span<const sock_filter> prebuilt_broker_filter(std::size_t variant) noexcept;

}  // namespace fdbroker::sandbox
