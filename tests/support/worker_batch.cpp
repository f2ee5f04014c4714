// Batch commands of the test worker:
//
//   batch PATH FLAGS [PATH FLAGS]...   one fdbroker_open_many; a line per entry: "ok CONTENT" (content
//                                      read for a read-only open, "ok" otherwise) or the errno's name
//   batch-cloexec PATH                 PATH with and without O_CLOEXEC: "cloexec=1 cloexec=0"
//   batch-same PATH N                  N read-only opens of PATH in one call: "ok opened=K failed=F (ERRNO)"
//                                      when every fd opened is PATH's file, "fail ..." otherwise
//   batch-too-many                     FDBROKER_OPEN_MANY_MAX + 1 entries: the call's errno
//   raw-batch HOW                      a malformed open_many frame on a fresh private channel: "closed"
//                                      if the broker ended the channel
//   raw-batch-while-busy PATH COUNT    a child makes COUNT batches while the parent sends malformed
//                                      ones: "child ok failures=0", then "parent closed=N"
#include "support/worker_batch.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "fdbroker/fdbroker.h"
#include "proto/channel.hpp"
#include "proto/wire.hpp"
#include "support/read_all.hpp"
#include "support/worker_faults.hpp"
#include "support/worker_output.hpp"

namespace fdbroker::test {
namespace {

using Args = std::vector<std::string>;

void print_entry(int fd, int flags) {
    if (fd < 0) return print_errno(-fd);
    std::string content;
    if ((flags & O_ACCMODE) == O_RDONLY) content = read_all(fd);
    ::close(fd);
    while (!content.empty() && content.back() == '\n')
        content.pop_back();
    report(0, content);
}

void batch(const Args& a) {
    std::vector<fdbroker_open_request> requests;
    for (std::size_t i = 1; i + 1 < a.size(); i += 2)
        requests.push_back({a[i].c_str(), parse_flags(a[i + 1]), 0644});
    std::vector<int> fds(requests.size(), -1);
    if (fdbroker_open_many(requests.data(), requests.size(), fds.data()) != 0) return print_errno(errno);
    for (std::size_t i = 0; i < requests.size(); ++i)
        print_entry(fds[i], requests[i].flags);
}

void batch_cloexec(const std::string& path) {
    const fdbroker_open_request requests[] = {{path.c_str(), O_RDONLY | O_CLOEXEC, 0},
                                              {path.c_str(), O_RDONLY, 0}};
    int fds[2] = {-1, -1};
    if (fdbroker_open_many(requests, 2, fds) != 0) return print_errno(errno);
    std::string line;
    for (const int fd : fds) {
        if (fd < 0) return print_errno(-fd);
        line += (line.empty() ? "cloexec=" : " cloexec=") +
                std::to_string((::fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
        ::close(fd);
    }
    std::printf("%s\n", line.c_str());
}

// K opened, F failed: -1 when an fd is not `path`'s file.
int batch_same(const std::string& path, std::size_t n, int& opened, int& failed, int& why) {
    struct ::stat want {};
    if (fdbroker_stat(path.c_str(), &want) != 0) return -1;
    std::vector<fdbroker_open_request> requests(n, {path.c_str(), O_RDONLY | O_CLOEXEC, 0});
    std::vector<int> fds(n, -1);
    if (fdbroker_open_many(requests.data(), n, fds.data()) != 0) return -1;
    int wrong = 0;
    for (const int fd : fds) {
        struct ::stat got {};
        if (fd < 0) {
            ++failed;
            why = -fd;
            continue;
        }
        ++opened;
        if (::fstat(fd, &got) != 0 || got.st_ino != want.st_ino || got.st_dev != want.st_dev) ++wrong;
        ::close(fd);
    }
    return wrong == 0 ? 0 : -1;
}

void report_batch_same(const std::string& path, std::size_t n) {
    int opened = 0, failed = 0, why = 0;
    errno = 0;
    const int rc = batch_same(path, n, opened, failed, why);
    if (rc != 0 && opened == 0 && failed == 0) return print_errno(errno);
    std::printf("%s opened=%d failed=%d (%s)\n", rc == 0 ? "ok" : "fail", opened, failed,
                why ? strerrorname_np(why) : "-");
}

void batch_too_many() {
    std::array<fdbroker_open_request, FDBROKER_OPEN_MANY_MAX + 1> requests;
    requests.fill({"/etc/hostname", O_RDONLY, 0});
    std::array<int, FDBROKER_OPEN_MANY_MAX + 1> fds{};
    report(fdbroker_open_many(requests.data(), requests.size(), fds.data()));
}

// An open_many frame broken in the way `how` names.
std::vector<std::byte> malformed_batch(const std::string& how) {
    namespace wire = fdbroker::wire;
    std::vector<std::byte> data(wire::kMaxBatchData);
    std::size_t used = 0;
    const std::size_t entries = how == "over-max" ? wire::kMaxBatch + 1 : 2;
    for (std::size_t i = 0; i < entries; ++i)
        used += wire::encode_open_entry({O_RDONLY, 0, "/etc/hostname"}, std::span(data).subspan(used));
    data.resize(used);
    wire::Request req;
    req.op = wire::Op::open_many;
    req.id = 1;
    req.arg0 = static_cast<std::uint32_t>(entries);
    if (how == "count-mismatch") req.arg0 = 3;
    if (how == "zero") req.arg0 = 0;
    if (how == "truncated-entry") data.resize(data.size() - 3);
    req.data = data;
    std::vector<std::byte> frame(wire::kMaxRequestSize);
    frame.resize(wire::encode_request(req, frame));
    // A path length past the end of the frame, written over the second entry's.
    if (how == "long-length")
        frame[wire::kRequestHeaderSize + wire::kBatchEntryHeaderSize + 13 + 8] = std::byte{0xff};
    return frame;
}

// "closed" if the broker ended the channel after `frame`, "open" if it answered.
const char* send_raw(std::span<const std::byte> frame) {
    const fdbroker::unique_fd mine = attach_raw();
    if (!mine) return "attach-failed";
    if (const int err = fdbroker::proto::send(mine.get(), frame, {}); err != 0)
        return err == EPIPE || err == ECONNRESET ? "closed" : "send-failed";
    std::array<std::byte, fdbroker::wire::kMaxReplySize + 1> buf;
    const fdbroker::proto::Received r =
        fdbroker::proto::receive(mine.get(), buf, 0, static_cast<int>(fdbroker::proto::kMaxFdsPerMessage));
    return r.status == fdbroker::proto::RecvStatus::eof ? "closed" : "open";
}

void raw_batch_while_busy(const std::string& path, int count) {
    const pid_t child = ::fork();
    if (child == 0) {
        int failures = 0;
        for (int i = 0; i < count; ++i) {
            int opened = 0, failed = 0, why = 0;
            if (batch_same(path, 8, opened, failed, why) != 0 || opened != 8) ++failures;
        }
        std::printf("child %s failures=%d\n", failures == 0 ? "ok" : "fail", failures);
        std::fflush(stdout);
        ::_exit(0);
    }
    int closed = 0;
    for (int i = 0; i < 20; ++i)
        if (std::strcmp(send_raw(malformed_batch(i % 2 ? "count-mismatch" : "long-length")), "closed") == 0)
            ++closed;
    ::waitpid(child, nullptr, 0);
    std::printf("parent closed=%d\n", closed);
}

}  // namespace

bool run_batch_command(const Args& a) {
    const std::string& cmd = a[0];
    if (cmd == "batch") {
        batch(a);
    } else if (cmd == "batch-cloexec") {
        batch_cloexec(arg(a, 1));
    } else if (cmd == "batch-same") {
        report_batch_same(arg(a, 1), static_cast<std::size_t>(std::atoi(arg(a, 2).c_str())));
    } else if (cmd == "batch-too-many") {
        batch_too_many();
    } else if (cmd == "raw-batch") {
        std::printf("%s\n", send_raw(malformed_batch(arg(a, 1))));
    } else if (cmd == "raw-batch-while-busy") {
        raw_batch_while_busy(arg(a, 1), std::atoi(arg(a, 2).c_str()));
    } else {
        return false;
    }
    std::fflush(stdout);
    return true;
}

}  // namespace fdbroker::test
