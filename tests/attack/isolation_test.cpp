// No worker, client or user can delay or break another's requests: not by opening something that
// makes an open wait (a FIFO, a file under a lease, a file system that never answers), not by leaving
// the descriptors it was sent unread (which count against the kernel's limit for every broker of the
// same user), not by holding more of the broker than its quota.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"
#include "support/serve_broker.hpp"

namespace fdbroker::test {
namespace {

// `fdbroker run` with a worker script, in the background, its lines read as they come.
std::unique_ptr<Process> start_worker(const TempDir& dir, const std::string& name, const std::string& policy,
                                      const Script& script, const std::vector<std::string>& wrapper = {}) {
    write_file(dir / name, policy);
    std::vector<std::string> argv = wrapper;
    for (const std::string& word : {std::string(fdbroker_bin()), std::string("run"), std::string("--policy"),
                                    dir / name, std::string("--")})
        argv.push_back(word);
    for (const std::string& word : worker_argv(script))
        argv.push_back(word);
    return std::make_unique<Process>(argv);
}

class Isolation : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody, which needs a root broker";
        ::mkdir((dir / "data").c_str(), 0777);
        write_file(dir / "data/file", "plain");
    }
    // Reading data/** and `more_reads`, then `extra` keys.
    [[nodiscard]] std::string policy(const std::string& extra = {},
                                     const std::string& more_reads = {}) const {
        return "version = 1\n[profile.default]\nread = [\"" + dir.path() + "/data/**\"" + more_reads + "]\n" +
               extra;
    }
    TempDir dir;
};

TEST_F(Isolation, AFifoOnlyAGlobGrantsIsRefusedWithoutWaiting) {
    ASSERT_EQ(::mkfifo((dir / "data/fifo").c_str(), 0666), 0);
    // Nobody writes to it: an open that waited for a writer would never answer.
    const Outcome o = run_worker(dir, policy(), {{"read", dir / "data/fifo"}, {"read", dir / "data/file"}});
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EACCES", "ok plain"})) << o.err;
}

TEST_F(Isolation, AnExplicitlyGrantedFifoMakesOnlyItsOwnRequestWait) {
    const std::string fifo = dir / "data/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0666), 0);
    auto worker = start_worker(dir, "policy.toml", policy({}, ", \"" + fifo + "\""),
                               {{"background", "read", fifo},
                                {"sleep", "300"},
                                {"read", dir / "data/file"},
                                {"wait-line"},
                                {"join"}});
    // The FIFO's open waits for a writer, as natively; the other request is answered meanwhile.
    EXPECT_EQ(worker->read_line(), "ok plain");
    EXPECT_EQ(worker->read_line(), "waiting");
    {
        const unique_fd writer(::open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
        ASSERT_TRUE(writer);
        ASSERT_EQ(::write(writer.get(), "through the fifo", 16), 16);
    }
    worker->write("go\n");
    EXPECT_EQ(worker->read_line(), "ok through the fifo");
    const Outcome o = worker->wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

TEST_F(Isolation, AnOpenWaitingForALeaseMakesOnlyItsOwnRequestWait) {
    ::mkdir((dir / "rw").c_str(), 0777);
    const std::string leased = dir / "rw/leased";
    const std::string rw =
        "write = [\"" + dir.path() + "/rw/**\"]\ncreate = [\"" + dir.path() + "/rw/**\"]\n";
    auto worker = start_worker(dir, "policy.toml", policy(rw, ", \"" + dir.path() + "/rw/**\""),
                               {{"write", leased, "under lease"},
                                {"lease", leased},
                                {"background", "read", leased},
                                {"wait-break"},
                                {"read", dir / "data/file"},
                                {"wait-line"},
                                {"unlease"},
                                {"join"}});
    EXPECT_EQ(worker->read_line(), "ok");
    ASSERT_EQ(worker->read_line(), "leased");
    // The broker is opening the file: the read must break the lease first, as natively, and waits
    // (lease-break-time, 45 s by default, unless the holder gives the lease up); the other does not.
    ASSERT_EQ(worker->read_line(), "breaking");
    EXPECT_EQ(worker->read_line(), "ok plain");
    EXPECT_EQ(worker->read_line(), "waiting");
    worker->write("go\n");
    std::vector<std::string> rest{worker->read_line(), worker->read_line()};
    std::sort(rest.begin(), rest.end());
    EXPECT_EQ(rest, (std::vector<std::string>{"ok under lease", "unleased"}));
    const Outcome o = worker->wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

// A FUSE file system that answers INIT and then nothing ever again: every lookup in it waits until
// the connection is aborted.
class SilentFuse {
  public:
    explicit SilentFuse(const std::string& mountpoint) : mountpoint_(mountpoint) {
        fuse_.reset(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
        if (!fuse_) return;
        const std::string options =
            "fd=" + std::to_string(fuse_.get()) + ",rootmode=40000,user_id=0,group_id=0,allow_other";
        if (::mount("fdbroker-silent", mountpoint.c_str(), "fuse", MS_NOSUID | MS_NODEV, options.c_str()) !=
            0) {
            fuse_.reset();
            return;
        }
        mounted_ = answer_init();
    }
    ~SilentFuse() {
        fuse_.reset();  // aborts every request still waiting
        if (mounted_) ::umount2(mountpoint_.c_str(), MNT_DETACH);
    }
    SilentFuse(const SilentFuse&) = delete;
    SilentFuse& operator=(const SilentFuse&) = delete;
    [[nodiscard]] bool mounted() const { return mounted_; }
    // The file system's server goes away: closing its end aborts the connection, so every request
    // waiting in it fails (ECONNABORTED) and every later one too (ENOTCONN), as when a FUSE server dies.
    void abort() { fuse_.reset(); }

  private:
    bool answer_init() {
        std::vector<char> buf(FUSE_MIN_READ_BUFFER + 65536);
        const ssize_t n = ::read(fuse_.get(), buf.data(), buf.size());
        if (n < static_cast<ssize_t>(sizeof(fuse_in_header) + sizeof(fuse_init_in))) return false;
        fuse_in_header in{};
        std::memcpy(&in, buf.data(), sizeof in);
        if (in.opcode != FUSE_INIT) return false;
        fuse_init_in init{};
        std::memcpy(&init, buf.data() + sizeof in, sizeof init);
        struct {
            fuse_out_header header;
            fuse_init_out init;
        } reply{};
        reply.header.len = sizeof reply;
        reply.header.unique = in.unique;
        reply.init.major = FUSE_KERNEL_VERSION;
        reply.init.minor = std::min<std::uint32_t>(init.minor, FUSE_KERNEL_MINOR_VERSION);
        reply.init.max_readahead = init.max_readahead;
        reply.init.max_write = 4096;
        reply.init.max_background = 16;
        reply.init.congestion_threshold = 12;
        reply.init.time_gran = 1;
        return ::write(fuse_.get(), &reply, sizeof reply) == static_cast<ssize_t>(sizeof reply);
    }

    std::string mountpoint_;
    unique_fd fuse_;
    bool mounted_ = false;
};

TEST_F(Isolation, AFileSystemThatNeverAnswersMakesOnlyItsOwnRequestsWait) {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse on this machine";
    ::mkdir((dir / "data/fuse").c_str(), 0755);
    SilentFuse fuse(dir / "data/fuse");
    if (!fuse.mounted()) GTEST_SKIP() << "cannot mount a FUSE file system here: " << std::strerror(errno);
    auto worker = start_worker(dir, "policy.toml", policy(),
                               {{"background", "read", dir / "data/fuse/x"},
                                {"background", "stat", dir / "data/fuse/y"},
                                {"sleep", "300"},
                                {"read", dir / "data/file"},
                                {"stat", dir / "data/file"},
                                {"wait-line"},
                                {"join"}});
    // Two requests wait in the silent file system; the others are answered meanwhile.
    EXPECT_EQ(worker->read_line(), "ok plain");
    EXPECT_EQ(worker->read_line(), "ok file size=5");
    EXPECT_EQ(worker->read_line(), "waiting");
    fuse.abort();
    worker->write("go\n");
    // What the kernel says of a request its file system's connection was aborted under.
    for (int i = 0; i < 2; ++i) {
        const std::string line = worker->read_line();
        EXPECT_TRUE(line == "ECONNABORTED" || line == "ENOTCONN") << line;
    }
    const Outcome o = worker->wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

TEST_F(Isolation, TransparentModeIsNotStalledByAFileSystemThatNeverAnswers) {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse on this machine";
    ::mkdir((dir / "data/fuse").c_str(), 0755);
    SilentFuse fuse(dir / "data/fuse");
    if (!fuse.mounted()) GTEST_SKIP() << "cannot mount a FUSE file system here: " << std::strerror(errno);
    // A shell: one cat stuck in the file system in the background, another reading a plain file.
    const std::string script = "cat " + dir / "data/fuse/x" + " <&0 & sleep 0.5; cat " + dir / "data/file" +
                               "; echo; read line; wait; true";
    write_file(dir / "policy.toml", policy("include = [\"runtime\"]\nexec = true\n"));
    Process worker({fdbroker_bin(), "run", "--transparent", "--policy", dir / "policy.toml", "--", "/bin/sh",
                    "-c", script});
    EXPECT_EQ(worker.read_line(), "plain");
    fuse.abort();
    worker.write("go\n");
    const Outcome o = worker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
    // The stuck cat got there, and failed only when the connection was aborted.
    EXPECT_NE(o.err.find("cat: " + dir / "data/fuse/x: "), std::string::npos) << o.err;
    EXPECT_EQ(o.err.find("Permission denied"), std::string::npos) << o.err;
}

TEST_F(Isolation, AUsersStuckRequestsAreBoundedByItsQuota) {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse on this machine";
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
    ::chmod(dir.path().c_str(), 0755);
    ::mkdir((dir / "data/fuse").c_str(), 0755);
    SilentFuse fuse(dir / "data/fuse");
    if (!fuse.mounted()) GTEST_SKIP() << "cannot mount a FUSE file system here: " << std::strerror(errno);
    const std::string reads = "read = [\"" + dir.path() + "/data/**\"]\n";
    ServeBroker broker(dir, "[profile.stuck]\nclients = { users = [1001] }\nquota = { requests = 2 }\n" +
                                reads + "[profile.other]\nclients = { users = [1002] }\n" + reads);
    ASSERT_TRUE(broker.ready());
    // Six requests into the silent file system, two at most in flight: the other four wait their turn
    // rather than each taking one of the broker's threads.
    Script script;
    for (int i = 0; i < 6; ++i)
        script.push_back({"background", "stat", dir / ("data/fuse/" + std::to_string(i))});
    script.push_back({"sleep", "300"});
    script.push_back({"wait-line"});
    script.push_back({"join"});
    Process stuck(broker.client(1001, 1001, script));
    ASSERT_EQ(stuck.read_line(), "waiting");
    const Outcome other = broker.run_client(1002, 1002, {{"read", dir / "data/file"}});
    EXPECT_EQ(other.lines(), std::vector<std::string>{"ok plain"}) << other.err;
    // The thread that serves, the watchdog, and one per request in flight (two, each relieved by a
    // helper that then waits for work itself or is the one serving).
    EXPECT_LE(threads_of(broker.pid()), 5u);
    fuse.abort();
    stuck.write("go\n");
    const Outcome o = stuck.wait();
    EXPECT_EQ(o.lines().size(), 6u) << o.out;  // one answer for each, once the connection is gone
    const Outcome stopped = broker.stop();
    EXPECT_NE(stopped.err.find("uid 1001 (profile 'stuck') has 2 requests in flight (quota 2)"),
              std::string::npos)
        << stopped.err;
}

bool have_prlimit() {
    return ::access("/usr/bin/prlimit", X_OK) == 0;
}

// Under RLIMIT_NOFILE 1024 (which is also how many descriptors the kernel lets root have in flight in
// unix sockets at once), a worker of one broker that sends requests and never reads the replies makes
// the broker hold descriptors in its socket buffers. None of that may make another broker's worker
// see an error.
TEST_F(Isolation, UnreadDescriptorsOfOneWorkerNeverBreakAnotherBrokersWorker) {
    if (!have_prlimit()) GTEST_SKIP() << "needs prlimit (util-linux)";
    const std::vector<std::string> low = {"/usr/bin/prlimit", "--nofile=1024:1024", "--"};
    auto flooder = start_worker(dir, "flood.toml", policy(),
                                {{"flood-unread", dir / "data/file", "16"}, {"wait-line"}}, low);
    ASSERT_EQ(flooder->read_line(), "flooding");
    ASSERT_EQ(flooder->read_line(), "waiting");
    write_file(dir / "other.toml", policy());
    std::vector<std::string> argv = low;
    for (const std::string& word : {std::string(fdbroker_bin()), std::string("run"), std::string("--policy"),
                                    dir / "other.toml", std::string("--")})
        argv.push_back(word);
    for (const std::string& word : worker_argv({{"stress", dir / "data/file", "4", "500"}}))
        argv.push_back(word);
    const Outcome other = run_command(argv);
    EXPECT_EQ(other.lines(), std::vector<std::string>{"ok 2000"}) << other.err;
    flooder->write("go\n");
    const Outcome flood = flooder->wait();
    EXPECT_EQ(flood.status, 0) << flood.err;
}

// A serve-mode broker for uids 1001 and 1002 under RLIMIT_NOFILE 1024 (its own limit then: the kernel's
// count of descriptors in flight for root too).
std::unique_ptr<ServeBroker> low_limit_broker(const TempDir& dir) {
    ::chmod(dir.path().c_str(), 0755);
    return std::make_unique<ServeBroker>(
        dir, "[profile.p]\nclients = { users = [1001, 1002] }\nread = [\"" + dir.path() + "/data/**\"]\n",
        std::vector<std::string>{"/usr/bin/prlimit", "--nofile=1024:1024", "--"});
}

TEST_F(Isolation, UnreadDescriptorsOfOneServeClientNeverBreakAnother) {
    if (!have_prlimit()) GTEST_SKIP() << "needs prlimit (util-linux)";
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
    const auto broker = low_limit_broker(dir);
    ASSERT_TRUE(broker->ready());
    Process flooder(broker->client(1001, 1001, {{"flood-unread", dir / "data/file", "16"}, {"wait-line"}}));
    ASSERT_EQ(flooder.read_line(), "flooding");
    ASSERT_EQ(flooder.read_line(), "waiting");
    const Outcome other = broker->run_client(1002, 1002, {{"stress", dir / "data/file", "4", "500"}});
    EXPECT_EQ(other.lines(), std::vector<std::string>{"ok 2000"}) << other.err;
    flooder.write("go\n");
    flooder.wait();
    const Outcome stopped = broker->stop();
    EXPECT_EQ(stopped.status, 0) << stopped.err;
    EXPECT_NE(stopped.err.find("uid 1001 (profile 'p') left descriptors unreceived"), std::string::npos)
        << stopped.err;
}

TEST_F(Isolation, ManyProcessesOfOneUserCannotTakeTheBrokersChannels) {
    if (!have_prlimit()) GTEST_SKIP() << "needs prlimit (util-linux)";
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
    const auto broker = low_limit_broker(dir);
    ASSERT_TRUE(broker->ready());
    // 130 processes with four channels each: 520 channels and as many pidfds would exhaust a broker
    // limited to 1024 descriptors. Its user's quota stops it well before.
    Process hog(broker->client(1001, 1001, {{"attach-procs", "130", "4"}, {"wait-line"}}));
    const std::string held = hog.read_line();
    EXPECT_TRUE(held.starts_with("ok held=")) << held;
    EXPECT_EQ(held.find("refused=0"), std::string::npos) << held;
    ASSERT_EQ(hog.read_line(), "waiting");
    const Outcome other =
        broker->run_client(1002, 1002, {{"read", dir / "data/file"}, {"stat", dir / "data/file"}});
    EXPECT_EQ(other.lines(), (std::vector<std::string>{"ok plain", "ok file size=5"})) << other.err;
    hog.write("go\n");
    hog.wait();
    const Outcome stopped = broker->stop();
    // Logged once for the episode, however many attaches were refused.
    const std::string line = "uid 1001 (profile 'p') reached its quota of";
    const auto first = stopped.err.find(line);
    EXPECT_NE(first, std::string::npos) << stopped.err;
    EXPECT_EQ(stopped.err.find(line, first + 1), std::string::npos) << stopped.err;
}

TEST_F(Isolation, ARateQuotaMakesRequestsWaitNotFail) {
    const Outcome o =
        run_worker(dir, policy("quota = { rate = 100 }\n"), {{"stress", dir / "data/file", "2", "150"}});
    EXPECT_EQ(o.lines(), std::vector<std::string>{"ok 300"}) << o.err;
    EXPECT_NE(o.err.find("reached its rate of 100 requests a second"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace fdbroker::test
