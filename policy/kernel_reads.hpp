// The kernel read tier (`reads = "kernel"`): which profiles Landlock can enforce reading for exactly,
// and the Landlock grants that do it. Landlock has no wildcards and no exceptions: it grants a file,
// or a directory and everything beneath it, and nothing taken back. So a profile qualifies when every
// rule that grants reading is a literal file or a tree "DIR/**" with a literal DIR, and no deny can
// reach into what they grant; anything else would make the kernel grant more, or less, than the broker.
#pragma once

#include <sys/types.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policy/confinement.hpp"
#include "policy/matcher.hpp"

namespace fdbroker::policy {

struct KernelReadProblem {
    const Rule* rule = nullptr;  // the rule at fault; nullptr when it is the profile as a whole
    std::string message;
};

// What a profile's read set looks like to the kernel tier.
struct KernelReadInput {
    std::span<const Rule> rules;
    const Confinement& confinement;
    std::optional<uid_t> uid;  // the worker's user (unset: the default, nobody)
    bool includes_runtime = false;
};

// The Landlock grants equal to the profile's read set, or the reasons there are none: every problem,
// in rule order. `exists` says how a literal path is on this machine now (the loader passes a probe of
// the file system, tests a fake): a literal directory or symbolic link cannot be granted exactly.
enum class PathKind : std::uint8_t { absent, file, directory, symlink };
using PathProbe = PathKind (*)(const std::string& path);
[[nodiscard]] std::vector<KernelRead> kernel_read_set(const KernelReadInput& input, PathProbe probe,
                                                      std::vector<KernelReadProblem>& problems);

// The file system as it is (lstat).
[[nodiscard]] PathKind probe_path(const std::string& path);

// Whether `pattern` can match `path` or something beneath it, whatever exists.
[[nodiscard]] bool may_match_at_or_beneath(const Pattern& pattern, std::string_view path) noexcept;

}  // namespace fdbroker::policy
