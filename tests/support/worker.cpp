// A scriptable worker for the integration and attack suites: each command line argument group is one
// call through libfdbroker, and each prints one result line ("ok ..." or the errno name).
//
//   fdbroker_test_worker open /etc/hostname rdonly , stat /etc/shadow , readlink /tmp/l
//
// Commands are separated by ",". Raw-protocol commands speak the wire format directly to play a
// misbehaving worker. Socket commands are in worker_sockets.cpp, direct system calls (attacks) in
// worker_attacks.cpp.
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fdbroker/client.hpp"
#include "fdbroker/fdbroker.h"
#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/read_all.hpp"
#include "support/worker_attacks.hpp"
#include "support/worker_batch.hpp"
#include "support/worker_faults.hpp"
#include "support/worker_isolation.hpp"
#include "support/worker_metadata.hpp"
#include "support/worker_output.hpp"
#include "support/worker_sockets.hpp"

using namespace fdbroker::test;

namespace {

using Args = std::vector<std::string>;

// Opens through the broker in many threads at once; every fd must be the file asked for.
void stress(const std::string& path, int threads, int count) {
    struct ::stat want {};
    if (fdbroker_stat(path.c_str(), &want) != 0) return print_errno(errno);
    std::atomic<int> bad{0};
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            for (int i = 0; i < count; ++i) {
                const int fd = fdbroker_open(path.c_str(), O_RDONLY | O_CLOEXEC);
                struct ::stat got {};
                if (fd < 0 || ::fstat(fd, &got) != 0 || got.st_ino != want.st_ino ||
                    got.st_dev != want.st_dev)
                    ++bad;
                if (fd >= 0) ::close(fd);
            }
        });
    for (auto& th : pool)
        th.join();
    if (bad == 0)
        std::printf("ok %d\n", threads * count);
    else
        std::printf("fail %d of %d\n", bad.load(), threads * count);
}

// Opens `path` `count` times and reports how many fds were NOT the file `forbidden` (by inode).
void race_reader(const std::string& path, const std::string& forbidden, int count) {
    struct ::stat bad_st {};
    if (::stat(forbidden.c_str(), &bad_st) != 0) return print_errno(errno);
    int leaked = 0, opened = 0, refused = 0;
    for (int i = 0; i < count; ++i) {
        const int fd = fdbroker_open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            ++refused;
            continue;
        }
        ++opened;
        struct ::stat st {};
        if (::fstat(fd, &st) == 0 && st.st_ino == bad_st.st_ino && st.st_dev == bad_st.st_dev) ++leaked;
        ::close(fd);
    }
    std::printf("%s opened=%d refused=%d leaked=%d\n", leaked == 0 ? "ok" : "fail", opened, refused, leaked);
}

// Sends the bootstrap channel (fd 3) to whoever listens on a unix socket: the test plays the
// unrelated process the channel was handed to.
void handoff(const std::string& socket_path) {
    fdbroker::unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return print_errno(errno);
    const std::byte one{1};
    fdbroker::proto::SendOptions options;
    options.fd = std::atoi(std::getenv("FDBROKER_FD"));
    report(fdbroker::proto::send(s.get(), std::span(&one, 1), options) == 0 ? 0 : -1);
    char done;
    [[maybe_unused]] ssize_t n = ::read(s.get(), &done, 1);  // wait until the test is finished with it
}

// Attaches `count` private channels and keeps them all: "ok N refused=M (ERRNO)".
void attach_flood(int count) {
    std::vector<fdbroker::unique_fd> kept;
    int refused = 0, why = 0;
    for (int i = 0; i < count; ++i) {
        errno = 0;
        fdbroker::unique_fd channel = attach_raw();
        if (channel)
            kept.push_back(std::move(channel));
        else
            ++refused, why = errno;
    }
    std::printf("ok %zu refused=%d (%s)\n", kept.size(), refused, why ? strerrorname_np(why) : "-");
}

// Sends `frame` on `channel` with this process's credentials; "closed" if the broker ended the
// channel, "open" if it answered.
const char* send_and_see(int channel, std::span<const std::byte> frame) {
    const fdbroker::proto::Credentials me = fdbroker::proto::own_credentials();
    fdbroker::proto::SendOptions with_creds;
    with_creds.credentials = &me;
    const int err = fdbroker::proto::send(channel, frame, with_creds);
    if (err == EPIPE || err == ECONNRESET) return "closed";  // the broker had already ended it
    if (err != 0) return "send-failed";
    std::array<std::byte, fdbroker::wire::kMaxReplySize + 1> buf;
    const fdbroker::proto::Received r = fdbroker::proto::receive(channel, buf, 0, 0);
    return r.status == fdbroker::proto::RecvStatus::eof ? "closed" : "open";
}

void raw_private(std::span<const std::byte> frame) {
    const fdbroker::unique_fd mine = attach_raw();
    if (!mine) return std::printf("attach-failed\n"), void();
    std::printf("%s\n", send_and_see(mine.get(), frame));
}

// A child process uses its parent's private channel with a well-formed request: the broker must
// refuse it (the channel belongs to the parent) and end that channel.
void steal_private(const std::string& path) {
    const fdbroker::unique_fd parents = attach_raw();
    if (!parents) return std::printf("attach-failed\n"), void();
    fdbroker::wire::Request req;
    req.op = fdbroker::wire::Op::stat;
    req.id = 2;
    req.path = path;
    std::array<std::byte, fdbroker::wire::kMaxRequestSize> frame;
    const std::size_t size = fdbroker::wire::encode_request(req, frame);
    const pid_t child = ::fork();
    if (child == 0) {
        std::printf("child %s\n", send_and_see(parents.get(), std::span(frame.data(), size)));
        std::fflush(stdout);
        ::_exit(0);
    }
    ::waitpid(child, nullptr, 0);
    std::printf("parent %s\n", send_and_see(parents.get(), std::span(frame.data(), size)));
}

void garbage() {
    const std::byte junk[] = {std::byte{0xde}, std::byte{0xad}, std::byte{0xbe}, std::byte{0xef},
                              std::byte{1}};
    raw_private(junk);
}

void oversized() {
    std::vector<std::byte> big(fdbroker::wire::kMaxRequestSize + 100, std::byte{'a'});
    raw_private(big);
}

// A frame of a metadata op that breaks one of its op's rules (docs/protocol.md), on a fresh private
// channel: "closed" if the broker ended the channel.
void malformed(const std::string& path, const std::string& how) {
    namespace wire = fdbroker::wire;
    wire::Request req;
    req.id = 1;
    req.path = path;
    const std::array<std::byte, wire::kTimesDataSize - 1> short_times{};
    const std::string long_name(wire::kMaxXattrName + 1, 'n');
    std::vector<std::byte> frame(wire::kMaxRequestSize + 1);
    std::size_t size = 0;
    if (how == "utimens-short-times") {
        req.op = wire::Op::utimens;
        req.data = short_times;
    } else if (how == "getxattr-huge-buffer") {
        req.op = wire::Op::getxattr;
        req.path2 = "user.x";
        req.arg0 = wire::kMaxXattrValue + 1;
    } else if (how == "chmod-follow-flag") {
        req.op = wire::Op::chmod;
        req.flags = wire::kFollow;
    } else if (how == "removexattr-long-name") {
        req.op = wire::Op::removexattr;
        req.path2 = long_name;
    } else if (how == "setxattr-huge-value") {  // one byte more than any value, past encode_request
        req.op = wire::Op::setxattr;
        req.path2 = "user.x";
        size = wire::encode_request_head(req, frame);
        const std::size_t value = wire::kMaxXattrValue + 1;
        std::fill_n(frame.begin() + static_cast<std::ptrdiff_t>(size), value, std::byte{'v'});
        size += value;
    }
    if (size == 0) size = wire::encode_request(req, frame);
    raw_private(std::span(frame.data(), size));
}

// A child keeps opening while the parent sends garbage on its own channel: the child must not notice.
void garbage_while_busy(const std::string& path, int count) {
    const pid_t child = ::fork();
    if (child == 0) {
        const int failures = open_many(path, count);
        std::printf("child %s failures=%d\n", failures == 0 ? "ok" : "fail", failures);
        std::fflush(stdout);
        ::_exit(0);
    }
    for (int i = 0; i < 20; ++i)
        garbage();
    std::fflush(stdout);
    ::waitpid(child, nullptr, 0);
}

// Prints the file's content, without trailing newlines.
void print_content(const std::string& path) {
    const int fd = fdbroker_open(path.c_str(), O_RDONLY);
    if (fd < 0) return print_errno(errno);
    std::string content = read_all(fd);
    ::close(fd);
    while (!content.empty() && content.back() == '\n')
        content.pop_back();
    report(0, content);
}

void write_content(const std::string& path, const std::string& content) {
    const int fd = fdbroker_open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return print_errno(errno);
    report(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) ? 0 : -1);
    ::close(fd);
}

// Whether an fd opened with or without O_CLOEXEC has FD_CLOEXEC.
void report_cloexec(const std::string& path, bool with) {
    const int fd = fdbroker_open(path.c_str(), O_RDONLY | (with ? O_CLOEXEC : 0));
    if (fd < 0) return print_errno(errno);
    report(0, "cloexec=" + std::to_string((::fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0));
    ::close(fd);
}

void report_stat(const std::string& path) {
    struct ::stat st {};
    const int rc = fdbroker_stat(path.c_str(), &st);
    const char* type = S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "link" : "file";
    report(rc, S_ISDIR(st.st_mode) ? std::string(type)
                                   : std::string(type) + " size=" + std::to_string(st.st_size));
}

void run(const Args& a);

// Each run_*_command function runs one command group if the command is one of its own; false if not.

// The file system calls through libfdbroker's C API.
bool run_file_command(const Args& a) {
    const std::string& cmd = a[0];
    if (cmd == "open") {
        const int fd = fdbroker_open(
            arg(a, 1).c_str(), parse_flags(arg(a, 2)),
            static_cast<mode_t>(std::strtol(arg(a, 3).empty() ? "0644" : arg(a, 3).c_str(), nullptr, 8)));
        report(fd);
        if (fd >= 0) ::close(fd);
    } else if (cmd == "read") {
        print_content(arg(a, 1));
    } else if (cmd == "write") {
        write_content(arg(a, 1), arg(a, 2));
    } else if (cmd == "cloexec") {
        report_cloexec(arg(a, 1), arg(a, 2) == "with");
    } else if (cmd == "access") {
        int mode = 0;
        for (char c : arg(a, 2))
            mode |= c == 'r' ? R_OK : c == 'w' ? W_OK : c == 'x' ? X_OK : 0;
        report(fdbroker_access(arg(a, 1).c_str(), mode));
    } else if (cmd == "stat") {
        report_stat(arg(a, 1));
    } else if (cmd == "readlink") {
        char buf[4096];
        const ssize_t n = fdbroker_readlink(arg(a, 1).c_str(), buf, sizeof buf);
        report(n < 0 ? -1 : 0, n < 0 ? "" : std::string(buf, static_cast<std::size_t>(n)));
    } else if (cmd == "mkdir") {
        report(fdbroker_mkdir(arg(a, 1).c_str(), 0755));
    } else if (cmd == "unlink") {
        report(fdbroker_unlink(arg(a, 1).c_str()));
    } else if (cmd == "rmdir") {
        report(fdbroker_rmdir(arg(a, 1).c_str()));
    } else if (cmd == "rename") {
        report(fdbroker_rename(arg(a, 1).c_str(), arg(a, 2).c_str()));
    } else {
        return false;
    }
    return true;
}

// libfdbroker under load, and raw frames on the channels.
bool run_channel_command(const Args& a) {
    const std::string& cmd = a[0];
    if (cmd == "stress") {
        stress(arg(a, 1), std::atoi(arg(a, 2).c_str()), std::atoi(arg(a, 3).c_str()));
    } else if (cmd == "race-reader") {
        race_reader(arg(a, 1), arg(a, 2), std::atoi(arg(a, 3).c_str()));
    } else if (cmd == "handoff") {
        handoff(arg(a, 1));
    } else if (cmd == "attach-flood") {
        attach_flood(std::atoi(arg(a, 1).c_str()));
    } else if (cmd == "steal-private") {
        steal_private(arg(a, 1));
    } else if (cmd == "garbage") {
        garbage();
    } else if (cmd == "oversized") {
        oversized();
    } else if (cmd == "malformed") {
        malformed(arg(a, 1), arg(a, 2));
    } else if (cmd == "garbage-while-busy") {
        garbage_while_busy(arg(a, 1), std::atoi(arg(a, 2).c_str()));
    } else {
        return false;
    }
    return true;
}

// The worker process itself: forking, waiting, its ids, how it ends.
// NOLINTNEXTLINE(misc-no-recursion): fork runs the rest of its group, one word shorter each time.
bool run_process_command(const Args& a) {
    const std::string& cmd = a[0];
    if (cmd == "fork") {  // the rest of this group runs in a child, then the parent goes on
        const pid_t child = ::fork();
        if (child == 0) {
            run(Args(a.begin() + 1, a.end()));
            std::fflush(stdout);
            ::_exit(0);
        }
        ::waitpid(child, nullptr, 0);
    } else if (cmd == "wait-line") {  // blocks until the test writes a line on stdin
        std::printf("waiting\n");
        std::fflush(stdout);
        char line[16];
        [[maybe_unused]] char* got = std::fgets(line, sizeof line, stdin);
    } else if (cmd == "uid") {
        report(0, std::to_string(::getuid()) + " " + std::to_string(::getgid()));
    } else if (cmd == "exit") {
        std::exit(std::atoi(arg(a, 1).c_str()));
    } else if (cmd == "kill-self") {
        ::raise(std::atoi(arg(a, 1).c_str()));
    } else {
        return false;
    }
    return true;
}

// NOLINTNEXTLINE(misc-no-recursion): through fork, bounded by the length of the group.
void run(const Args& a) {
    if (!run_file_command(a) && !fdbroker::test::run_batch_command(a) &&
        !fdbroker::test::run_metadata_command(a) && !run_channel_command(a) && !run_process_command(a) &&
        !fdbroker::test::run_socket_command(a) && !fdbroker::test::run_attack_command(a) &&
        !fdbroker::test::run_fault_command(a) && !fdbroker::test::run_isolation_command(a, run)) {
        std::printf("unknown command %s\n", a[0].c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    Args group;
    for (int i = 1; i <= argc; ++i) {
        if (i == argc || std::strcmp(argv[i], ",") == 0) {
            if (!group.empty()) run(group);
            std::fflush(stdout);
            group.clear();
        } else {
            group.emplace_back(argv[i]);
        }
    }
    return 0;
}
