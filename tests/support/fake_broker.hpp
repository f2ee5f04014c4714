// A broker stand-in for libfdbroker's unit tests, and the fixture and helpers the client suites share
// (client_test.cpp: the C++ API; c_api_test.cpp: the C functions; discovery_test.cpp: finding the
// broker from the environment).
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fdbroker/client.hpp"
#include "fdbroker/unique_fd.hpp"
#include "proto/wire.hpp"
#include "support/harness.hpp"
#include "support/read_all.hpp"

namespace fdbroker::fake {

namespace fs = std::filesystem;

using test::count_open_fds;
using test::read_all;

// A broker stand-in on its own thread. It accepts attaches on its bootstrap channels (a socketpair
// end, or connections to a listening socket), replies on the new private channel, and serves
// requests from a scratch directory, with a few magic paths:
//   /denied/...   EACCES for every op
//   /size/N       stat: st_size N, st_ino 7N · readlink: "target-N" · open: a memfd of N bytes ·
//                 getxattr, listxattr: a value of N bytes (patterned(N)), ERANGE for a smaller buffer ·
//                 setxattr: 0 if the value is patterned(N), else EBADMSG
//   /overfill     getxattr, listxattr: one byte more than the caller has room for
//   /hang         no reply                 /close   close every channel at once
//   /drop         EIO, then close this private channel
//   /garbage      a malformed reply        /stray   a reply with an unknown id (and an fd) first
// open_many entries: /denied... EACCES; /lie announced as opened but sent without its fd; any other
// path a memfd as long as the path (so that each fd tells which entry it answers).
// connect and listen take only abstract unix addresses ("unix:@name", done for real; "unix:@denied..."
// is EACCES) and answer EINVAL to any other address.
// In reverse mode it gathers a few requests before answering and answers them last-first.
class FakeBroker {
  public:
    explicit FakeBroker(bool reverse = false);
    ~FakeBroker();
    FakeBroker(const FakeBroker&) = delete;
    FakeBroker& operator=(const FakeBroker&) = delete;

    // A bootstrap channel: the broker keeps one end, the returned one is the worker's.
    unique_fd bootstrap();
    // Listens at a path or "@abstract" name; each connection is a bootstrap channel.
    void listen(const std::string& address);

    void start();
    void stop();

    std::vector<pid_t> attach_pids();
    void set_attach_errno(int err) { attach_errno_ = err; }
    int hung() const { return hung_; }
    int last_backlog() const { return last_backlog_; }
    int reordered_batches() const { return reordered_; }
    int open_many_requests() const { return open_many_requests_; }
    const fs::path& root() const { return root_; }
    // Where a request's path ("/name") lives in the scratch directory.
    std::string file(const std::string& name) const { return (root_ / name.substr(1)).string(); }

  private:
    struct Outgoing {
        int channel;
        std::vector<std::byte> frame;
        std::vector<unique_fd> fds;
    };

    void wake();
    void run();
    bool is_bootstrap(int fd);
    void accept_one();
    void drop(int fd);
    void close_all();
    void on_bootstrap(int fd);
    void drain(int fd, std::vector<Outgoing>& batch);
    static void push_reply(std::vector<Outgoing>& out, int channel, const wire::Request& rq,
                           std::int32_t result, std::span<const std::byte> payload = {}, unique_fd fd = {});
    void flush(std::vector<Outgoing>& batch);
    void serve(int channel, const wire::Request& rq, std::vector<Outgoing>& out);
    static void sized(int channel, const wire::Request& rq, long n, std::vector<Outgoing>& out);
    void socket_op(int channel, const wire::Request& rq, std::vector<Outgoing>& out);
    void open_many(int channel, const wire::Request& rq, std::vector<Outgoing>& out);
    // The real operation below the scratch directory.
    void real(int channel, const wire::Request& rq, std::vector<Outgoing>& out);
    // The same for the metadata ops and the xattr ops.
    void real_metadata(int channel, const wire::Request& rq, std::vector<Outgoing>& out);
    void real_xattr(int channel, const wire::Request& rq, std::vector<Outgoing>& out);

    const bool reverse_;
    fs::path root_;
    unique_fd stop_;
    unique_fd wake_;
    std::thread thread_;
    std::mutex mu_;  // guards the fd lists and attach_pids_ against the test thread
    unique_fd listener_;
    std::vector<unique_fd> bootstraps_;
    std::vector<unique_fd> channels_;
    std::vector<pid_t> attach_pids_;
    std::atomic<int> attach_errno_{0};
    std::atomic<int> hung_{0};
    std::atomic<int> last_backlog_{0};
    std::atomic<int> reordered_{0};
    std::atomic<int> open_many_requests_{0};
    bool closed_ = false;  // fake thread only
};

// n bytes that are not all alike: the value of /size/N's extended attributes.
std::vector<std::byte> patterned(std::size_t n);

// Creates or replaces a file, failing the test if it cannot.
void write_file(const std::string& path, const std::string& content);

// Runs body in a forked child and returns its exit status (0: every check passed). Used wherever
// the process-wide client or the environment is involved, so that this process never creates its
// global client and each case reads the environment afresh.
int in_child(const std::function<int()>& body);

// A failed check in a child of in_child: says where, and ends the child's body with status 1
// (GoogleTest's assertions would report into the child's copy of the test, which nobody reads).
#define CHILD_CHECK(cond)                                                                                   \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            std::fprintf(stderr, "child check failed at line %d: %s (errno %d)\n", __LINE__, #cond, errno); \
            return 1;                                                                                       \
        }                                                                                                   \
    } while (0)

// A started FakeBroker and a Client attached to it over a bootstrap channel.
class ClientTest : public ::testing::Test {
  protected:
    void SetUp() override;

    FakeBroker broker_;
    std::unique_ptr<Client> client_;
    std::error_code ec_;
};

// An abstract unix socket name of this process's own, so that parallel runs do not collide.
std::string abstract_name(const char* what);

// Is fd a listening socket?
bool is_listening(int fd);

}  // namespace fdbroker::fake
