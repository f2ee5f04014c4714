// Client::open_batch and fdbroker_open_many against the in-process fake broker: one result per entry
// in order, close-on-exec as asked, local argument errors, long paths split into several requests,
// and a reply whose descriptors do not match its results ending the channel.
#include "support/fake_broker.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "fdbroker/fdbroker.h"
#include "proto/wire.hpp"

namespace fdbroker {
namespace {

using namespace fake;

off_t size_of(const unique_fd& fd) {
    struct ::stat st {};
    return ::fstat(fd.get(), &st) == 0 ? st.st_size : -1;
}

TEST_F(ClientTest, ABatchAnswersEachEntryInOrder) {
    const std::vector<Client::OpenRequest> requests = {{"/a", O_RDONLY | O_CLOEXEC, 0},
                                                       {"/denied/x", O_RDONLY, 0},
                                                       {"", O_RDONLY, 0},
                                                       {nullptr, O_RDONLY, 0},
                                                       {"/three", O_RDONLY, 0}};
    std::vector<Client::OpenResult> results = client_->open_batch(requests, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    ASSERT_EQ(results.size(), requests.size());
    // The fake's descriptors are as long as their path: each tells which entry it answers.
    EXPECT_FALSE(results[0].ec);
    EXPECT_EQ(size_of(results[0].fd), 2);
    EXPECT_EQ(::fcntl(results[0].fd.get(), F_GETFD), FD_CLOEXEC);
    EXPECT_EQ(results[1].ec.value(), EACCES);
    EXPECT_FALSE(results[1].fd);
    // What open(2) refuses before looking anything up never reaches the broker.
    EXPECT_EQ(results[2].ec.value(), ENOENT);
    EXPECT_EQ(results[3].ec.value(), EFAULT);
    EXPECT_FALSE(results[4].ec);
    EXPECT_EQ(size_of(results[4].fd), 6);
    EXPECT_EQ(::fcntl(results[4].fd.get(), F_GETFD), 0);
    EXPECT_EQ(broker_.open_many_requests(), 1);
}

TEST_F(ClientTest, TooManyEntriesOrMismatchedResultsAreEinval) {
    const std::vector<Client::OpenRequest> many(Client::kMaxOpenMany + 1, {"/a", O_RDONLY, 0});
    client_->open_batch(many, ec_);
    EXPECT_EQ(ec_.value(), EINVAL);
    std::vector<Client::OpenResult> results(1);
    client_->open_batch(std::span(many).first(2), results, ec_);
    EXPECT_EQ(ec_.value(), EINVAL);
    EXPECT_EQ(broker_.open_many_requests(), 0);
}

TEST_F(ClientTest, LongPathsTakeSeveralRequests) {
    // 64 paths of 3000 bytes: 21 entries fill a request's 64 KiB, so four requests.
    std::vector<std::string> paths;
    paths.reserve(64);
    for (int i = 0; i < 64; ++i)
        paths.push_back("/" + std::string(2999, static_cast<char>('a' + i % 26)));
    std::vector<Client::OpenRequest> requests;
    requests.reserve(paths.size());
    for (const std::string& p : paths)
        requests.push_back({p.c_str(), O_RDONLY | O_CLOEXEC, 0});
    std::vector<Client::OpenResult> results = client_->open_batch(requests, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    for (const Client::OpenResult& r : results) {
        EXPECT_FALSE(r.ec);
        EXPECT_EQ(size_of(r.fd), 3000);
    }
    EXPECT_EQ(broker_.open_many_requests(), 4);
}

TEST_F(ClientTest, AReplyMissingADescriptorEndsTheChannelAndLeaksNothing) {
    client_->stat("/size/1", ec_);
    ASSERT_FALSE(ec_);
    const int before = count_open_fds();
    const std::vector<Client::OpenRequest> requests = {{"/a", O_RDONLY, 0}, {"/lie", O_RDONLY, 0}};
    std::vector<Client::OpenResult> results = client_->open_batch(requests, ec_);
    EXPECT_EQ(ec_.value(), ECONNRESET);
    EXPECT_TRUE(results.empty());
    // The next call attaches again, and nothing that came with the lie is left open.
    EXPECT_EQ(client_->stat("/size/9", ec_).st_size, 9);
    EXPECT_FALSE(ec_);
    EXPECT_EQ(count_open_fds(), before);
}

TEST_F(ClientTest, TheCFormFillsFdsWithDescriptorsOrNegatedErrnos) {
    unique_fd channel = broker_.bootstrap();
    const std::string fd_text = std::to_string(channel.get());
    EXPECT_EQ(
        in_child([&] {
            ::setenv("FDBROKER_FD", fd_text.c_str(), 1);
            const fdbroker_open_request requests[] = {{"/abc", O_RDONLY, 0}, {"/denied/y", O_RDONLY, 0}};
            int fds[2] = {-1, -1};
            errno = 12345;
            CHILD_CHECK(fdbroker_open_many(requests, 2, fds) == 0);
            CHILD_CHECK(errno == 12345);  // untouched on success
            CHILD_CHECK(fds[0] >= 0 && fds[1] == -EACCES);
            CHILD_CHECK(::fcntl(fds[0], F_GETFD) == 0);
            ::close(fds[0]);
            CHILD_CHECK(fdbroker_open_many(nullptr, 1, fds) == -1 && errno == EFAULT);
            CHILD_CHECK(fdbroker_open_many(requests, FDBROKER_OPEN_MANY_MAX + 1, fds) == -1 &&
                        errno == EINVAL);
            CHILD_CHECK(fdbroker_open_many(requests, 0, fds) == 0);
            return 0;
        }),
        0);
}

}  // namespace
}  // namespace fdbroker
