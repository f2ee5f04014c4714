// Helpers for tests that run the real fdbroker binary with real workers.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace fdbroker::test {

// A private directory under /tmp, searchable by every user (workers may run as nobody), removed
// with everything in it at the end of the test.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string operator/(std::string_view name) const {
        return path_ + "/" + std::string(name);
    }

  private:
    std::string path_;
};

// Directories of 250-character names below `base`, `levels` deep, made by descriptor (a path longer
// than PATH_MAX is out of reach by name), and a file "f" holding `content` at the bottom: the innermost
// directory's absolute path.
std::string make_deep_tree(const std::string& base, int levels, std::string_view content);

void write_file(const std::string& path, std::string_view content, mode_t mode = 0644);
std::string read_file(const std::string& path);
bool exists(const std::string& path);
// Hands `path` and everything beneath it to nobody (the workers' default user): in transparent mode
// a worker may change only what its user could natively.
void give_to_nobody(const std::string& path);

struct Outcome {
    int status = -1;  // exit status, or 128+signal
    std::string out;
    std::string err;
    [[nodiscard]] std::vector<std::string> lines() const;  // stdout lines
};

// The worker's script: each group is one command for fdbroker_test_worker (see worker.cpp).
using Script = std::vector<std::vector<std::string>>;
std::vector<std::string> worker_argv(const Script& script);

// Writes `policy` to dir/policy.toml and runs
//   fdbroker run --policy dir/policy.toml EXTRA... -- PROGRAM...
// waiting at most two minutes.
Outcome run_broker(const TempDir& dir, const std::string& policy, const std::vector<std::string>& program,
                   const std::vector<std::string>& extra = {});
Outcome run_worker(const TempDir& dir, const std::string& policy, const Script& script,
                   const std::vector<std::string>& extra = {});
// Runs any command (argv[0] a path) and collects its output.
Outcome run_command(const std::vector<std::string>& argv, std::string_view input = {});

// A command running in the background with pipes to its stdin and stdout.
class Process {
  public:
    explicit Process(const std::vector<std::string>& argv);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    [[nodiscard]] pid_t pid() const { return pid_; }
    std::string read_line();  // "" at EOF
    // Reads standard error until it contains `text` (false at EOF or after two minutes). What was
    // read is kept: wait() still returns all of it.
    bool wait_for_stderr(std::string_view text);
    void write(std::string_view text);
    Outcome wait();  // closes stdin, reads the rest, reaps

  private:
    pid_t pid_ = -1;
    int in_ = -1, out_ = -1, err_ = -1;
    std::string pending_;
    std::string err_seen_;
};

// Where a worker finds `path`, a program or file of the build or source tree that it executes or
// reads: its copy in the directory the test run staged them in (support/stage.sh, the CTest fixture
// fdbroker_stage), which nobody can reach wherever the checkout lives; `path` itself when nothing is
// staged (a test program run by hand, outside ctest). The workers' programs below are staged already.
const std::string& staged(const std::string& path);

const char* fdbroker_bin();
const char* worker_bin();
const char* c_worker_bin();
// A static worker that attaches at the first instruction of main() (support/attach_at_once.c).
const char* attach_at_once_bin();
// Where workers find libfdbroker.so (a runtime path for their profiles).
const char* shared_library_dir();
bool is_root();
// Entries in /proc/self/fd: compared before and after to prove nothing leaked.
int count_open_fds();
// The same for another process (as root for one that is not ours): the broker's fd table.
int count_open_fds(pid_t pid);
// The threads of process `pid`, from /proc/PID/task. The broker starts one more while a request is
// stuck in the kernel (broker/core/event_loop.hpp).
std::size_t threads_of(pid_t pid);
// Waits (bounded, 10 s) until process `pid` runs more than `threads` threads.
bool wait_for_more_threads(pid_t pid, std::size_t threads);
// A field of /proc/PID/status ("CapEff", "NoNewPrivs", "Name"...), or "" if the process or the field
// is not there.
std::string proc_status_field(pid_t pid, const std::string& field);
// Whether `what` occurs in `text`.
bool contains(std::string_view text, std::string_view what);
// Swaps `path` back and forth between what it is and a symlink to `target` (through PATH.real and
// PATH.link beside it) until `stop`: the other side of a test racing the broker's path checks.
void swap_with_symlink(const std::string& path, const std::string& target, const std::atomic<bool>& stop);

}  // namespace fdbroker::test
