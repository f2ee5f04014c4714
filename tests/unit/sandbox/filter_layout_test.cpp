// How the filters fdbroker compiles are laid out: as a tree of system call numbers (new_filter()), so
// that no call crosses a long chain of comparisons, neither when the kernel runs the filter once per
// call number as it loads it, nor when the filter judges a call.
#include <gtest/gtest.h>
#include <linux/filter.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "sandbox/containment.hpp"
#include "sandbox/seccomp_filter.hpp"
#include "sandbox/self_confine.hpp"

namespace fdbroker::sandbox {
namespace {

// The most instructions any run of `program` executes. Classic BPF jumps only forward, so each
// instruction's longest run is one plus its successors' longest, computed from the end.
std::size_t longest_run(const std::vector<sock_filter>& program) {
    std::vector<std::size_t> from(program.size() + 1, 0);
    for (std::size_t i = program.size(); i-- > 0;) {
        const sock_filter& insn = program[i];
        const std::size_t next = i + 1;
        auto at = [&](std::size_t target) { return target < program.size() ? from[target] : 0; };
        std::size_t rest = 0;
        if (BPF_CLASS(insn.code) == BPF_RET)
            rest = 0;
        else if (BPF_CLASS(insn.code) == BPF_JMP && BPF_OP(insn.code) == BPF_JA)
            rest = at(next + insn.k);
        else if (BPF_CLASS(insn.code) == BPF_JMP)
            rest = std::max(at(next + insn.jt), at(next + insn.jf));
        else
            rest = at(next);
        from[i] = 1 + rest;
    }
    return program.empty() ? 0 : from[0];
}

// A chain compares the call number against each of the ~370 calls a worker's filter names in turn; a
// tree of them is about 9 levels deep, plus the architecture checks and one call's argument checks.
constexpr std::size_t kMostComparisons = 120;

TEST(FilterLayout, TheWorkersFilterJudgesAnyCallInFewComparisons) {
    constexpr const char* kBrokered[] = {"open", "openat", "openat2", "newfstatat", "statx", "mkdir"};
    for (const bool transparent : {false, true})
        for (const FilterAction action : {FilterAction::notify, FilterAction::kill}) {
            FilterOptions options{.action = action};
            if (transparent) options.brokered = kBrokered;
            std::vector<sock_filter> program;
            ASSERT_EQ(compile_worker_filter({}, options, program), 0);
            EXPECT_GT(program.size(), kMostComparisons) << "the filter names fewer calls than expected";
            EXPECT_LE(longest_run(program), kMostComparisons)
                << "transparent " << transparent << ", action " << static_cast<int>(action) << ": "
                << program.size() << " instructions";
        }
}

TEST(FilterLayout, TheKeepersAndTheBrokersFiltersToo) {
    std::vector<sock_filter> keeper;
    ASSERT_EQ(compile_keeper_filter(keeper), 0);
    EXPECT_LE(longest_run(keeper), kMostComparisons);
    BrokerNeeds needs;
    needs.spawns_workers = true;
    needs.reads_worker_memory = true;
    std::vector<sock_filter> broker;
    ASSERT_EQ(compile_broker_filter(needs, broker), 0);
    EXPECT_LE(longest_run(broker), kMostComparisons);
}

TEST(FilterLayout, LongestRunFollowsTheLongerBranch) {
    // The comparison's false branch returns at once (3 instructions run); its true branch jumps over
    // that return to two loads and a return (5).
    const std::vector<sock_filter> program = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0),          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8), BPF_STMT(BPF_RET | BPF_K, 0)};
    EXPECT_EQ(longest_run(program), 5U);
}

}  // namespace
}  // namespace fdbroker::sandbox
