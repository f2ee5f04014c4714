// libfdbroker's C functions over FDBROKER_FD, in forked children so that each reads the environment
// afresh: the syscall conventions (-1 and errno), close-on-exec, and use after fork.
#include "support/fake_broker.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include "fdbroker/fdbroker.h"

namespace fdbroker {
namespace {

using namespace fake;

TEST_F(ClientTest, CApiOverFdbrokerFd) {
    write_file(broker_.file("/c.txt"), "from C\n");
    ASSERT_EQ(::symlink("c.txt", broker_.file("/c.link").c_str()), 0);
    unique_fd channel = broker_.bootstrap();
    const std::string fd_text = std::to_string(channel.get());
    EXPECT_EQ(in_child([&] {
                  ::setenv("FDBROKER_FD", fd_text.c_str(), 1);
                  std::error_code ec;
                  Client::global(ec);
                  CHILD_CHECK(!ec);

                  errno = 12345;
                  int fd = fdbroker_open("/c.txt", O_RDONLY);
                  CHILD_CHECK(fd >= 0);
                  CHILD_CHECK(errno == 12345);  // untouched on success
                  CHILD_CHECK(::fcntl(fd, F_GETFD) == 0);
                  CHILD_CHECK(read_all(fd) == "from C\n");
                  ::close(fd);
                  fd = fdbroker_open("/c.txt", O_RDONLY | O_CLOEXEC);
                  CHILD_CHECK(fd >= 0 && ::fcntl(fd, F_GETFD) == FD_CLOEXEC);
                  ::close(fd);
                  fd = fdbroker_open("/created", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                  CHILD_CHECK(fd >= 0);
                  ::close(fd);
                  CHILD_CHECK(fdbroker_open("/denied/x", O_RDONLY) == -1 && errno == EACCES);
                  CHILD_CHECK(fdbroker_open(nullptr, O_RDONLY) == -1 && errno == EFAULT);
                  CHILD_CHECK(fdbroker_open("", O_RDONLY) == -1 && errno == ENOENT);

                  CHILD_CHECK(fdbroker_access("/c.txt", R_OK) == 0);
                  CHILD_CHECK(fdbroker_access("/gone", F_OK) == -1 && errno == ENOENT);

                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/size/77", &st) == 0 && st.st_size == 77);
                  CHILD_CHECK(fdbroker_stat("/size/77", nullptr) == -1 && errno == EFAULT);
                  CHILD_CHECK(fdbroker_stat("/denied/s", &st) == -1 && errno == EACCES);

                  char buf[64];
                  CHILD_CHECK(fdbroker_readlink("/c.link", buf, sizeof buf) == 5);
                  CHILD_CHECK(std::memcmp(buf, "c.txt", 5) == 0);
                  CHILD_CHECK(fdbroker_readlink("/c.link", buf, 3) == 3);
                  CHILD_CHECK(fdbroker_readlink("/c.link", buf, 0) == -1 && errno == EINVAL);
                  CHILD_CHECK(fdbroker_readlink("/c.link", nullptr, 8) == -1 && errno == EFAULT);

                  CHILD_CHECK(fdbroker_mkdir("/cdir", 0700) == 0);
                  CHILD_CHECK(fdbroker_mkdir("/cdir", 0700) == -1 && errno == EEXIST);
                  CHILD_CHECK(fdbroker_rename("/created", "/cdir/moved") == 0);
                  CHILD_CHECK(fdbroker_unlink("/cdir/moved") == 0);
                  CHILD_CHECK(fdbroker_rmdir("/cdir") == 0);
                  CHILD_CHECK(fdbroker_rmdir("/cdir") == -1 && errno == ENOENT);

                  const std::string address = "unix:@" + abstract_name("c-api");
                  errno = 777;
                  const int listener = fdbroker_listen(address.c_str(), 3);
                  CHILD_CHECK(listener >= 0 && errno == 777);
                  CHILD_CHECK(is_listening(listener) && ::fcntl(listener, F_GETFD) == FD_CLOEXEC);
                  const int conn = fdbroker_connect(address.c_str());
                  CHILD_CHECK(conn >= 0 && ::fcntl(conn, F_GETFD) == FD_CLOEXEC);
                  const int served = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
                  CHILD_CHECK(served >= 0 && ::write(conn, "c", 1) == 1);
                  char c = 0;
                  CHILD_CHECK(::read(served, &c, 1) == 1 && c == 'c');
                  ::close(served);
                  ::close(conn);
                  ::close(listener);
                  CHILD_CHECK(fdbroker_connect("unix:@denied") == -1 && errno == EACCES);
                  CHILD_CHECK(fdbroker_listen("udp:x", 1) == -1 && errno == EINVAL);
                  CHILD_CHECK(fdbroker_connect(nullptr) == -1 && errno == EFAULT);
                  return 0;
              }),
              0);
}

TEST_F(ClientTest, CApiAfterForkInAChild) {
    unique_fd channel = broker_.bootstrap();
    const std::string fd_text = std::to_string(channel.get());
    EXPECT_EQ(in_child([&] {
                  ::setenv("FDBROKER_FD", fd_text.c_str(), 1);
                  struct stat st {};
                  CHILD_CHECK(fdbroker_stat("/size/10", &st) == 0 && st.st_size == 10);
                  const pid_t grandchild = ::fork();
                  if (grandchild == 0) {
                      struct stat gst {};
                      ::_exit(fdbroker_stat("/size/11", &gst) == 0 && gst.st_size == 11 ? 0 : 1);
                  }
                  int status = 0;
                  CHILD_CHECK(::waitpid(grandchild, &status, 0) == grandchild);
                  CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                  CHILD_CHECK(fdbroker_stat("/size/12", &st) == 0 && st.st_size == 12);
                  return 0;
              }),
              0);
    // The child and the grandchild each attached once, from their own pids.
    const auto pids = broker_.attach_pids();
    ASSERT_EQ(pids.size(), 2u);
    EXPECT_NE(pids[0], pids[1]);
    EXPECT_NE(pids[0], ::getpid());
}

}  // namespace
}  // namespace fdbroker
