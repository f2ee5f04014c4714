// `fdbroker doctor`, and the fallbacks it promises, taken with FDBROKER_SIMULATE_ABSENT on a kernel
// that has the features.
#include <gtest/gtest.h>

#include <string>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

Outcome with_absent(const std::string& features, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"/usr/bin/env", "FDBROKER_SIMULATE_ABSENT=" + features});
    return run_command(argv);
}

bool kernel_has(const std::string& feature) {
    const Outcome o = run_command({fdbroker_bin(), "doctor", "--json"});
    return contains(o.out, "{\"name\":\"" + feature + "\",\"present\":true");
}

TEST(Doctor, ReportsEveryFeatureAndWhatHappensWithoutIt) {
    const Outcome o = run_command({fdbroker_bin(), "doctor"});
    for (const char* f : {"landlock", "seccomp_notify", "addfd_send", "wait_killable_recv", "sync_wake_up",
                          "pidfd_getfd", "openat2", "so_peerpidfd", "cgroup2", "user_namespaces"})
        EXPECT_TRUE(contains(o.out, std::string("  ") + f + ": ")) << f << "\n" << o.out;
    for (const char* mode : {"  run: ", "  run --transparent: ", "  serve: "})
        EXPECT_TRUE(contains(o.out, mode)) << o.out;
    EXPECT_EQ(o.status, contains(o.out, "  run: yes") ? 0 : 1) << o.out;
}

TEST(Doctor, APolicyWhoseNeedsAreMissingExitsNonZeroWithTheReason) {
    if (!kernel_has("landlock") || !kernel_has("openat2") || !kernel_has("seccomp_notify"))
        GTEST_SKIP() << "this kernel lacks what fdbroker run needs";
    const TempDir dir;
    write_file(dir / "p.toml", "version = 1\n[profile.default]\nread = [\"/etc/hostname\"]\n");
    EXPECT_EQ(run_command({fdbroker_bin(), "doctor", "--policy", dir / "p.toml"}).status, 0);
    const Outcome o = with_absent("landlock", {fdbroker_bin(), "doctor", "--policy", dir / "p.toml"});
    EXPECT_EQ(o.status, 1);
    EXPECT_TRUE(contains(o.out, "landlock: no (simulated absent")) << o.out;
    EXPECT_TRUE(contains(o.out, "cannot: landlock is missing: fdbroker run and serve pools refuse")) << o.out;
    const Outcome json = with_absent("addfd_send", {fdbroker_bin(), "doctor", "--json"});
    EXPECT_TRUE(contains(json.out, "{\"name\":\"addfd_send\",\"present\":false,\"simulated\":true"))
        << json.out;
    EXPECT_TRUE(
        contains(json.out, "{\"mode\":\"run --transparent\",\"possible\":false,\"missing\":[\"addfd_send\"]"))
        << json.out;
    // A profile written for transparent mode needs what it needs.
    write_file(dir / "t.toml", "version = 1\n[profile.default]\ninclude = [\"runtime\"]\n");
    EXPECT_EQ(with_absent("pidfd_getfd", {fdbroker_bin(), "doctor", "--policy", dir / "t.toml"}).status, 1);
    EXPECT_EQ(with_absent("pidfd_getfd", {fdbroker_bin(), "doctor", "--policy", dir / "p.toml"}).status, 0);
}

TEST(Fallbacks, WithoutLandlockRunRefusesToStart) {
    const TempDir dir;
    write_file(dir / "p.toml", "version = 1\n[profile.default]\ninclude = [\"runtime\"]\n");
    const Outcome o =
        with_absent("landlock", {fdbroker_bin(), "run", "--policy", dir / "p.toml", "--", "/bin/true"});
    EXPECT_EQ(o.status, 125);
    EXPECT_TRUE(contains(o.err, "no Landlock")) << o.err;
}

TEST(Fallbacks, TransparentModeWorksWithoutWaitKillableAndSyncWakeUp) {
    if (!kernel_has("landlock") || !kernel_has("openat2") || !kernel_has("addfd_send"))
        GTEST_SKIP() << "this kernel lacks what fdbroker run --transparent needs";
    const TempDir dir;
    write_file(dir / "hello", "hello\n");
    write_file(dir / "p.toml", "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nread = [\"" +
                                   dir / "hello" + "\"]\nwrite = [\"" + dir / "out" + "\"]\ncreate = [\"" +
                                   dir / "out" + "\"]\n");
    give_to_nobody(dir.path());  // transparent mode creates with the worker's own identity
    const Outcome o = with_absent("wait_killable_recv,sync_wake_up",
                                  {fdbroker_bin(), "run", "--transparent", "--policy", dir / "p.toml", "--",
                                   "/bin/cp", dir / "hello", dir / "out"});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(read_file(dir / "out"), "hello\n");
}

}  // namespace
}  // namespace fdbroker::test
