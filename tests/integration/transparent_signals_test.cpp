// Signals while transparent mode brokers a call. Natively the kernel never interrupts an open of a
// regular file, a stat, a mkdir…; under fdbroker a call waits for the broker's answer, and a signal
// that arrives meanwhile must never make the program see a call performed twice or not at all, nor
// (with SA_RESTART, as every Go program's handlers are installed) an EINTR.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

// Rounds of the signal worker: 11 brokered calls each, per calling thread.
constexpr long kIterations = 2000;
constexpr long kCallsPerIteration = 11;

struct Counts {
    long calls = -1;
    long eintr = -1;
    long wrong = -1;
    long signals = -1;
};

Counts parse_counts(const Outcome& r) {
    Counts c;
    if (std::sscanf(r.out.c_str(), "calls=%ld eintr=%ld wrong=%ld signals=%ld", &c.calls, &c.eintr, &c.wrong,
                    &c.signals) != 4)
        ADD_FAILURE() << "unexpected output: " << r.out << r.err;
    return c;
}

class TransparentSignals : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
        ::mkdir((dir / "out").c_str(), 0777);  // where the worker (nobody) makes its files
        give_to_nobody(dir / "out");
        ::mkdir((dir / "native").c_str(), 0755);
    }

    Outcome run(const std::vector<std::string>& program) {
        const std::string out = dir / "out";
        std::string policy = "version = 1\n[profile.default]\ninclude = [\"runtime\"]\n";
        policy += "read = [\"" + out + "\", \"" + out + "/**\"]\n";
        policy += "write = [\"" + out + "/**\"]\n";
        policy += "create = [\"" + out + "/**\"]\n";
        return run_broker(dir, policy, program, {"--transparent"});
    }

    // Runs the signal worker natively and under fdbroker. Natively nothing is interrupted; under
    // fdbroker no call may be performed twice or lost, and with SA_RESTART none may fail with EINTR.
    // The EINTRs seen under fdbroker are recorded as a property of the test.
    void signal_worker(const std::string& mode, long threads, bool restart) {
        std::vector<std::string> native{staged(SIGNAL_WORKER), mode, dir / "native",
                                        std::to_string(kIterations)};
        std::vector<std::string> brokered{staged(SIGNAL_WORKER), mode, dir / "out",
                                          std::to_string(kIterations)};
        if (restart) {
            native.emplace_back("restart");
            brokered.emplace_back("restart");
        }
        const Outcome n = run_command(native);
        EXPECT_EQ(n.status, 0) << n.err;
        const Counts kernel = parse_counts(n);
        EXPECT_EQ(kernel.eintr, 0) << "natively: " << n.out;
        EXPECT_EQ(kernel.wrong, 0) << "natively: " << n.out << n.err;

        const Outcome b = run(brokered);
        EXPECT_EQ(b.status, 0) << b.err;
        const Counts seen = parse_counts(b);
        EXPECT_EQ(seen.wrong, 0) << b.out << b.err;
        EXPECT_GE(seen.calls, kIterations * kCallsPerIteration * threads) << b.out;
        EXPECT_GT(seen.signals, 0) << b.out;
        if (restart) {
            EXPECT_EQ(seen.eintr, 0) << b.out;
        }
        RecordProperty("eintr", std::to_string(seen.eintr));
        RecordProperty("signals", std::to_string(seen.signals));
    }

    TempDir dir;
};

// Without SA_RESTART, the kernel makes a call fail with EINTR when the signal arrives before the
// broker has received the call (see docs/security-model.md, "Signals"): the call was never
// performed, which the worker checks by retrying it. Once the broker has received a call, only a
// fatal signal ends the wait, so a performed call is never reported as interrupted, never repeated.
TEST_F(TransparentSignals, TimerWithoutRestartNeverDoublesOrLosesACall) {
    signal_worker("timer", 1, false);
}

TEST_F(TransparentSignals, TimerSharedByTwoThreadsNeverDoublesOrLosesACall) {
    signal_worker("threads", 2, false);
}

TEST_F(TransparentSignals, ThreadDirectedSignalsNeverDoubleOrLoseACall) {
    signal_worker("tgkill", 1, false);
}

// With SA_RESTART the kernel restarts a call interrupted before the broker received it, so the
// program sees exactly what it would natively.
TEST_F(TransparentSignals, RestartingTimerHandlerSeesNoEintr) {
    signal_worker("timer", 1, true);
}

TEST_F(TransparentSignals, RestartingHandlerInTwoThreadsSeesNoEintr) {
    signal_worker("threads", 2, true);
}

TEST_F(TransparentSignals, RestartingHandlerOfThreadDirectedSignalsSeesNoEintr) {
    signal_worker("tgkill", 1, true);
}

// A Go program: its runtime preempts goroutines with SIGURG (SA_RESTART) while others create,
// stat, rename, link, list and remove files through the broker, checking every result.
TEST_F(TransparentSignals, GoProgramDoesFileIoWhilePreempted) {
#ifndef GO_FILES_BIN
    GTEST_SKIP()
        << "no Go toolchain (go) was found when the tests were built, so the Go program was not built";
#else
    constexpr long kRounds = 300;
    constexpr long kWriters = 4;
    constexpr long kOpsPerRound = 18;
    const Outcome r = run({staged(GO_FILES_BIN), dir / "out", std::to_string(kRounds)});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    long ops = -1, failures = -1, eintr = -1, gcs = -1;
    ASSERT_EQ(
        std::sscanf(r.out.c_str(), "ops=%ld failures=%ld eintr=%ld gcs=%ld", &ops, &failures, &eintr, &gcs),
        4)
        << r.out << r.err;
    EXPECT_EQ(ops, kRounds * kWriters * kOpsPerRound) << r.out;
    EXPECT_EQ(failures, 0) << r.err;
    EXPECT_EQ(eintr, 0) << r.out;
    // Each collection had to stop goroutines spinning without a preemption point: by signal.
    EXPECT_GT(gcs, 0) << r.out;
#endif
}

}  // namespace
}  // namespace fdbroker::test
