// fdbroker_load: N worker processes × M mixed requests against a real `fdbroker run`, round after round.
//
//   fdbroker_load [--workers N] [--requests M] [--rounds R]
//
// The driver writes a policy and a small tree, starts `fdbroker run -- fdbroker_load --worker N M R`,
// and between rounds reads the broker's open fd count and RSS from /proc (as root). In each round the
// worker forks N children (each gets its own channel from libfdbroker) that make M requests each:
// open, stat, access and readlink, allowed and denied, with a known right answer. A reply with a
// wrong answer is "mismatched", a call that fails for want of a reply (ECONNRESET, ENOTCONN…) is
// "lost". Exit status 0 only when nothing was lost or mismatched, the fd count is back to its
// baseline after every round and RSS did not grow after the first round by more than --rss-slack KiB.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "fdbroker/fdbroker.h"
#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"

namespace {

struct Tally {
    int done = 0;
    int mismatched = 0;
    int lost = 0;
};

bool is_lost(int e) {
    return e == ECONNRESET || e == ENOTCONN || e == EPIPE || e == EIO || e == EBADMSG;
}

// One request of kind `k` against the tree in `dir`; counts into t.
void one_request(const std::string& dir, int k, ino_t file_ino, Tally& t) {
    const std::string file = dir + "/ok/file", link = dir + "/ok/link", secret = dir + "/secret/file";
    const std::string missing = dir + "/ok/missing";
    int rc = 0;
    bool right = false;
    switch (k) {
        case 0: {  // allowed open: the fd must be that very file
            rc = fdbroker_open(file.c_str(), O_RDONLY | O_CLOEXEC);
            const fdbroker::unique_fd fd(rc >= 0 ? rc : -1);
            struct ::stat st {};
            right = rc >= 0 && ::fstat(fd.get(), &st) == 0 && st.st_ino == file_ino;
            break;
        }
        case 1:
            rc = fdbroker_open(secret.c_str(), O_RDONLY | O_CLOEXEC);
            if (rc >= 0) ::close(rc);
            right = rc < 0 && errno == EACCES;
            break;
        case 2: {
            struct ::stat st {};
            rc = fdbroker_stat(file.c_str(), &st);
            right = rc == 0 && st.st_ino == file_ino && st.st_size == 7;
            break;
        }
        case 3: {
            struct ::stat st {};
            rc = fdbroker_stat(secret.c_str(), &st);
            right = rc < 0 && errno == EACCES;
            break;
        }
        case 4:
            rc = fdbroker_access(file.c_str(), R_OK);
            right = rc == 0;
            break;
        case 5:
            rc = fdbroker_access(secret.c_str(), R_OK);
            right = rc < 0 && errno == EACCES;
            break;
        case 6: {
            char buf[64];
            const ssize_t n = fdbroker_readlink(link.c_str(), buf, sizeof buf);
            rc = n < 0 ? -1 : 0;
            right = n == 4 && std::memcmp(buf, "file", 4) == 0;
            break;
        }
        default:
            rc = fdbroker_open(missing.c_str(), O_RDONLY | O_CLOEXEC);
            if (rc >= 0) ::close(rc);
            right = rc < 0 && errno == ENOENT;
            break;
    }
    ++t.done;
    if (right) return;
    if (rc < 0 && is_lost(errno))
        ++t.lost;
    else
        ++t.mismatched;
}

// Worker mode, inside `fdbroker run`.
int worker(const std::string& dir, int workers, int requests, int rounds) {
    struct ::stat st {};
    if (fdbroker_stat((dir + "/ok/file").c_str(), &st) != 0) return std::perror("stat"), 1;
    // The broker has set up everything it keeps for this worker: the driver's baseline.
    std::printf("ready\n");
    std::fflush(stdout);
    char ready[8];
    if (std::fgets(ready, sizeof ready, stdin) == nullptr) return 1;
    for (int round = 1; round <= rounds; ++round) {
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::perror("pipe2"), 1;
        fdbroker::unique_fd results(pipe_fds[0]), results_w(pipe_fds[1]);
        int forked = 0;
        for (int i = 0; i < workers; ++i) {
            const pid_t child = ::fork();
            if (child < 0) break;
            if (child == 0) {
                Tally t;
                for (int j = 0; j < requests; ++j)
                    one_request(dir, (i + j) % 8, st.st_ino, t);
                // One write under PIPE_BUF is atomic: the tallies of concurrent children never mix.
                [[maybe_unused]] ssize_t n = ::write(results_w.get(), &t, sizeof t);
                ::_exit(0);
            }
            ++forked;
        }
        results_w.reset();
        Tally sum;
        Tally t;
        int reported = 0;
        while (::read(results.get(), &t, sizeof t) == static_cast<ssize_t>(sizeof t)) {
            sum.done += t.done;
            sum.mismatched += t.mismatched;
            sum.lost += t.lost;
            ++reported;
        }
        while (::wait(nullptr) > 0) {
        }
        // A child that never reported lost every request it was to make.
        sum.lost += (workers - reported) * requests;
        std::printf("round %d workers=%d requests=%d done=%d mismatched=%d lost=%d\n", round, forked,
                    requests, sum.done, sum.mismatched, sum.lost);
        std::fflush(stdout);
        char line[8];
        if (std::fgets(line, sizeof line, stdin) == nullptr) return 1;  // the driver samples the broker
    }
    return 0;
}

long read_status_kib(pid_t pid, const char* key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
    return -1;
}

int driver(const char* self, int workers, int requests, int rounds, long rss_slack) {
    using namespace fdbroker::test;
    TempDir dir;
    ::mkdir((dir / "ok").c_str(), 0755);
    ::mkdir((dir / "secret").c_str(), 0755);
    write_file(dir / "ok/file", "allowed");
    write_file(dir / "secret/file", "SECRET");
    if (::symlink("file", (dir / "ok/link").c_str()) != 0) return std::perror("symlink"), 1;
    write_file(dir / "policy.toml",
               "version = 1\n[profile.default]\nread = [\"" + dir.path() + "/ok/**\"]\n");
    Process broker({fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--", staged(self), "--worker",
                    dir.path(), std::to_string(workers), std::to_string(requests), std::to_string(rounds)});
    if (broker.read_line() != "ready") {
        std::printf("the worker did not start: %s\n", broker.wait().err.c_str());
        return 1;
    }
    const int baseline = fdbroker::test::count_open_fds(broker.pid());
    broker.write("go\n");
    long first_rss = -1, last_rss = -1;
    bool ok = true;
    for (int round = 1; round <= rounds; ++round) {
        const std::string line = broker.read_line();
        if (line.empty()) {
            std::printf("the worker stopped before round %d\n", round);
            ok = false;
            break;
        }
        // Sessions of exited children close as the broker sees their hangups: poll, bounded.
        int fds = fdbroker::test::count_open_fds(broker.pid());
        for (int i = 0; i < 500 && fds != baseline; ++i) {
            ::usleep(10'000);
            fds = fdbroker::test::count_open_fds(broker.pid());
        }
        const long rss = read_status_kib(broker.pid(), "VmRSS:");
        if (round == 1) first_rss = rss;
        last_rss = rss;
        std::printf("%s broker_fds=%d (baseline %d) broker_rss_kib=%ld\n", line.c_str(), fds, baseline, rss);
        std::fflush(stdout);
        if (line.find(" mismatched=0 lost=0") == std::string::npos || fds != baseline) ok = false;
        broker.write("go\n");
    }
    const Outcome o = broker.wait();
    if (o.status != 0) {
        std::printf("fdbroker run exited with %d: %s\n", o.status, o.err.c_str());
        ok = false;
    }
    const bool flat = last_rss <= first_rss + rss_slack;
    std::printf("rss after round 1: %ld KiB, after round %d: %ld KiB (%s)\n", first_rss, rounds, last_rss,
                flat ? "flat" : "GREW");
    return ok && flat ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 6 && std::strcmp(argv[1], "--worker") == 0)
        return worker(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]));
    int workers = 8, requests = 200, rounds = 3;
    long rss_slack = 1024;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string opt = argv[i];
        const long v = std::atol(argv[i + 1]);
        if (opt == "--workers")
            workers = static_cast<int>(v);
        else if (opt == "--requests")
            requests = static_cast<int>(v);
        else if (opt == "--rounds")
            rounds = static_cast<int>(v);
        else if (opt == "--rss-slack")
            rss_slack = v;
        else
            return std::fprintf(stderr,
                                "usage: fdbroker_load [--workers N] [--requests M] [--rounds R] "
                                "[--rss-slack KIB]\n"),
                   2;
    }
    // The worker is this program again; /proc/self/exe names it whatever the current directory.
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return std::perror("readlink"), 1;
    self[n] = '\0';
    return driver(self, workers, requests, rounds, rss_slack);
}
