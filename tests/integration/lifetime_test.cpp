// Signals and process lifetime under `fdbroker run`, as if fdbroker were not there: the signals it
// forwards reach the program once, whether sent to fdbroker or typed on the terminal; a program in a
// pid namespace of its own dies of Ctrl-C and SIGTERM like any other (its init passes them on); the
// exit status is the program's, 128+N when it died of signal N; nothing confined outlives fdbroker; a
// brokered connect ends at once when the program has a signal to handle.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <dirent.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"
#include "support/socket_servers.hpp"

namespace fdbroker::test {
namespace {

using namespace std::chrono_literals;

// How the program runs: library mode, transparent mode, in a pid namespace of its own, or both.
enum class Mode { plain, transparent, pid_namespace, transparent_pid_namespace };

bool transparent(Mode m) {
    return m == Mode::transparent || m == Mode::transparent_pid_namespace;
}
bool pid_namespace(Mode m) {
    return m == Mode::pid_namespace || m == Mode::transparent_pid_namespace;
}

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
    switch (info.param) {
        case Mode::plain:
            return "Run";
        case Mode::transparent:
            return "Transparent";
        case Mode::pid_namespace:
            return "PidNamespace";
        case Mode::transparent_pid_namespace:
            return "TransparentPidNamespace";
    }
    return "Unknown";
}

// Polls `done` until it holds or `limit` has passed: a bound that detects a hang, not a timing claim.
bool within(std::chrono::seconds limit, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

std::vector<pid_t> children_of(pid_t parent) {
    std::ifstream list("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children");
    std::vector<pid_t> out;
    for (pid_t pid = 0; list >> pid;)
        out.push_back(pid);
    return out;
}

// fdbroker's worker: its child that is not the keeper (containment.hpp). In a pid namespace it is the
// namespace's init.
pid_t worker_of(pid_t broker) {
    pid_t found = -1;
    within(10s, [&] {
        for (const pid_t child : children_of(broker))
            if (proc_status_field(child, "Name") != "fdbroker-keeper") found = child;
        return found > 0;
    });
    return found;
}

bool has_keeper(pid_t broker) {
    for (const pid_t child : children_of(broker))
        if (proc_status_field(child, "Name") == "fdbroker-keeper") return true;
    return false;
}

char state_of(pid_t pid) {
    const std::string state = proc_status_field(pid, "State");
    return state.empty() ? '?' : state.front();
}

// Whether `sig` is still pending for process `pid` (its own set or its threads' shared one): a
// process that has taken it has forwarded it, or decided not to.
bool pending(pid_t pid, int sig) {
    const std::uint64_t bit = std::uint64_t{1} << (sig - 1);
    const std::uint64_t own = std::strtoull(proc_status_field(pid, "SigPnd").c_str(), nullptr, 16);
    const std::uint64_t shared = std::strtoull(proc_status_field(pid, "ShdPnd").c_str(), nullptr, 16);
    return ((own | shared) & bit) != 0;
}

// The processes whose command line is exactly `argv`.
std::vector<pid_t> processes_running(const std::vector<std::string>& argv) {
    std::string wanted;
    for (const std::string& a : argv)
        wanted += a + '\0';
    std::vector<pid_t> out;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return out;
    while (const dirent* e = ::readdir(proc)) {
        const pid_t pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        // read_file, not an istreambuf_iterator: a process that exits mid-read makes the read fail
        // with ESRCH, which libstdc++'s iterator throws instead of ending the text.
        const std::string text = read_file("/proc/" + std::to_string(pid) + "/cmdline");
        if (text == wanted && state_of(pid) != 'Z') out.push_back(pid);
    }
    ::closedir(proc);
    return out;
}

class Lifetime : public ::testing::TestWithParam<Mode> {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody, and namespaces need a root broker";
    }

    std::string policy(const std::string& extra = {}) const {
        // exec: the shell of the tests runs seq, grep, wc and sleep.
        std::string text = "version = 1\n[profile.default]\nexec = true\n";
        if (transparent(GetParam())) text += "include = [\"runtime\"]\n";
        if (pid_namespace(GetParam())) text += "namespaces = [\"pid\"]\n";
        return text + extra;
    }

    // fdbroker run ... -- PROGRAM, for a Process or a terminal.
    std::vector<std::string> command(const std::vector<std::string>& program, const std::string& extra = {}) {
        write_file(dir / "policy.toml", policy(extra));
        std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml"};
        if (transparent(GetParam())) argv.emplace_back("--transparent");
        argv.emplace_back("--");
        argv.insert(argv.end(), program.begin(), program.end());
        return argv;
    }

    Outcome run(const std::vector<std::string>& program, const std::string& extra = {}) {
        return run_command(command(program, extra));
    }

    TempDir dir;
};

// ---- Signals sent to fdbroker ----------------------------------------------------------------------

class Forwarding : public Lifetime {};

TEST_P(Forwarding, EachSignalSentToFdbrokerReachesTheProgramOnce) {
    const std::vector<std::pair<int, std::string>> signals = {
        {SIGINT, "INT"},   {SIGTERM, "TERM"}, {SIGHUP, "HUP"},    {SIGQUIT, "QUIT"},
        {SIGUSR1, "USR1"}, {SIGUSR2, "USR2"}, {SIGWINCH, "WINCH"}};
    Process broker(command({staged(SIGNAL_WORKER), "forward", std::to_string(signals.size())}));
    ASSERT_EQ(broker.read_line(), "ready");
    // One at a time: a signal delivered twice would show as a line of its own before the next one's.
    for (const auto& [sig, name] : signals) {
        ASSERT_EQ(::kill(broker.pid(), sig), 0);
        EXPECT_EQ(broker.read_line(), name + " user");
    }
    const Outcome o = broker.wait();
    EXPECT_EQ(o.status, 0) << o.err;
}

TEST_P(Forwarding, ExitStatusIsTheProgramsOwn) {
    const Outcome exited = run({"/bin/sh", "-c", "exit 42"});
    EXPECT_EQ(exited.status, 42) << exited.err;
    // 128+N when it dies of signal N, as a shell reports it.
    const Outcome usr1 = run({"/bin/sh", "-c", "kill -USR1 $$"});
    EXPECT_EQ(usr1.status, 128 + SIGUSR1) << usr1.err;
    const Outcome segv = run({"/bin/sh", "-c", "kill -SEGV $$"});
    EXPECT_EQ(segv.status, 128 + SIGSEGV) << segv.err;
}

TEST_P(Forwarding, SigtermEndsAProgramWithoutHandlers) {
    // In a pid namespace the program is not its pid 1, so the default action applies to it.
    Process broker(command({"/bin/sh", "-c", "echo ready; exec sleep 600"}));
    ASSERT_EQ(broker.read_line(), "ready");
    ASSERT_EQ(::kill(broker.pid(), SIGTERM), 0);
    const Outcome o = broker.wait();
    EXPECT_EQ(o.status, 128 + SIGTERM) << o.err;
}

INSTANTIATE_TEST_SUITE_P(Modes, Forwarding,
                         ::testing::Values(Mode::plain, Mode::transparent, Mode::pid_namespace,
                                           Mode::transparent_pid_namespace),
                         mode_name);

// ---- Signals typed on the terminal -----------------------------------------------------------------

// fdbroker as the foreground job of a pseudo-terminal (the session's leader, so the terminal's
// foreground process group is its own): its standard input is the terminal, its output pipes.
class TerminalJob {
  public:
    explicit TerminalJob(const std::vector<std::string>& argv) {
        master_.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
        if (!master_ || ::grantpt(master_.get()) != 0 || ::unlockpt(master_.get()) != 0) return;
        const std::string slave = ::ptsname(master_.get());
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) return;
        std::vector<char*> args;
        args.reserve(argv.size() + 1);
        for (const std::string& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::setsid();
            const int tty = ::open(slave.c_str(), O_RDWR);  // the controlling terminal from now on
            if (tty < 0 || ::dup2(tty, STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0 ||
                ::dup2(out[1], STDERR_FILENO) < 0)
                ::_exit(126);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(out[1]);
        out_.reset(out[0]);
    }
    ~TerminalJob() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }
    TerminalJob(const TerminalJob&) = delete;
    TerminalJob& operator=(const TerminalJob&) = delete;

    [[nodiscard]] bool started() const { return pid_ > 0 && master_; }
    [[nodiscard]] pid_t pid() const { return pid_; }

    // What the user types (Ctrl-C is "\x03").
    void type(std::string_view keys) {
        [[maybe_unused]] const ssize_t n = ::write(master_.get(), keys.data(), keys.size());
    }
    // The window is resized: the kernel sends SIGWINCH to the foreground process group.
    void resize() {
        winsize size{};
        ::ioctl(master_.get(), TIOCGWINSZ, &size);
        size.ws_row = static_cast<unsigned short>(size.ws_row == 40 ? 41 : 40);
        size.ws_col = 100;
        ::ioctl(master_.get(), TIOCSWINSZ, &size);
    }

    std::string read_line() {
        for (;;) {
            const std::size_t nl = pending_.find('\n');
            if (nl != std::string::npos) {
                std::string line = pending_.substr(0, nl);
                pending_.erase(0, nl + 1);
                return line;
            }
            pollfd p{out_.get(), POLLIN, 0};
            if (::poll(&p, 1, 60'000) <= 0) return "(nothing within a minute)";
            char buf[4096];
            const ssize_t n = ::read(out_.get(), buf, sizeof buf);
            if (n <= 0) return std::exchange(pending_, {});
            pending_.append(buf, static_cast<std::size_t>(n));
        }
    }

    // fdbroker's exit status (128+N if it died of signal N).
    int wait() {
        int status = 0;
        const bool ended = within(60s, [&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
        if (!ended) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

  private:
    unique_fd master_;
    unique_fd out_;
    pid_t pid_ = -1;
    std::string pending_;
};

class TerminalSignals : public Lifetime {
  protected:
    // Generates a terminal signal while everything that could pass it on again is stopped, so that the
    // program takes the terminal's own before any copy could arrive (two deliveries of one pending
    // signal would merge into one); then lets them go on, waits until each has taken it, and sends a
    // marker through them. A copy sent on would arrive before the marker, on its line or before it.
    void typed_once(TerminalJob& job, const std::vector<pid_t>& forwarders, int sig, const std::string& name,
                    const std::function<void()>& generate) {
        for (const pid_t p : forwarders) {
            ASSERT_EQ(::kill(p, SIGSTOP), 0);
            ASSERT_TRUE(within(10s, [&] { return state_of(p) == 'T'; }));
        }
        generate();
        EXPECT_EQ(job.read_line(), name + " kernel");
        // All go on before any is waited for: fdbroker may still be waiting for the init to finish
        // setting itself up.
        for (const pid_t p : forwarders)
            ASSERT_EQ(::kill(p, SIGCONT), 0);
        for (const pid_t p : forwarders) {
            ASSERT_TRUE(within(10s, [&] { return !pending(p, sig); }))
                << "pid " << p << " (" << proc_status_field(p, "Name") << ", "
                << proc_status_field(p, "State") << ", blocked " << proc_status_field(p, "SigBlk")
                << ", pending " << proc_status_field(p, "SigPnd") << "/" << proc_status_field(p, "ShdPnd")
                << ") kept signal " << sig;
        }
        ASSERT_EQ(::kill(job.pid(), SIGUSR1), 0);
        EXPECT_EQ(job.read_line(), "USR1 user") << "after " << name;
    }
};

TEST_P(TerminalSignals, CtrlCCtrlBackslashAndResizeArriveOnce) {
    TerminalJob job(command({staged(SIGNAL_WORKER), "forward", "6"}));
    if (!job.started()) GTEST_SKIP() << "no pseudo-terminal on this machine (/dev/ptmx)";
    ASSERT_EQ(job.read_line(), "ready");
    std::vector<pid_t> forwarders{job.pid()};
    if (pid_namespace(GetParam())) forwarders.push_back(worker_of(job.pid()));  // its init
    typed_once(job, forwarders, SIGINT, "INT", [&] { job.type("\x03"); });
    typed_once(job, forwarders, SIGQUIT, "QUIT", [&] { job.type("\x1c"); });
    typed_once(job, forwarders, SIGWINCH, "WINCH", [&] { job.resize(); });
    EXPECT_EQ(job.wait(), 0);
}

TEST_P(TerminalSignals, ADetachedProgramGetsThemFromFdbroker) {
    // In a session of its own the program is not in the terminal's foreground group: fdbroker alone
    // receives Ctrl-C, and passes it on.
    TerminalJob job(command({staged(SIGNAL_WORKER), "forward", "2"}, "terminal = \"detached\"\n"));
    if (!job.started()) GTEST_SKIP() << "no pseudo-terminal on this machine (/dev/ptmx)";
    ASSERT_EQ(job.read_line(), "ready");
    job.type("\x03");
    EXPECT_EQ(job.read_line(), "INT user");
    ASSERT_EQ(::kill(job.pid(), SIGUSR1), 0);
    EXPECT_EQ(job.read_line(), "USR1 user");
    EXPECT_EQ(job.wait(), 0);
}

TEST_P(TerminalSignals, CtrlCEndsAProgramWithoutHandlers) {
    TerminalJob job(command({"/bin/sh", "-c", "echo ready; exec sleep 600"}));
    if (!job.started()) GTEST_SKIP() << "no pseudo-terminal on this machine (/dev/ptmx)";
    ASSERT_EQ(job.read_line(), "ready");
    job.type("\x03");
    EXPECT_EQ(job.wait(), 128 + SIGINT);
}

INSTANTIATE_TEST_SUITE_P(Modes, TerminalSignals,
                         ::testing::Values(Mode::plain, Mode::transparent, Mode::pid_namespace,
                                           Mode::transparent_pid_namespace),
                         mode_name);

// ---- Nothing outlives fdbroker ---------------------------------------------------------------------

class Tree : public Lifetime {
  protected:
    // A program that leaves two processes running: `sleep SECONDS`, a number no other test uses.
    std::vector<std::string> sleeper() {
        seconds_ = std::to_string(500000 + ::getpid() % 100000 + ++runs_);
        return {"/bin/sh", "-c", "sleep " + seconds_ + " & sleep " + seconds_ + " & echo started; wait"};
    }
    [[nodiscard]] bool sleepers_gone() const {
        return within(10s, [&] { return processes_running({"sleep", seconds_}).empty(); });
    }

    std::string seconds_;
    int runs_ = 0;
};

TEST_P(Tree, NothingOutlivesSigterm) {
    Process broker(command(sleeper()));
    ASSERT_EQ(broker.read_line(), "started");
    ASSERT_TRUE(within(10s, [&] { return processes_running({"sleep", seconds_}).size() == 2; }));
    ASSERT_EQ(::kill(broker.pid(), SIGTERM), 0);
    // sh dies of it; what it started is ended with it.
    EXPECT_EQ(broker.wait().status, 128 + SIGTERM);
    EXPECT_TRUE(sleepers_gone());
}

TEST_P(Tree, NothingOutlivesSigkill) {
    Process broker(command(sleeper()));
    ASSERT_EQ(broker.read_line(), "started");
    ASSERT_TRUE(within(10s, [&] { return processes_running({"sleep", seconds_}).size() == 2; }));
    if (!pid_namespace(GetParam()) && !has_keeper(broker.pid())) {
        GTEST_SKIP() << "no cgroup v2 for fdbroker here: without its keeper, what the worker started "
                        "survives a broker killed with SIGKILL (docs/security-model.md)";
    }
    ASSERT_EQ(::kill(broker.pid(), SIGKILL), 0);
    EXPECT_EQ(broker.wait().status, 128 + SIGKILL);
    EXPECT_TRUE(sleepers_gone());
}

INSTANTIATE_TEST_SUITE_P(Modes, Tree,
                         ::testing::Values(Mode::plain, Mode::transparent, Mode::pid_namespace,
                                           Mode::transparent_pid_namespace),
                         mode_name);

// ---- The init of a pid namespace -------------------------------------------------------------------

class PidInit : public Lifetime {};

TEST_P(PidInit, TheProgramRunsUnderAnInitThatReapsOrphans) {
    // The program leaves an orphan that exits at once: re-parented to pid 1, it must not stay a zombie.
    Process broker(command({"/bin/sh", "-c", "(sleep 0 &); echo ready; exec sleep 600"}));
    ASSERT_EQ(broker.read_line(), "ready");
    const pid_t init = worker_of(broker.pid());
    ASSERT_GT(init, 0);
    const std::string ns_pids = proc_status_field(init, "NSpid");
    EXPECT_EQ(ns_pids.substr(ns_pids.find_last_of(" \t") + 1), "1")
        << "not pid 1 of its namespace: " << ns_pids;
    // Confined like the program: the worker's user, no capabilities, the same filter. The init loads
    // its filter itself once it has forked the program, so the program may speak first.
    EXPECT_EQ(proc_status_field(init, "CapEff"), "0000000000000000");
    EXPECT_EQ(proc_status_field(init, "NoNewPrivs"), "1");
    EXPECT_TRUE(within(10s, [&] { return proc_status_field(init, "Seccomp") == "2"; }))
        << "Seccomp: " << proc_status_field(init, "Seccomp");
    EXPECT_EQ(proc_status_field(init, "Uid").substr(0, 5), "65534");
    EXPECT_TRUE(within(10s, [&] { return children_of(init).size() == 1; }))
        << "the orphan was not reaped: " << children_of(init).size() << " children";
    ASSERT_EQ(::kill(broker.pid(), SIGTERM), 0);
    EXPECT_EQ(broker.wait().status, 128 + SIGTERM);
}

INSTANTIATE_TEST_SUITE_P(Modes, PidInit,
                         ::testing::Values(Mode::pid_namespace, Mode::transparent_pid_namespace), mode_name);

// ---- A brokered connect interrupted by a signal ----------------------------------------------------

class InterruptedConnect : public Lifetime {
  protected:
    std::vector<std::string> connect_command(const std::vector<std::string>& program,
                                             const std::string& timeout, const std::string& more = {}) {
        return command(program, "connect = [\"tcp:127.0.0.1:" + std::to_string(peer_.port()) +
                                    "\"]\nconnect_timeout = \"" + timeout + "\"\n" + more);
    }

    // Waits until the broker has made the program's connect: a socket in SYN_SENT towards the peer
    // (the peer never answers it). A signal that arrived before then would end the call in the kernel,
    // without the broker.
    [[nodiscard]] bool connect_in_broker() const {
        char peer[16];
        std::snprintf(peer, sizeof peer, ":%04X", static_cast<unsigned>(peer_.port()));
        return within(10s, [&] {
            std::ifstream tcp("/proc/net/tcp");
            std::string sl, local, remote, state, rest;
            std::getline(tcp, rest);  // the header
            while (tcp >> sl >> local >> remote >> state && std::getline(tcp, rest))
                if (remote.ends_with(peer) && state == "02") return true;
            return false;
        });
    }

    Unanswering peer_;
};

TEST_P(InterruptedConnect, ACaughtSignalEndsItWithEINTR) {
    Process broker(connect_command({staged(SIGNAL_WORKER), "connect", std::to_string(peer_.port())}, "30s"));
    ASSERT_EQ(broker.read_line(), "connecting");
    ASSERT_TRUE(connect_in_broker());
    const auto sent = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(broker.pid(), SIGINT), 0);
    EXPECT_EQ(broker.read_line(), "handled");
    EXPECT_EQ(broker.read_line(), "connect EINTR");
    // A hang detector: the profile would have the connect wait 30 s.
    const auto took = std::chrono::steady_clock::now() - sent;
    EXPECT_LT(took, 5s);
    RecordProperty("ms_from_signal_to_eintr",
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
    EXPECT_EQ(broker.wait().status, 0);
}

TEST_P(InterruptedConnect, WithSaRestartTheHandlerRunsAndTheConnectWaitsOn) {
    // Natively: the handler runs, and the connect is made again and waits for the same attempt.
    Process broker(
        connect_command({staged(SIGNAL_WORKER), "connect", std::to_string(peer_.port()), "restart"}, "3s"));
    ASSERT_EQ(broker.read_line(), "connecting");
    ASSERT_TRUE(connect_in_broker());
    ASSERT_EQ(::kill(broker.pid(), SIGINT), 0);
    EXPECT_EQ(broker.read_line(), "handled");
    // Made again, it finds the same attempt in progress and waits on for it (not EALREADY).
    EXPECT_EQ(broker.read_line(), "connect ETIMEDOUT");
    EXPECT_EQ(broker.wait().status, 0);
}

TEST_P(InterruptedConnect, CtrlCInterruptsPython) {
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3 on this machine";
    write_file(dir / "connect.py",
               "import socket, sys\n"
               "s = socket.socket()\n"
               "print('connecting', flush=True)\n"
               "try:\n"
               "    s.connect(('127.0.0.1', int(sys.argv[1])))\n"
               "except KeyboardInterrupt:\n"
               "    print('KeyboardInterrupt', flush=True)\n");
    TerminalJob job(connect_command({"/usr/bin/python3", dir / "connect.py", std::to_string(peer_.port())},
                                    "120s", "read = [\"" + (dir / "connect.py") + "\"]\n"));
    if (!job.started()) GTEST_SKIP() << "no pseudo-terminal on this machine (/dev/ptmx)";
    ASSERT_EQ(job.read_line(), "connecting");
    ASSERT_TRUE(connect_in_broker());
    const auto typed = std::chrono::steady_clock::now();
    job.type("\x03");
    EXPECT_EQ(job.read_line(), "KeyboardInterrupt");
    EXPECT_LT(std::chrono::steady_clock::now() - typed, 5s);
    EXPECT_EQ(job.wait(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, InterruptedConnect,
                         ::testing::Values(Mode::transparent, Mode::transparent_pid_namespace), mode_name);

// ---- Pipelines -------------------------------------------------------------------------------------

class Pipeline : public Lifetime {};

TEST_P(Pipeline, AThreeStagePipelineCompletesEveryTime) {
    const std::vector<std::string> pipeline{"/bin/sh", "-c", "seq 1 100000 | grep 7 | wc -l"};
    const Outcome native = run_command(pipeline);
    ASSERT_EQ(native.status, 0) << native.err;
    int completed = 0;
    for (int i = 0; i < 100; ++i) {
        const Outcome o = run(pipeline);
        EXPECT_EQ(o.status, 0) << "run " << i << ": " << o.err;
        EXPECT_EQ(o.out, native.out) << "run " << i << ": " << o.err;
        completed += o.status == 0 && o.out == native.out;
        if (::testing::Test::HasFailure()) break;
    }
    EXPECT_EQ(completed, 100);
}

INSTANTIATE_TEST_SUITE_P(Modes, Pipeline,
                         ::testing::Values(Mode::transparent, Mode::transparent_pid_namespace), mode_name);

}  // namespace
}  // namespace fdbroker::test
