// The user's terminal. A worker shares it (its standard streams, often its controlling terminal); when
// the worker ends, nothing it started may stay behind to take the terminal and read what the user
// types next, and while it runs it may not make itself the terminal's foreground process group.
//
// The test plays a shell on a real pseudo-terminal: it runs `fdbroker run` as a foreground job, takes
// the terminal back when the job ends, and reads the next line the "user" (the test, on the master
// side) types.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

// Whether a process is still running (a zombie is not).
bool running(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const std::size_t close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// The child of `parent` whose name is `name`, or -1.
pid_t child_named(pid_t parent, const std::string& name) {
    const std::string dir =
        "/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children";
    std::ifstream children(dir);
    for (pid_t pid = 0; children >> pid;)
        if (proc_status_field(pid, "Name") == name) return pid;
    return -1;
}

// In the child that plays the shell: run `job` in the foreground of the terminal on stdin, wait for
// it, take the terminal back, tell `ready`, read one line and write it to `result`.
[[noreturn]] void shell(const std::string& slave, const std::vector<std::string>& job, int ready,
                        int result) {
    ::setsid();
    const int tty = ::open(slave.c_str(), O_RDWR);  // the session's controlling terminal from now on
    if (tty < 0) ::_exit(2);
    for (int fd = 0; fd < 3; ++fd)
        ::dup2(tty, fd);
    ::signal(SIGTTOU, SIG_IGN);
    ::signal(SIGTTIN, SIG_IGN);  // a read from the background then fails (EIO) instead of stopping us
    const pid_t child = ::fork();
    if (child == 0) {
        ::setpgid(0, 0);
        ::tcsetpgrp(STDIN_FILENO, ::getpid());
        ::signal(SIGTTOU, SIG_DFL);
        ::signal(SIGTTIN, SIG_DFL);
        std::vector<char*> argv;
        argv.reserve(job.size() + 1);
        for (const std::string& a : job)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::setpgid(child, child);
    ::tcsetpgrp(STDIN_FILENO, child);
    ::waitpid(child, nullptr, 0);
    ::tcsetpgrp(STDIN_FILENO, ::getpgrp());
    [[maybe_unused]] ssize_t w = ::write(ready, "r", 1);
    char line[256];
    const ssize_t n = ::read(STDIN_FILENO, line, sizeof line);
    const std::string got =
        n > 0 ? std::string(line, static_cast<std::size_t>(n)) : std::string("read failed");
    w = ::write(result, got.data(), got.size());
    ::_exit(0);
}

class Terminal : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody, which needs a root broker";
        ::mkdir((dir / "out").c_str(), 0777);
    }

    // Runs `script` under fdbroker as the foreground job of a shell on a pseudo-terminal, then types a
    // line; returns what the shell read.
    std::string type_after(const std::string& extra_policy, const Script& script) {
        master_.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
        if (!master_ || ::grantpt(master_.get()) != 0 || ::unlockpt(master_.get()) != 0) return "no pty";
        const std::string slave = ::ptsname(master_.get());
        write_file(dir / "policy.toml", "version = 1\n[profile.default]\ncreate = [\"" + dir.path() +
                                            "/out/**\"]\nwrite = [\"" + dir.path() + "/out/**\"]\n" +
                                            extra_policy);
        std::vector<std::string> job{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
        for (const std::string& word : worker_argv(script))
            job.push_back(word);
        int ready[2], result[2];
        if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(result, O_CLOEXEC) != 0) return "no pipe";
        const pid_t sh = ::fork();
        if (sh == 0) shell(slave, job, ready[1], result[1]);
        ::close(ready[1]);
        ::close(result[1]);
        char byte;
        std::string got = "shell gone";
        if (::read(ready[0], &byte, 1) == 1) {
            // The user types the next line, for the shell.
            [[maybe_unused]] ssize_t w = ::write(master_.get(), "my next line\n", 13);
            char buf[256];
            const ssize_t n = ::read(result[0], buf, sizeof buf);
            got = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "nothing";
        }
        ::close(ready[0]);
        ::close(result[0]);
        ::kill(sh, SIGKILL);
        ::waitpid(sh, nullptr, 0);
        return got;
    }

    unique_fd master_;
    TempDir dir;
};

TEST_F(Terminal, NothingLeftBehindCanReadTheNextLineTyped) {
    const std::string got = type_after("", {{"leftover", dir / "out/stolen", dir / "out/pid"}});
    EXPECT_EQ(got, "my next line\n");
    EXPECT_EQ(read_file(dir / "out/stolen"), "");
    const pid_t left = std::atoi(read_file(dir / "out/pid").c_str());
    ASSERT_GT(left, 0);
    EXPECT_FALSE(running(left)) << "the process the worker left behind is still running";
}

TEST_F(Terminal, ADetachedWorkerCannotReadTheNextLineTypedEither) {
    const std::string got =
        type_after("terminal = \"detached\"\n", {{"leftover", dir / "out/stolen", dir / "out/pid"}});
    EXPECT_EQ(got, "my next line\n");
    EXPECT_EQ(read_file(dir / "out/stolen"), "");
}

TEST_F(Terminal, AWorkerCannotMakeItselfTheForegroundGroup) {
    // While the worker runs, in the job fdbroker was started in: TIOCSPGRP, TIOCSCTTY, TIOCSETD and
    // TIOCCONS are refused as TIOCSTI is.
    const Outcome o = run_worker(dir, "version = 1\n[profile.default]\n",
                                 {{"direct", "tiocspgrp"},
                                  {"direct", "tiocsctty"},
                                  {"direct", "tiocsetd"},
                                  {"direct", "tioccons"},
                                  {"direct", "tiocsti"}});
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"EPERM", "EPERM", "EPERM", "EPERM", "EPERM"})) << o.err;
}

TEST_F(Terminal, JobControlIsAProfilesChoice) {
    const Outcome o = run_worker(dir, "version = 1\n[profile.default]\nterminal = \"job-control\"\n",
                                 {{"direct", "tiocspgrp"}});
    // Allowed by the filter; the kernel then answers as it would natively (no terminal here: ENOTTY).
    ASSERT_EQ(o.lines().size(), 1u) << o.err;
    EXPECT_NE(o.lines()[0], "EPERM");
}

TEST_F(Terminal, NoDescendantOutlivesABrokerThatIsKilled) {
    // SIGKILL leaves fdbroker no chance to clean up: the keeper must.
    write_file(dir / "policy.toml", "version = 1\n[profile.default]\ncreate = [\"" + dir.path() +
                                        "/out/**\"]\nwrite = [\"" + dir.path() + "/out/**\"]\n");
    std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
    for (const std::string& word :
         worker_argv({{"leftover", dir / "out/stolen", dir / "out/pid"}, {"wait-line"}}))
        argv.push_back(word);
    Process broker(argv);
    const std::string left = broker.read_line();
    ASSERT_TRUE(left.starts_with("left ")) << left;
    ASSERT_EQ(broker.read_line(), "waiting");
    const pid_t child = std::atoi(left.c_str() + 5);
    ::kill(broker.pid(), SIGKILL);
    const Outcome o = broker.wait();
    if (o.err.find("tracked through the process tree") != std::string::npos)
        GTEST_SKIP() << "no usable cgroup v2 here, and without one a broker killed outright cannot end what "
                        "its worker started: "
                     << o.err;
    // The keeper ends what is left as soon as the broker's end of its pipe closes.
    for (int i = 0; i < 2000 && running(child); ++i)
        ::usleep(5000);
    EXPECT_FALSE(running(child)) << "the worker's child outlived a broker killed with SIGKILL";
}

TEST_F(Terminal, TheKeeperHoldsNoCapabilitiesAndOnlyItsFilter) {
    // The keeper outlives the broker on purpose, so it must be worth nothing to whoever reaches it.
    write_file(dir / "policy.toml", "version = 1\n[profile.default]\n");
    std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--"};
    for (const std::string& word : worker_argv({{"wait-line"}}))
        argv.push_back(word);
    Process broker(argv);
    ASSERT_EQ(broker.read_line(), "waiting");
    const pid_t keeper = child_named(broker.pid(), "fdbroker-keeper");
    if (keeper < 0) {
        broker.write("\n");
        GTEST_SKIP() << "no keeper (no usable cgroup v2 here): " << broker.wait().err;
    }
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"})
        EXPECT_EQ(proc_status_field(keeper, set), "0000000000000000") << set;
    EXPECT_EQ(proc_status_field(keeper, "NoNewPrivs"), "1");
    EXPECT_EQ(proc_status_field(keeper, "Seccomp"), "2");
    EXPECT_NE(::getsid(keeper), ::getsid(broker.pid())) << "the keeper shares the worker's session";
    broker.write("\n");
    EXPECT_EQ(broker.wait().status, 0);
}

}  // namespace
}  // namespace fdbroker::test
