// Landlock: the worker may read (and, for the program itself, execute) only its runtime paths by
// itself; every other file comes from the broker. Writes, creations and removals are refused
// everywhere, and where the kernel can, signals and abstract unix sockets stay inside the sandbox.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "policy/confinement.hpp"

namespace fdbroker::sandbox {

struct LandlockResult {
    int abi = 0;    // the kernel's Landlock ABI version; 0: Landlock unavailable, nothing applied
    int error = 0;  // errno when applying failed
    bool program_unreachable = false;  // error came from opening PROGRAM as the worker's user
};

// The ABI version the running kernel offers (0 if none).
[[nodiscard]] int landlock_abi() noexcept;

// What a worker's Landlock domain grants beyond its runtime paths and its program.
struct LandlockOptions {
    // False leaves signals out of the scoping: for a pid namespace's init, which signals the program
    // in a Landlock domain of its own (pid_init.hpp).
    bool scope_signals = true;
    // reads = "kernel": reading the profile's read set, each grant only if it is what it says (a file,
    // or a directory for a tree) and its path has no symbolic link (kernel_read_missing says which are
    // skipped).
    std::span<const policy::KernelRead> kernel_reads{};
    // The worker's filter keeps every truncation by path from the kernel (filter_keeps_truncation):
    // truncating is then granted wherever reading is. The kernel looks up the truncate right on every
    // open, for a later ftruncate, and climbs from the file towards the root until a rule grants it;
    // granted beside reading, the climb stops at the rule that grants the read. Nothing can use the
    // right: the worker's own opens are read-only, and ftruncate needs a descriptor open for writing.
    bool truncate_where_readable = false;
};

// Restricts the calling process (and everything it starts). Paths that do not exist are skipped; an
// empty `program` adds none. Must run after no_new_privs (or with CAP_SYS_ADMIN).
[[nodiscard]] LandlockResult apply_landlock(const std::vector<std::string>& runtime,
                                            const std::string& program,
                                            const LandlockOptions& options = {}) noexcept;

// Why the kernel tier would grant nothing for `grant` now (a static string), or nullptr when it grants
// it: the path is absent, leads through a symbolic link, or is a directory named as a file. Landlock
// binds a grant to the inode found when the worker starts.
[[nodiscard]] const char* kernel_read_missing(const policy::KernelRead& grant) noexcept;

}  // namespace fdbroker::sandbox
