// The test worker's isolation commands:
//
//   background CMD ARGS...     runs the command in a thread of its own and goes on at once; its line
//                              comes when it is done
//   join                       waits for every background command
//   sleep MS                   sleeps: gives a background request time to reach the broker first, so
//                              that a test of "only that request waits" cannot pass by luck of order
//   lease PATH                 opens PATH read-write and takes a write lease on it ("leased")
//   wait-break                 waits until the kernel tells the holder that an open is breaking the
//                              lease, that is until the broker is opening the file ("breaking")
//   unlease                    gives the lease up: "unleased", or "broken" if the kernel had already
//                              broken it (which it does when the holder keeps it lease-break-time long)
//   flood-unread PATH PROCS    PROCS child processes attach four channels each and send open requests
//                              for PATH on them, never reading a reply, until the broker stops reading
//                              ("flooding" once all are stuck); they live until this process exits
//   leftover OUT PIDFILE       leaves a child behind that tries, for 20 s, to make itself the terminal's
//                              foreground process group and read a line from it, which it writes to OUT
//                              (opened through the broker beforehand); its pid goes to PIDFILE. Prints
//                              "left PID".
//   attach-procs PROCS N       PROCS child processes each try to attach N channels and hold them;
//                              "ok held=H refused=R" once all have tried; they live until this process
//                              exits
#include "support/worker_isolation.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "fdbroker/fdbroker.h"
#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/worker_faults.hpp"
#include "support/worker_output.hpp"

namespace fdbroker::test {

namespace {

std::vector<std::thread> background;
int leased = -1;
volatile sig_atomic_t breaking = 0;

void on_break(int) {
    breaking = 1;
}

void take_lease(const std::string& path) {
    // The lease holder is told of a conflicting open by SIGIO (whose default action is to die).
    struct sigaction sa {};
    sa.sa_handler = on_break;
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGIO, &sa, nullptr);
    const int fd = fdbroker_open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return print_errno(errno);
    // A write lease needs every other descriptor of the file closed: the broker's copy goes at the end
    // of its turn.
    for (int i = 0; i < 1000; ++i) {
        if (::fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
            leased = fd;
            return std::printf("leased\n"), void();
        }
        if (errno != EAGAIN && errno != EBUSY) break;
        ::usleep(1000);
    }
    print_errno(errno);
}

// A child that holds raw channels; `ready` is written once it has done what it came to do.
template <class Work>
pid_t child(Work&& work, int ready) {
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    work();
    [[maybe_unused]] ssize_t n = ::write(ready, "r", 1);
    for (;;)
        ::pause();
}

// Sends open requests on `channel` until it will take no more (the broker stopped reading it) or is
// closed.
void flood(int channel, const std::string& path) {
    const proto::Credentials me = proto::own_credentials();
    proto::SendOptions options;
    options.credentials = &me;
    options.flags = MSG_DONTWAIT;
    wire::Request req;
    req.op = wire::Op::open;
    req.path = path;
    std::array<std::byte, wire::kMaxRequestSize> frame;
    for (std::uint32_t id = 1; id < 1'000'000; ++id) {
        req.id = id;
        const std::size_t size = wire::encode_request(req, frame);
        const int err = proto::send(channel, std::span(frame.data(), size), options);
        if (err == EAGAIN) {
            // Full: wait a little in case the broker is still reading, then call it stuck.
            pollfd p{channel, POLLOUT, 0};
            if (::poll(&p, 1, 500) <= 0) return;
            continue;
        }
        if (err != 0) return;
    }
}

// Runs `work` in `procs` children and waits until each has reported.
template <class Work>
bool in_children(int procs, Work&& work) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return false;
    const unique_fd ready(pipe_fds[0]), ready_w(pipe_fds[1]);
    for (int i = 0; i < procs; ++i)
        if (child(work, ready_w.get()) < 0) return false;
    for (int i = 0; i < procs; ++i) {
        char byte;
        if (::read(ready.get(), &byte, 1) != 1) return false;
    }
    return true;
}

// The child of `leftover`: what a process left behind on the user's terminal would do, for 20 s.
[[noreturn]] void steal_terminal(int out) {
    // Only the terminal on stdin matters: the test's pipes on stdout and stderr must not wait for it.
    ::close(STDOUT_FILENO);
    ::close(STDERR_FILENO);
    // Stopped neither by reading nor by changing the foreground group from the background.
    ::signal(SIGTTIN, SIG_IGN);
    ::signal(SIGTTOU, SIG_IGN);
    const pid_t group = ::getpgrp();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        ::ioctl(STDIN_FILENO, TIOCSPGRP, &group);
        pollfd p{STDIN_FILENO, POLLIN, 0};
        char buf[256];
        const ssize_t n =
            ::poll(&p, 1, 1) == 1 && (p.revents & POLLIN) ? ::read(STDIN_FILENO, buf, sizeof buf) : 0;
        if (n > 0) [[maybe_unused]]
            ssize_t w = ::write(out, buf, static_cast<std::size_t>(n));
        else
            ::usleep(1000);  // nothing to read (or no terminal at all): try again in a moment
    }
    ::_exit(0);
}

void leave_behind(const std::string& out_path, const std::string& pid_path) {
    const int out = fdbroker_open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int pids = fdbroker_open(pid_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || pids < 0) return print_errno(errno);
    const pid_t child = ::fork();
    if (child == 0) steal_terminal(out);
    const std::string text = std::to_string(child) + "\n";
    [[maybe_unused]] ssize_t w = ::write(pids, text.data(), text.size());
    ::close(pids);
    ::close(out);
    std::printf("left %d\n", static_cast<int>(child));
}

void wait_for_lease_break() {
    for (int i = 0; i < 60'000 && !breaking; ++i)
        ::usleep(1000);
    std::printf("%s\n", breaking ? "breaking" : "no-break");
}

void give_up_lease() {
    const bool held = ::fcntl(leased, F_GETLEASE) != F_UNLCK;
    if (::fcntl(leased, F_SETLEASE, F_UNLCK) != 0) return print_errno(errno);
    std::printf("%s\n", held ? "unleased" : "broken");
}

// `procs` children each attach four private channels and fill them with requests they never read.
void flood_unread(const std::string& path, int procs) {
    const bool ok = in_children(procs, [&] {
        std::vector<unique_fd> channels;
        for (int i = 0; i < 4; ++i)
            if (unique_fd c = attach_raw()) channels.push_back(std::move(c));
        for (const unique_fd& c : channels)
            flood(c.get(), path);
        // Kept open, unread, until the process dies.
        static std::vector<unique_fd> kept;
        kept = std::move(channels);
    });
    std::printf("%s\n", ok ? "flooding" : "flood-failed");
}

// `procs` children each try to attach `per` private channels and keep those they get.
void attach_procs(int procs, int per) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return print_errno(errno);
    const unique_fd counts(pipe_fds[0]);
    unique_fd counts_w(pipe_fds[1]);
    const bool ok = in_children(procs, [&] {
        static std::vector<unique_fd> kept;
        char held = 0;
        for (int i = 0; i < per; ++i)
            if (unique_fd c = attach_raw()) kept.push_back(std::move(c)), ++held;
        [[maybe_unused]] ssize_t n = ::write(counts_w.get(), &held, 1);
    });
    counts_w.reset();
    int held = 0;
    for (int i = 0; i < procs; ++i) {
        char h = 0;
        if (::read(counts.get(), &h, 1) == 1) held += h;
    }
    std::printf("%s held=%d refused=%d\n", ok ? "ok" : "fail", held, procs * per - held);
}

}  // namespace

bool run_isolation_command(const std::vector<std::string>& a, void (*run)(const std::vector<std::string>&)) {
    const std::string& cmd = a.front();
    if (cmd == "background") {
        background.emplace_back([run, rest = std::vector<std::string>(a.begin() + 1, a.end())] {
            run(rest);
            std::fflush(stdout);
        });
    } else if (cmd == "sleep") {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(arg(a, 1).c_str())));
    } else if (cmd == "join") {
        for (std::thread& t : background)
            t.join();
        background.clear();
    } else if (cmd == "lease") {
        take_lease(arg(a, 1));
    } else if (cmd == "wait-break") {
        wait_for_lease_break();
    } else if (cmd == "unlease") {
        give_up_lease();
    } else if (cmd == "flood-unread") {
        flood_unread(arg(a, 1), std::atoi(arg(a, 2).c_str()));
    } else if (cmd == "leftover") {
        leave_behind(arg(a, 1), arg(a, 2));
    } else if (cmd == "attach-procs") {
        attach_procs(std::atoi(arg(a, 1).c_str()), std::atoi(arg(a, 2).c_str()));
    } else {
        return false;
    }
    return true;
}

}  // namespace fdbroker::test
