// Faults the broker must survive: workers that die mid-request, stall without reading, send
// descriptors nobody asked for, and an audit stream that cannot be written. The broker's own fd table
// (/proc/PID/fd, read as root) must come back to where it was.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

// The broker closes a dead session when its loop next sees the hangup: poll, bounded, for the
// count to come back rather than sampling it once.
int settle_fds_of(pid_t pid, int want) {
    int n = count_open_fds(pid);
    for (int i = 0; i < 500 && n != want; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        n = count_open_fds(pid);
    }
    return n;
}

// What the broker's descriptors are, for the message of a count that does not settle.
std::string fds_of(pid_t pid) {
    std::string out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(
             dir, std::filesystem::directory_options::skip_permission_denied)) {
        std::error_code ec;
        out += entry.path().filename().string() + " -> " +
               std::filesystem::read_symlink(entry.path(), ec).string() + "\n";
    }
    return out;
}

// The broker's descriptor count once it holds none of the files under `dir` it handed out: it closes
// its own copy after the reply, so a count taken as the worker reads may still include it.
int settled_baseline(pid_t pid, const std::string& dir) {
    for (int i = 0; i < 500 && fds_of(pid).find(dir) != std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return count_open_fds(pid);
}

class Faults : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "ok").c_str(), 0755);
        ::mkdir((dir / "secret").c_str(), 0755);
        write_file(dir / "ok/file", "allowed");
        write_file(dir / "secret/file", "SECRET");
        write_file(dir / "policy.toml",
                   "version = 1\n[profile.default]\nread = [\"" + dir.path() + "/ok/**\"]\n");
    }
    // `fdbroker run` with the worker script; the test talks to it line by line.
    std::vector<std::string> broker_argv(const Script& script) const {
        std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
        const auto w = worker_argv(script);
        argv.insert(argv.end(), w.begin(), w.end());
        return argv;
    }
    TempDir dir;
};

TEST_F(Faults, WorkersKilledMidRequestLeaveTheBrokerServingAndLeakNothing) {
    if (!is_root()) GTEST_SKIP() << "reads the broker's fd table";
    const std::string file = dir / "ok/file";
    Process broker(broker_argv(
        {{"read", file}, {"wait-line"}, {"killed-mid-request", file, "20"}, {"read", file}, {"wait-line"}}));
    ASSERT_EQ(broker.read_line(), "ok allowed");
    ASSERT_EQ(broker.read_line(), "waiting");
    const int baseline = settled_baseline(broker.pid(), dir.path());
    const std::string before = fds_of(broker.pid());
    ASSERT_GT(baseline, 0);
    broker.write("go\n");
    EXPECT_EQ(broker.read_line(), "killed 20");
    EXPECT_EQ(broker.read_line(), "ok allowed");
    EXPECT_EQ(broker.read_line(), "waiting");
    EXPECT_EQ(settle_fds_of(broker.pid(), baseline), baseline) << before << "now:\n" << fds_of(broker.pid());
    broker.write("go\n");
    const Outcome o = broker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

TEST_F(Faults, UnexpectedDescriptorsAreClosedInTheBroker) {
    if (!is_root()) GTEST_SKIP() << "reads the broker's fd table";
    const std::string file = dir / "ok/file";
    Script script{{"read", file}, {"wait-line"}};
    for (int i = 0; i < 10; ++i)
        script.push_back({"unexpected-fd", file});
    script.push_back({"read", file});
    script.push_back({"wait-line"});
    Process broker(broker_argv(script));
    ASSERT_EQ(broker.read_line(), "ok allowed");
    ASSERT_EQ(broker.read_line(), "waiting");
    const int baseline = settled_baseline(broker.pid(), dir.path());
    const std::string before = fds_of(broker.pid());
    broker.write("go\n");
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(broker.read_line(), "fd-closed");
    EXPECT_EQ(broker.read_line(), "ok allowed");
    EXPECT_EQ(broker.read_line(), "waiting");
    EXPECT_EQ(settle_fds_of(broker.pid(), baseline), baseline) << before << "now:\n" << fds_of(broker.pid());
    broker.write("go\n");
    const Outcome o = broker.wait();
    EXPECT_EQ(o.status, 0);
    EXPECT_NE(o.err.find("closing a worker channel"), std::string::npos) << o.err;
}

TEST_F(Faults, AProcessThatNeverReadsItsRepliesDelaysNobody) {
    const Outcome o =
        run_worker(dir, "version = 1\n[profile.default]\nread = [\"" + dir.path() + "/ok/**\"]\n",
                   {{"stall-while-busy", dir / "ok/file", "2000"}, {"read", dir / "ok/file"}});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok failures=0", "ok allowed"}));
}

TEST_F(Faults, AFullAuditDiskStillEnforcesDecisionsAndLogsOnce) {
    const std::string policy = "version = 1\n[profile.default]\nread = [\"" + dir.path() + "/ok/**\"]\n";
    const Outcome o = run_worker(dir, policy,
                                 {{"read", dir / "ok/file"},
                                  {"read", dir / "secret/file"},
                                  {"stat", dir / "secret/file"},
                                  {"read", dir / "ok/file"}},
                                 {"--audit", "/dev/full"});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok allowed", "EACCES", "EACCES", "ok allowed"}));
    const std::string needle = "audit stream unwritable";
    const auto first = o.err.find(needle);
    ASSERT_NE(first, std::string::npos) << o.err;
    EXPECT_EQ(o.err.find(needle, first + 1), std::string::npos) << o.err;
}

// The lowest fd number the process does not use: the kernel's next descriptor, so a soft
// RLIMIT_NOFILE of exactly that leaves the process no room for one more.
int lowest_free_fd_of(pid_t pid) {
    std::vector<bool> used;
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (d == nullptr) return -1;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const auto fd = static_cast<std::size_t>(std::stoul(e->d_name));
        if (fd >= used.size()) used.resize(fd + 1);
        used[fd] = true;
    }
    ::closedir(d);
    return static_cast<int>(std::find(used.begin(), used.end(), false) - used.begin());
}

TEST_F(Faults, ABrokerOutOfDescriptorsAnswersEMFILEAndRecovers) {
    if (!is_root()) GTEST_SKIP() << "lowers the broker's RLIMIT_NOFILE";
    const std::string file = dir / "ok/file";
    Process broker(broker_argv({{"read", file},
                                {"wait-line"},
                                {"read", file},
                                {"read", file},
                                {"wait-line"},
                                {"read", file},
                                {"stat", file}}));
    ASSERT_EQ(broker.read_line(), "ok allowed");
    ASSERT_EQ(broker.read_line(), "waiting");
    rlimit old{};
    ASSERT_EQ(::prlimit(broker.pid(), RLIMIT_NOFILE, nullptr, &old), 0);
    rlimit full = old;
    // The descriptor handed over for the first read is closed once the broker's turn ends, which may
    // be after the worker printed its answer: wait until the lowest free descriptor stays put, so that
    // none below the limit frees up once it is set.
    int lowest = lowest_free_fd_of(broker.pid());
    for (int same = 0, tries = 0; same < 5 && tries < 400; ++tries) {
        ::usleep(10'000);
        const int now = lowest_free_fd_of(broker.pid());
        same = now == lowest ? same + 1 : 0;
        lowest = now;
    }
    full.rlim_cur = static_cast<rlim_t>(lowest);
    ASSERT_EQ(::prlimit(broker.pid(), RLIMIT_NOFILE, &full, nullptr), 0);
    broker.write("go\n");
    EXPECT_EQ(broker.read_line(), "EMFILE");
    EXPECT_EQ(broker.read_line(), "EMFILE");  // the channel is still served, just as poor
    EXPECT_EQ(broker.read_line(), "waiting");
    ASSERT_EQ(::prlimit(broker.pid(), RLIMIT_NOFILE, &old, nullptr), 0);  // descriptors to spare again
    broker.write("go\n");
    EXPECT_EQ(broker.read_line(), "ok allowed");
    EXPECT_EQ(broker.read_line(), "ok file size=7");
    const Outcome o = broker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

}  // namespace
}  // namespace fdbroker::test
