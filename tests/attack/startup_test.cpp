// A worker that talks to the broker before the broker is ready for it. The broker must have its end
// of the channel fully set up (credentials passed with every message) before the worker can run, so
// that even a request sent at the first instruction of main() is judged like any other.
#include <gtest/gtest.h>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

TEST(StartupRace, AWorkerThatAttachesAtOnceIsNeverThrownOut) {
    // Without the fix about one run in thirty lost its first attach ("the sender has exited (pid 0)"),
    // so 200 runs make a regression all but certain to show.
    TempDir dir;
    const std::string policy = "version = 1\n[profile.default]\nread = [\"/etc/hostname\"]\n";
    int failures = 0;
    std::string last;
    for (int i = 0; i < 200; ++i) {
        const Outcome o = run_broker(dir, policy, {attach_at_once_bin()});
        if (o.status != 0 || o.out != "ok\n") {
            ++failures;
            last = o.out + o.err;
        }
    }
    EXPECT_EQ(failures, 0) << last;
}

}  // namespace
}  // namespace fdbroker::test
