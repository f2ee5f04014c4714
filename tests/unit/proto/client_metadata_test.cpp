// libfdbroker's metadata calls (chmod, chown, truncate, utimens, link, mknod, the xattr calls) against the
// in-process fake broker: what each sends, the checks made before sending, and values of 64 KiB.
#include "support/fake_broker.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "fdbroker/fdbroker.h"
#include "proto/wire.hpp"

namespace fdbroker {
namespace {

using namespace fake;

std::error_code errc(int err) {
    return {err, std::system_category()};
}

struct ::stat lstat_of(const std::string& path) {
    struct ::stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
}

TEST_F(ClientTest, ChmodChownTruncate) {
    write_file(broker_.file("/f"), "0123456789");
    ASSERT_EQ(::symlink("f", broker_.file("/l").c_str()), 0);
    client_->chmod("/f", 0640 | S_IFDIR, 0, ec_);  // chmod(2) looks at the permission bits only
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(lstat_of(broker_.file("/f")).st_mode, S_IFREG | 0640u);
    client_->chmod("/l", 0600, 0, ec_);  // through the link
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(lstat_of(broker_.file("/f")).st_mode & 07777, 0600u);
    client_->chmod("/l", 0600, AT_SYMLINK_NOFOLLOW, ec_);
    EXPECT_EQ(ec_, errc(EOPNOTSUPP));

    client_->chown("/f", ::getuid(), static_cast<gid_t>(-1), 0, ec_);
    EXPECT_FALSE(ec_) << ec_.message();
    client_->chown("/l", static_cast<uid_t>(-1), ::getgid(), AT_SYMLINK_NOFOLLOW, ec_);
    EXPECT_FALSE(ec_) << ec_.message();

    client_->truncate("/f", 3, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(lstat_of(broker_.file("/f")).st_size, 3);
    client_->truncate("/f", 0x100000003LL, ec_);  // both halves of the length travel
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(lstat_of(broker_.file("/f")).st_size, 0x100000003LL);
    client_->truncate("/missing", 1, ec_);
    EXPECT_EQ(ec_, errc(ENOENT));
    client_->chmod("/denied/f", 0600, 0, ec_);
    EXPECT_EQ(ec_, errc(EACCES));
}

TEST_F(ClientTest, UtimensLinkMknod) {
    write_file(broker_.file("/f"), "x");
    ASSERT_EQ(::symlink("f", broker_.file("/l").c_str()), 0);
    const struct ::timespec times[2] = {{1000000000, 5}, {1200000000, 999999999}};
    client_->utimens("/f", times, 0, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    struct ::stat st = lstat_of(broker_.file("/f"));
    EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
    EXPECT_EQ(st.st_atim.tv_nsec, 5);
    EXPECT_EQ(st.st_mtim.tv_sec, 1200000000);
    EXPECT_EQ(st.st_mtim.tv_nsec, 999999999);
    const struct ::timespec only_atime[2] = {{7, 0}, {0, UTIME_OMIT}};
    client_->utimens("/l", only_atime, AT_SYMLINK_NOFOLLOW, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(lstat_of(broker_.file("/l")).st_atim.tv_sec, 7);
    EXPECT_EQ(lstat_of(broker_.file("/f")).st_mtim.tv_sec, 1200000000);
    client_->utimens("/f", nullptr, 0, ec_);  // now
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_GT(lstat_of(broker_.file("/f")).st_mtim.tv_sec, 1200000000);
    const struct ::timespec bad[2] = {{0, 1000000000}, {0, 0}};
    client_->utimens("/f", bad, 0, ec_);
    EXPECT_EQ(ec_, errc(EINVAL)) << "the kernel's answer to nanoseconds out of range";

    client_->link("/f", "/hard", 0, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(lstat_of(broker_.file("/f")).st_nlink, 2u);
    client_->link("/l", "/hard-to-link", 0, ec_);  // link(2) links the symlink itself
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_TRUE(S_ISLNK(lstat_of(broker_.file("/hard-to-link")).st_mode));
    client_->link("/l", "/hard-followed", AT_SYMLINK_FOLLOW, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(lstat_of(broker_.file("/f")).st_nlink, 3u);

    client_->mknod("/fifo", S_IFIFO | 0600, 0, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_TRUE(S_ISFIFO(lstat_of(broker_.file("/fifo")).st_mode));
    client_->mknod("/fifo", S_IFIFO | 0600, 0, ec_);
    EXPECT_EQ(ec_, errc(EEXIST));
}

TEST_F(ClientTest, ExtendedAttributes) {
    write_file(broker_.file("/f"), "x");
    ASSERT_EQ(::symlink("f", broker_.file("/l").c_str()), 0);
    const std::string value = "text/plain";
    client_->setxattr("/l", "user.mime_type", value, XATTR_CREATE, 0, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    client_->setxattr("/f", "user.mime_type", value, XATTR_CREATE, 0, ec_);
    EXPECT_EQ(ec_, errc(EEXIST));
    std::array<char, 64> buf{};
    EXPECT_EQ(client_->getxattr("/f", "user.mime_type", {}, 0, ec_), value.size());  // the size only
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(client_->getxattr("/l", "user.mime_type", buf, 0, ec_), value.size());
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(std::string(buf.data(), value.size()), value);
    client_->getxattr("/l", "user.mime_type", buf, AT_SYMLINK_NOFOLLOW, ec_);
    EXPECT_EQ(ec_, errc(ENODATA)) << "the symlink itself has none";
    client_->getxattr("/f", "user.mime_type", std::span(buf).first(3), 0, ec_);
    EXPECT_EQ(ec_, errc(ERANGE));

    const std::size_t n = client_->listxattr("/f", buf, 0, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_NE(std::string(buf.data(), n).find("user.mime_type"), std::string::npos);
    EXPECT_EQ(client_->listxattr("/f", {}, 0, ec_), n);
    EXPECT_EQ(client_->listxattr("/l", buf, AT_SYMLINK_NOFOLLOW, ec_), 0u);

    client_->removexattr("/f", "user.mime_type", 0, ec_);
    ASSERT_FALSE(ec_) << ec_.message();
    client_->removexattr("/f", "user.mime_type", 0, ec_);
    EXPECT_EQ(ec_, errc(ENODATA));
    client_->setxattr("/f", "user.empty", {}, 0, 0, ec_);  // an empty value is a value
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(client_->getxattr("/f", "user.empty", buf, 0, ec_), 0u);
    EXPECT_FALSE(ec_) << ec_.message();
    client_->getxattr("/denied/f", "user.x", buf, 0, ec_);
    EXPECT_EQ(ec_, errc(EACCES));
}

TEST_F(ClientTest, ValuesOf64KiBTravelBothWays) {
    const std::size_t full = wire::kMaxXattrValue;
    std::vector<char> buf(full + 100);
    // More room than the largest value is what the kernel gives a larger buffer too.
    EXPECT_EQ(client_->getxattr("/size/65536", "user.big", buf, 0, ec_), full);
    ASSERT_FALSE(ec_) << ec_.message();
    const std::vector<std::byte> want = patterned(full);
    EXPECT_EQ(std::memcmp(buf.data(), want.data(), full), 0);
    EXPECT_EQ(client_->getxattr("/size/65536", "user.big", {}, 0, ec_), full);
    client_->getxattr("/size/65536", "user.big", std::span(buf).first(full - 1), 0, ec_);
    EXPECT_EQ(ec_, errc(ERANGE));
    EXPECT_EQ(client_->listxattr("/size/65535", buf, 0, ec_), full - 1);
    ASSERT_FALSE(ec_) << ec_.message();
    EXPECT_EQ(std::memcmp(buf.data(), want.data(), full - 1), 0);

    const auto value = std::span(reinterpret_cast<const char*>(want.data()), want.size());
    client_->setxattr("/size/65536", "user.big", value, 0, 0, ec_);
    EXPECT_FALSE(ec_) << ec_.message() << ": the fake saw a value other than the one sent";
    client_->setxattr("/size/65535", "user.big", value.first(full - 1), 0, 0, ec_);
    EXPECT_FALSE(ec_) << ec_.message();
    // The longest path and name with the largest value: the largest request there is.
    const std::string path = "/size/65536" + std::string(wire::kMaxPath - 11, '/');
    const std::string name(wire::kMaxXattrName, 'n');
    client_->setxattr(path.c_str(), name.c_str(), value, 0, 0, ec_);
    EXPECT_FALSE(ec_) << ec_.message();
}

TEST_F(ClientTest, MoreThanTheRoomGivenEndsTheChannel) {
    std::array<char, 10> buf{};
    client_->getxattr("/overfill", "user.x", buf, 0, ec_);
    EXPECT_EQ(ec_, errc(ECONNRESET));
    client_->listxattr("/overfill", buf, 0, ec_);
    EXPECT_EQ(ec_, errc(ECONNRESET));
    client_->getxattr("/overfill", "user.x", {}, 0, ec_);  // a value where only the size was asked
    EXPECT_EQ(ec_, errc(ECONNRESET));
    EXPECT_EQ(client_->stat("/size/4", ec_).st_size, 4);
    EXPECT_FALSE(ec_) << "the next call attaches again";
}

TEST_F(ClientTest, MetadataArgumentsAreCheckedLikeTheSyscalls) {
    std::array<char, 8> buf{};
    const std::string long_name(wire::kMaxXattrName + 1, 'n');
    const std::vector<char> too_big(wire::kMaxXattrValue + 1);
    client_->chmod("/f", 0600, AT_SYMLINK_FOLLOW, ec_);
    EXPECT_EQ(ec_, errc(EINVAL));
    client_->chown("", 0, 0, 0, ec_);
    EXPECT_EQ(ec_, errc(ENOENT));
    client_->truncate("/f", -1, ec_);
    EXPECT_EQ(ec_, errc(EINVAL));
    client_->utimens("/f", nullptr, AT_EMPTY_PATH, ec_);
    EXPECT_EQ(ec_, errc(EINVAL));
    client_->link("/f", nullptr, 0, ec_);
    EXPECT_EQ(ec_, errc(EFAULT));
    client_->link("/f", "/g", AT_SYMLINK_NOFOLLOW, ec_);
    EXPECT_EQ(ec_, errc(EINVAL));
    client_->mknod("/n", S_IFCHR | 0600, dev_t{1} << 40U, ec_);
    EXPECT_EQ(ec_, errc(EINVAL)) << "a device number the kernel cannot take";
    client_->getxattr("/f", nullptr, buf, 0, ec_);
    EXPECT_EQ(ec_, errc(EFAULT));
    client_->getxattr("/f", "", buf, 0, ec_);
    EXPECT_EQ(ec_, errc(ERANGE));
    client_->removexattr("/f", long_name.c_str(), 0, ec_);
    EXPECT_EQ(ec_, errc(ERANGE));
    client_->setxattr("/f", "user.x", too_big, 0, 0, ec_);
    EXPECT_EQ(ec_, errc(E2BIG));
    client_->setxattr("/f", "user.x", {}, 4, 0, ec_);
    EXPECT_EQ(ec_, errc(EINVAL));
    client_->listxattr("/f", buf, 1, ec_);
    EXPECT_EQ(ec_, errc(EINVAL));
    // Both times left as they are: utimensat(2) does not even look the path up.
    const struct ::timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    client_->utimens("/no/such/file", omit, 0, ec_);
    EXPECT_FALSE(ec_);
    // None of these was sent: the broker never saw an attach.
    EXPECT_TRUE(broker_.attach_pids().empty());
}

TEST_F(ClientTest, CApiMetadataCalls) {
    write_file(broker_.file("/c"), "0123456789");
    ASSERT_EQ(::symlink("c", broker_.file("/c.link").c_str()), 0);
    unique_fd channel = broker_.bootstrap();
    const std::string fd_text = std::to_string(channel.get());
    EXPECT_EQ(
        in_child([&] {
            ::setenv("FDBROKER_FD", fd_text.c_str(), 1);
            errno = 4321;
            CHILD_CHECK(fdbroker_chmod("/c", 0604) == 0 && errno == 4321);
            CHILD_CHECK(fdbroker_lchmod("/c.link", 0600) == -1 && errno == EOPNOTSUPP);
            CHILD_CHECK(fdbroker_lchmod("/c", 0600) == 0);
            CHILD_CHECK(fdbroker_chown("/c", static_cast<uid_t>(-1), static_cast<gid_t>(-1)) == 0);
            CHILD_CHECK(fdbroker_lchown("/c.link", ::getuid(), ::getgid()) == 0);
            CHILD_CHECK(fdbroker_truncate("/c", 4) == 0);
            CHILD_CHECK(fdbroker_truncate("/denied/c", 4) == -1 && errno == EACCES);
            const struct timespec times[2] = {{10, 0}, {20, 0}};
            CHILD_CHECK(fdbroker_utimens("/c", times, 0) == 0);
            CHILD_CHECK(fdbroker_utimens("/c", nullptr, 0x4000) == -1 && errno == EINVAL);
            CHILD_CHECK(fdbroker_link("/c", "/c.hard") == 0);
            CHILD_CHECK(fdbroker_link("/c", "/c.hard") == -1 && errno == EEXIST);
            CHILD_CHECK(fdbroker_mkfifo("/c.fifo", 0600) == 0);
            CHILD_CHECK(fdbroker_mknod("/c.sock", S_IFSOCK | 0600, 0) == 0);

            char buf[32];
            CHILD_CHECK(fdbroker_setxattr("/c", "user.k", "v1", 2, 0) == 0);
            CHILD_CHECK(fdbroker_getxattr("/c", "user.k", buf, sizeof buf) == 2);
            CHILD_CHECK(std::memcmp(buf, "v1", 2) == 0);
            CHILD_CHECK(fdbroker_getxattr("/c", "user.k", nullptr, 0) == 2);
            CHILD_CHECK(fdbroker_getxattr("/c", "user.k", nullptr, 8) == -1 && errno == EFAULT);
            CHILD_CHECK(fdbroker_lgetxattr("/c.link", "user.k", buf, sizeof buf) == -1 && errno == ENODATA);
            CHILD_CHECK(fdbroker_listxattr("/c", buf, sizeof buf) == 7);  // "user.k\0"
            CHILD_CHECK(fdbroker_llistxattr("/c.link", buf, sizeof buf) == 0);
            CHILD_CHECK(fdbroker_lsetxattr("/c.link", "user.k", "v", 1, 0) == -1 && errno == EPERM);
            CHILD_CHECK(fdbroker_removexattr("/c", "user.k") == 0);
            CHILD_CHECK(fdbroker_lremovexattr("/c", "user.k") == -1 && errno == ENODATA);
            return 0;
        }),
        0);
    struct ::stat st = lstat_of(broker_.file("/c"));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_size, 4);
    EXPECT_EQ(st.st_mtim.tv_sec, 20);
    EXPECT_EQ(st.st_nlink, 2u);
    EXPECT_TRUE(S_ISFIFO(lstat_of(broker_.file("/c.fifo")).st_mode));
    EXPECT_TRUE(S_ISSOCK(lstat_of(broker_.file("/c.sock")).st_mode));
}

}  // namespace
}  // namespace fdbroker
