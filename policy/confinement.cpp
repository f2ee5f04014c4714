#include "policy/confinement.hpp"

#include <seccomp.h>

#include <toml++/toml.h>
#include <cctype>
#include <charconv>

#include "policy/path.hpp"
#include "policy/text.hpp"

namespace fdbroker::policy {

namespace {

// "64", 64, "16M", "1G", "512K" (powers of 1024), "unlimited".
std::optional<std::uint64_t> size_value(const toml::node& node, bool with_units) {
    if (const auto* i = node.as_integer()) {
        if (i->get() < 0) return std::nullopt;
        return static_cast<std::uint64_t>(i->get());
    }
    const auto* s = node.as_string();
    if (!s) return std::nullopt;
    std::string_view text = s->get();
    if (text == "unlimited") return UINT64_MAX;
    std::uint64_t scale = 1;
    if (with_units && !text.empty()) {
        switch (std::toupper(static_cast<unsigned char>(text.back()))) {
            case 'K':
                scale = 1ULL << 10;
                break;
            case 'M':
                scale = 1ULL << 20;
                break;
            case 'G':
                scale = 1ULL << 30;
                break;
            case 'T':
                scale = 1ULL << 40;
                break;
            default:
                break;
        }
        if (scale != 1) text.remove_suffix(1);
    }
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n > UINT64_MAX / scale)
        return std::nullopt;
    return n * scale;
}

void load_limits(const toml::node& value, Limits& limits, const ErrorSink& error) {
    const toml::table* table = value.as_table();
    if (!table) return error(value.source().begin, "'limits' must be a table, e.g. { nofile = 64 }");
    for (const auto& [key, v] : *table) {
        const std::string_view name = key.str();
        std::optional<std::uint64_t>* slot = nullptr;
        bool units = false;
        if (name == "nofile")
            slot = &limits.nofile;
        else if (name == "address_space")
            slot = &limits.address_space, units = true;
        else if (name == "cpu_seconds")
            slot = &limits.cpu_seconds;
        else if (name == "processes")
            slot = &limits.processes;
        else if (name == "file_size")
            slot = &limits.file_size, units = true;
        else if (name != "core") {
            error(key.source().begin,
                  "unknown key " + quote(name) +
                      " in 'limits' (expected nofile, address_space, cpu_seconds, processes, "
                      "file_size or core)");
            continue;
        }
        const std::optional<std::uint64_t> n = size_value(v, units || name == "core");
        if (!n) {
            error(v.source().begin,
                  quote(name) + (units || name == "core"
                                     ? " must be a size: a number of bytes or e.g. \"16M\", \"1G\""
                                     : " must be a non-negative integer"));
            continue;
        }
        if (slot)
            *slot = *n;
        else
            limits.core = *n;
    }
}

void load_namespaces(const toml::node& value, std::uint8_t& out, const ErrorSink& error) {
    const toml::array* array = value.as_array();
    if (!array) return error(value.source().begin, "'namespaces' must be an array of strings");
    for (const toml::node& element : *array) {
        const auto* s = element.as_string();
        const std::string_view name = s ? std::string_view(s->get()) : std::string_view();
        if (name == "net")
            out |= ns_net;
        else if (name == "ipc")
            out |= ns_ipc;
        else if (name == "uts")
            out |= ns_uts;
        else if (name == "pid")
            out |= ns_pid;
        else
            error(element.source().begin, "unknown namespace " +
                                              (s ? quote(name) : std::string("(not a string)")) +
                                              " (expected \"net\", \"ipc\", \"uts\" or \"pid\")");
    }
}

void load_syscall_names(const toml::node& value, std::string_view key, std::vector<std::string>& out,
                        const ErrorSink& error) {
    const toml::array* array = value.as_array();
    if (!array)
        return error(value.source().begin, "'syscalls." + std::string(key) + "' must be an array of strings");
    for (const toml::node& element : *array) {
        const auto* s = element.as_string();
        if (!s) {
            error(element.source().begin, "'syscalls." + std::string(key) + "' must be an array of strings");
        } else if (seccomp_syscall_resolve_name(s->get().c_str()) == __NR_SCMP_ERROR) {
            error(element.source().begin, "unknown system call " + quote(s->get()));
        } else {
            out.push_back(s->get());
        }
    }
}

void load_syscalls(const toml::node& value, SyscallRules& rules, const ErrorSink& error) {
    const toml::table* table = value.as_table();
    if (!table)
        return error(value.source().begin, "'syscalls' must be a table, e.g. { preset = \"default\" }");
    for (const auto& [key, v] : *table) {
        const std::string_view name = key.str();
        if (name == "preset") {
            const auto* s = v.as_string();
            if (!s || !is_syscall_preset(s->get()))
                error(v.source().begin, "'syscalls.preset' must be \"default\"");
            else
                rules.preset = s->get();
        } else if (name == "allow") {
            load_syscall_names(v, name, rules.allow, error);
        } else if (name == "deny") {
            load_syscall_names(v, name, rules.deny, error);
        } else {
            error(key.source().begin,
                  "unknown key " + quote(name) + " in 'syscalls' (expected preset, allow or deny)");
        }
    }
}

void load_runtime(const toml::node& value, std::vector<std::string>& out, const ErrorSink& error) {
    const toml::array* array = value.as_array();
    if (!array) return error(value.source().begin, "'runtime' must be an array of absolute paths");
    out.clear();
    for (const toml::node& element : *array) {
        const auto* s = element.as_string();
        if (!s || !is_normal_absolute(s->get()))
            error(element.source().begin, "'runtime' entries must be absolute, normal paths (no patterns)");
        else
            out.push_back(s->get());
    }
}

void load_reads(const toml::node& value, ReadTier& out, const ErrorSink& error) {
    const auto* s = value.as_string();
    if (s && s->get() == "broker")
        out = ReadTier::broker;
    else if (s && s->get() == "kernel")
        out = ReadTier::kernel;
    else
        error(value.source().begin, "'reads' must be \"broker\" or \"kernel\"");
}

void load_stat(const toml::node& value, StatTier& out, const ErrorSink& error) {
    const auto* s = value.as_string();
    if (s && s->get() == "broker")
        out = StatTier::broker;
    else if (s && s->get() == "kernel")
        out = StatTier::kernel;
    else
        error(value.source().begin, "'stat' must be \"broker\" or \"kernel\"");
}

}  // namespace

const std::vector<std::string>& default_runtime() {
    // What an ordinary program reads before main() and while it starts, all of it public: the loader's
    // cache and configuration, the whole of /usr (libraries, gconv modules, locales, time zones,
    // certificates, terminfo, Perl's and Python's standard libraries: what packages install for
    // everyone), the account and name-service files every C library reads (no passwords: those are in
    // /etc/shadow), the certificate store without its private keys, the alternatives' symlinks into
    // /usr, the devices that hold no data of their own, and the huge page size, which the Go runtime
    // reads as it starts; and the system-wide configuration that common programs from /usr read at
    // every start, which packages install world-readable for everyone (libselinux's mode, GnuTLS's
    // priorities, git's, file's, Python's and ImageMagick's defaults, readline's and fontconfig's), and
    // the kernel's world-readable summaries of the machine (CPUs, memory, load, version, limits):
    // refused, each would end a program that natively runs, since they fail fatally on EACCES where
    // the file exists or not. docs/policy.md says why each entry is harmless.
    static const std::vector<std::string> paths{"/etc/ld.so.cache",
                                                "/etc/ld.so.preload",
                                                "/etc/ld.so.conf",
                                                "/etc/ld.so.conf.d",
                                                "/etc/localtime",
                                                "/etc/locale.alias",
                                                "/etc/nsswitch.conf",
                                                "/etc/passwd",
                                                "/etc/group",
                                                "/etc/hosts",
                                                "/etc/host.conf",
                                                "/etc/resolv.conf",
                                                "/etc/gai.conf",
                                                "/etc/alternatives",
                                                "/etc/ssl/certs",
                                                "/etc/ssl/openssl.cnf",
                                                "/etc/perl",
                                                "/etc/selinux/config",
                                                "/etc/gnutls/config",
                                                "/etc/gitconfig",
                                                "/etc/gitattributes",
                                                "/etc/magic",
                                                "/etc/magic.mgc",
                                                "/etc/python3",
                                                "/etc/python3.11",
                                                "/etc/python3.12",
                                                "/etc/python3.13",
                                                "/etc/ImageMagick-6",
                                                "/etc/ImageMagick-7",
                                                "/etc/inputrc",
                                                "/etc/terminfo",
                                                "/etc/fonts",
                                                "/etc/mime.types",
                                                "/etc/timezone",
                                                "/etc/protocols",
                                                "/etc/services",
                                                "/etc/os-release",
                                                "/bin",
                                                "/lib",
                                                "/lib64",
                                                "/usr",
                                                "/dev/null",
                                                "/dev/zero",
                                                "/dev/full",
                                                "/dev/random",
                                                "/dev/urandom",
                                                "/dev/tty",
                                                "/proc/self",
                                                "/proc/filesystems",
                                                "/proc/mounts",
                                                "/proc/cpuinfo",
                                                "/proc/meminfo",
                                                "/proc/stat",
                                                "/proc/uptime",
                                                "/proc/loadavg",
                                                "/proc/version",
                                                "/proc/sys/kernel/ngroups_max",
                                                "/proc/sys/kernel/pid_max",
                                                "/proc/sys/kernel/osrelease",
                                                "/proc/sys/kernel/ostype",
                                                "/proc/sys/vm/overcommit_memory",
                                                "/proc/sys/kernel/random",
                                                "/sys/devices/system/cpu",
                                                "/sys/kernel/mm/transparent_hugepage"};
    return paths;
}

bool is_runtime_writable_device(std::string_view path) noexcept {
    // Writing to these stores nothing anywhere (/dev/null, /dev/zero discard it, /dev/full refuses it
    // with ENOSPC) or reaches only the caller's own controlling terminal (/dev/tty, which the broker
    // opens only for a caller whose terminal it is: perform.cpp).
    return path == "/dev/null" || path == "/dev/zero" || path == "/dev/full" || path == "/dev/tty";
}

bool load_confinement_setting(std::string_view key, const toml::node& value, Confinement& out,
                              const ErrorSink& error) {
    if (key == "limits") {
        load_limits(value, out.limits, error);
    } else if (key == "namespaces") {
        load_namespaces(value, out.namespaces, error);
    } else if (key == "syscalls") {
        load_syscalls(value, out.syscalls, error);
    } else if (key == "exec") {
        if (const auto* b = value.as_boolean())
            out.exec = b->get();
        else
            error(value.source().begin, "'exec' must be true or false");
    } else if (key == "on_violation") {
        const auto* s = value.as_string();
        if (s && s->get() == "kill")
            out.on_violation = OnViolation::kill;
        else if (s && s->get() == "errno")
            out.on_violation = OnViolation::errno_eperm;
        else
            error(value.source().begin, "'on_violation' must be \"kill\" or \"errno\"");
    } else if (key == "terminal") {
        const auto* s = value.as_string();
        if (s && s->get() == "shared")
            out.terminal = Terminal::shared;
        else if (s && s->get() == "job-control")
            out.terminal = Terminal::job_control;
        else if (s && s->get() == "detached")
            out.terminal = Terminal::detached;
        else
            error(value.source().begin, "'terminal' must be \"shared\", \"job-control\" or \"detached\"");
    } else if (key == "denied_paths") {
        const auto* s = value.as_string();
        if (s && s->get() == "eacces")
            out.denied_paths = DeniedPaths::eacces;
        else if (s && s->get() == "absent")
            out.denied_paths = DeniedPaths::absent;
        else
            error(value.source().begin, "'denied_paths' must be \"eacces\" or \"absent\"");
    } else if (key == "reads") {
        load_reads(value, out.reads, error);
    } else if (key == "stat") {
        load_stat(value, out.stat, error);
    } else if (key == "runtime") {
        load_runtime(value, out.runtime, error);
    } else if (key == "runtime_builtin") {
        if (const auto* b = value.as_boolean())
            out.runtime_builtin = b->get();
        else
            error(value.source().begin, "'runtime_builtin' must be true or false");
    } else {
        return false;
    }
    return true;
}

}  // namespace fdbroker::policy
