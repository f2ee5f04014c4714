// From Observations to the rules a profile lacks: what `fdbroker learn` adds to a profile. Nothing the
// profile (or, once added, `include = ["runtime"]`) grants already; exact paths where the program
// touched a few in a directory, `DIR/**` where it touched at least `group` there or created something
// there; write and create only for what it wrote or created; never a pattern broader than a directory
// it touched, and never `/**`, a top-level directory (but /tmp), or anything in /proc, /sys or /dev as
// a whole. Each rule carries its provenance: how many calls, and one of them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "broker/learn/observations.hpp"
#include "policy/policy.hpp"

namespace fdbroker::broker::learn {

// One array element to add, and its comment (without the '#').
struct Entry {
    std::string value;
    std::string comment;

    friend bool operator==(const Entry&, const Entry&) = default;
};

struct Additions {
    std::string include_runtime;  // non-empty: add "runtime" to `include`, with this comment
    std::vector<Entry> read;
    std::vector<Entry> write;
    std::vector<Entry> create;
    std::vector<Entry> connect;
    std::vector<Entry> listen;
    std::vector<Entry> syscalls;  // syscalls.allow
    std::string exec;             // non-empty: exec = true, with this comment

    [[nodiscard]] bool empty() const noexcept;
};

struct LearnOptions {
    // At least this many paths touched in one directory make it DIR/** (creating one always does).
    std::size_t group = 4;
};

// What `existing` must gain to grant everything `seen` records.
[[nodiscard]] Additions plan_additions(const Observations& seen, const policy::Profile& existing,
                                       const LearnOptions& options);

// Whether `dir` may become `dir/**`: never "/", a top-level directory other than /tmp, or anything
// in /proc, /sys or /dev (but /dev/shm).
[[nodiscard]] bool may_group(std::string_view dir) noexcept;

}  // namespace fdbroker::broker::learn
