// How a profile's workers are confined (limits, namespaces, system calls, exec, runtime paths): the
// policy side of sandbox/. Parsed from the profile keys documented in docs/policy.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace toml {
inline namespace v3 {
class node;
struct source_position;
}  // namespace v3
}  // namespace toml

namespace fdbroker::policy {

// Resource limits (setrlimit); unset ones are inherited from the broker, except `core`, which is 0
// unless the profile says otherwise: a worker's memory may hold what it was handed.
struct Limits {
    std::optional<std::uint64_t> nofile;
    std::optional<std::uint64_t> address_space;  // bytes
    std::optional<std::uint64_t> cpu_seconds;
    std::optional<std::uint64_t> processes;
    std::optional<std::uint64_t> file_size;  // bytes
    std::uint64_t core = 0;                  // bytes
};

enum Namespace : std::uint8_t { ns_net = 1, ns_ipc = 2, ns_uts = 4, ns_pid = 8 };

enum class OnViolation : std::uint8_t { kill, errno_eperm };

// What a datagram socket the broker hands over may reach (`datagram_reach`). A datagram socket can
// send to any address with sendto() or sendmsg() whatever peer it was connected or bound to, and the
// worker's filter cannot see sendmsg's address (it lies in memory), so only `any` lets a profile have
// udp: rules or unix datagram connects at all; with `peer` the filter also refuses every sendto that
// names an address.
enum class DatagramReach : std::uint8_t { peer, any };

// How a worker relates to the terminal it may share with its user (`terminal`): `shared` (it keeps it
// as its controlling terminal, in the process group fdbroker was started in, but may not make itself
// the foreground group), `job_control` (it may: for an interactive shell), `detached` (a session of
// its own: no controlling terminal at all, and no terminal signals).
enum class Terminal : std::uint8_t { shared, job_control, detached };

struct SyscallRules {
    std::string preset = "default";
    std::vector<std::string> allow;  // names added to the preset's allow-list
    std::vector<std::string> deny;   // names removed from it (deny wins)
};

// How a denied path operation looks to the worker (`denied_paths`): `eacces`, the default, or `absent`
// (ENOENT), for programs that probe optional files and treat only "absent" as harmless. Either way the
// answer is the same whether or not the path exists. Sockets are refused with EACCES in both.
enum class DeniedPaths : std::uint8_t { eacces, absent };

// The built-in runtime paths every profile gets unless it sets `runtime_builtin = false`, and that
// `include = ["runtime"]` grants reading.
[[nodiscard]] const std::vector<std::string>& default_runtime();
// The runtime paths `include = ["runtime"]` also grants writing: devices that keep nothing written to
// them, and the caller's own terminal.
[[nodiscard]] bool is_runtime_writable_device(std::string_view path) noexcept;

// Who enforces the profile's read-only opens (`reads`): the broker, on every open (the default), or
// the kernel (Landlock and the worker user's own permissions), for profiles whose read set Landlock
// can express exactly (kernel_reads.hpp).
enum class ReadTier : std::uint8_t { broker, kernel };

// Who answers the worker's `stat` family (`stat`): the broker, with the policy (the default), or, in
// transparent mode under `reads = "kernel"`, the kernel alone, for anything the worker's user can look
// up (Landlock does not restrict looking at metadata); see Loader::check_kernel_stat.
enum class StatTier : std::uint8_t { broker, kernel };

// One Landlock grant of the kernel read tier: a file named exactly (READ_FILE), or a directory and
// everything beneath it (READ_FILE | READ_DIR).
struct KernelRead {
    std::string path;  // normal absolute
    bool tree = false;
    bool operator==(const KernelRead&) const = default;
};

struct Confinement {
    Limits limits;
    std::uint8_t namespaces = 0;  // Namespace bits
    SyscallRules syscalls;
    bool exec = false;  // may the worker exec again after PROGRAM starts?
    OnViolation on_violation = OnViolation::kill;
    // Where the worker may open files read-only by itself (Landlock), for what a program needs before
    // it can ask the broker: the loader cache, system libraries, locale and time zone data. The
    // built-in set (default_runtime) plus the profile's `runtime` list, unless `runtime_builtin = false`.
    std::vector<std::string> runtime;
    bool runtime_builtin = true;
    DatagramReach datagram_reach = DatagramReach::peer;
    Terminal terminal = Terminal::shared;
    DeniedPaths denied_paths = DeniedPaths::eacces;
    ReadTier reads = ReadTier::broker;
    // Under ReadTier::kernel: what the worker's Landlock domain grants for reading besides its runtime
    // paths, exactly the profile's read set (the loader refuses a profile for which it cannot be).
    std::vector<KernelRead> kernel_reads;
    StatTier stat = StatTier::broker;
};
// The syscall presets a profile (or fdbroker_lockdown) may name.
[[nodiscard]] inline bool is_syscall_preset(std::string_view name) noexcept {
    return name == "default";
}

// Reports a problem at a position in the policy file.
using ErrorSink = std::function<void(const toml::source_position&, std::string)>;

// Parses one profile key if it is a confinement key; false if the key is not one of them.
bool load_confinement_setting(std::string_view key, const toml::node& value, Confinement& out,
                              const ErrorSink& error);

}  // namespace fdbroker::policy
