// The kernel feature probes: each is a real call, and FDBROKER_SIMULATE_ABSENT takes features away.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "sandbox/kernel_features.hpp"
#include "sandbox/landlock.hpp"

namespace fdbroker::sandbox {
namespace {

// Sets FDBROKER_SIMULATE_ABSENT for one scope.
class Absent {
  public:
    explicit Absent(const char* list) { ::setenv("FDBROKER_SIMULATE_ABSENT", list, 1); }
    ~Absent() { ::unsetenv("FDBROKER_SIMULATE_ABSENT"); }
    Absent(const Absent&) = delete;
    Absent& operator=(const Absent&) = delete;
};

TEST(KernelFeatures, ProbesAgreeWithWhatTheBrokerUses) {
    const KernelFeatures k = probe_kernel();
    EXPECT_EQ(k[Feature::landlock].present, landlock_abi() > 0);
    EXPECT_EQ(k[Feature::landlock].version, landlock_abi());
    // The flags of a listener need a listener.
    if (!k[Feature::seccomp_notify].present) {
        EXPECT_FALSE(k[Feature::addfd_send].present);
        EXPECT_FALSE(k[Feature::sync_wake_up].present);
    }
    EXPECT_EQ(k[Feature::cgroup2].present, !cgroup2_mount().empty());
    for (std::size_t i = 0; i < kFeatureCount; ++i)
        EXPECT_FALSE(k.probes[i].simulated) << feature_name(static_cast<Feature>(i));
}

TEST(KernelFeatures, SimulatedAbsenceTakesFeaturesAway) {
    const KernelFeatures real = probe_kernel();
    const Absent absent("openat2,landlock,sync_wake_up");
    EXPECT_TRUE(simulated_absent(Feature::openat2));
    EXPECT_TRUE(simulated_absent(Feature::sync_wake_up));
    EXPECT_FALSE(simulated_absent(Feature::seccomp_notify));
    const KernelFeatures k = probe_kernel();
    EXPECT_FALSE(k[Feature::openat2].present);
    EXPECT_TRUE(k[Feature::openat2].simulated);
    EXPECT_FALSE(k[Feature::sync_wake_up].present);
    EXPECT_EQ(k[Feature::seccomp_notify].present, real[Feature::seccomp_notify].present);
    EXPECT_EQ(landlock_abi(), 0) << "the broker's own Landlock check sees it absent too";
}

TEST(KernelFeatures, NamesAreExactWords) {
    const Absent absent("sync_wake_upx,openat");
    EXPECT_FALSE(simulated_absent(Feature::sync_wake_up));
    EXPECT_FALSE(simulated_absent(Feature::openat2));
    EXPECT_EQ(feature_name(Feature::wait_killable_recv), "wait_killable_recv");
}

}  // namespace
}  // namespace fdbroker::sandbox
