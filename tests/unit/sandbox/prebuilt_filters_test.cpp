// The filters compiled at build time (the workers', the keeper's, the broker's own): each is exactly the
// program libseccomp compiles at run time for the same options, and one is used only where that holds.
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "sandbox/containment.hpp"
#include "sandbox/prebuilt_filters.hpp"
#include "sandbox/seccomp_filter.hpp"
#include "sandbox/self_confine.hpp"

namespace fdbroker::sandbox {
namespace {

std::string describe(const PrebuiltVariant& v) {
    return std::string(v.action == FilterAction::notify ? "notify" : "kill") + (v.exec ? " exec" : "") +
           (v.datagram_reach == policy::DatagramReach::any ? " datagram_reach=any" : "") +
           " terminal=" + std::to_string(static_cast<int>(v.terminal));
}

bool same_program(std::span<const sock_filter> a, const std::vector<sock_filter>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

void skip_without_table() {
    if (kPrebuiltFilters.programs.empty())
        GTEST_SKIP()
            << "this build compiled no filter ahead of time (libseccomp could not, where it was built)";
}

TEST(PrebuiltFilters, EachIsWhatLibseccompCompilesNow) {
    skip_without_table();
    ASSERT_EQ(kPrebuiltFilters.programs.size(), prebuilt_variants().size());
    for (std::size_t i = 0; i < prebuilt_variants().size(); ++i) {
        const PrebuiltVariant& variant = prebuilt_variants()[i];
        std::vector<sock_filter> now;
        ASSERT_EQ(compile_worker_filter({}, variant.options(), now), 0) << describe(variant);
        EXPECT_FALSE(now.empty()) << describe(variant);
        EXPECT_TRUE(same_program(kPrebuiltFilters.programs[i], now)) << describe(variant);
        // And it is the one the loader picks for those options.
        EXPECT_TRUE(same_program(prebuilt_worker_filter({}, variant.options()), now)) << describe(variant);
    }
}

TEST(PrebuiltFilters, TheKeepersIsWhatLibseccompCompilesNow) {
    skip_without_table();
    std::vector<sock_filter> now;
    ASSERT_EQ(compile_keeper_filter(now), 0);
    EXPECT_TRUE(same_program(kPrebuiltFilters.keeper, now));
    EXPECT_TRUE(same_program(prebuilt_keeper_filter(), now));
}

TEST(PrebuiltFilters, TheBrokersAreWhatLibseccompCompilesNow) {
    skip_without_table();
    ASSERT_EQ(kPrebuiltFilters.broker.size(), kBrokerVariants);
    for (const bool spawns : {false, true})
        for (const bool reads : {false, true})
            for (const bool signals : {false, true}) {  // not part of the filter: the same program
                BrokerNeeds needs;
                needs.spawns_workers = spawns;
                needs.reads_worker_memory = reads;
                needs.signals_workers = signals;
                std::vector<sock_filter> now;
                ASSERT_EQ(compile_broker_filter(needs, now), 0);
                EXPECT_TRUE(same_program(prebuilt_broker_filter(broker_variant(spawns, reads)), now))
                    << "spawns " << spawns << " reads " << reads << " signals " << signals;
            }
}

TEST(PrebuiltFilters, CoverTheDefaultProfile) {
    skip_without_table();
    // A profile without `syscalls`, `exec`, `datagram_reach` or `terminal` (run and serve mode), and
    // fdbroker_lockdown() without rules.
    EXPECT_FALSE(prebuilt_worker_filter({}, {}).empty());
    EXPECT_FALSE(prebuilt_worker_filter({}, {.action = FilterAction::kill}).empty());
}

TEST(PrebuiltFilters, NotForRulesOrTransparentMode) {
    skip_without_table();
    policy::SyscallRules allow;
    allow.allow = {"acct"};
    policy::SyscallRules deny;
    deny.deny = {"read"};
    EXPECT_TRUE(prebuilt_worker_filter(allow, {}).empty());
    EXPECT_TRUE(prebuilt_worker_filter(deny, {}).empty());
    EXPECT_TRUE(prebuilt_worker_filter(allow, {.action = FilterAction::kill}).empty());
    constexpr const char* brokered[] = {"openat"};
    EXPECT_TRUE(prebuilt_worker_filter({}, {.brokered = brokered}).empty());
}

TEST(PrebuiltFilters, TheTableNamesThisArchitectureAndLibrary) {
    skip_without_table();
    const scmp_version* v = seccomp_version();
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(kPrebuiltFilters.arch, seccomp_arch_native());
    EXPECT_EQ(kPrebuiltFilters.major, v->major);
    EXPECT_EQ(kPrebuiltFilters.minor, v->minor);
    EXPECT_EQ(kPrebuiltFilters.micro, v->micro);
}

// A prebuilt notifying filter loads as libseccomp's would: with a listener for the broker.
TEST(PrebuiltFilters, NotifyingFilterLoadsWithAListener) {
    skip_without_table();
    const pid_t child = ::fork();
    if (child == 0) {
        const FilterResult f = load_worker_filter({}, {});
        ::_exit(f.error == 0 && f.notify ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace fdbroker::sandbox
