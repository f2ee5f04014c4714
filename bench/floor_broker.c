/* The floor broker: the least a broker can do for a brokered open, in plain C.
 *
 * One thread, one epoll set, one listening SOCK_SEQPACKET socket. A request is the open flags
 * (4 bytes) followed by the path; the reply is the errno (4 bytes, 0 on success) with the opened
 * descriptor attached as SCM_RIGHTS. No policy, no framing beyond that, no allocation per request:
 * this is what the kernel requires, and what fdbroker is measured against.
 *
 * usage: floor_broker SOCKET_PATH [CPU]   (runs until killed; CPU pins the broker)
 * With FLOOR_CONFINED=1 it also pays what fdbroker's authentication and confinement cost (floor_confine.h).
 * Built as floor_broker_policy, it also does what fdbroker's broker must beyond that (floor_policy.h):
 * decides each request by fdbroker's policy engine first (the policy file in FLOOR_POLICY, its profile
 * `default`), refusing with EACCES, and runs a second thread as fdbroker's watchdog does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "floor_confine.h"
#include "floor_proto.h"
#ifdef FLOOR_WITH_POLICY
#include "floor_policy.h"
#endif

static int confined = 0;

/* A request and, when confined, the sender's credentials the kernel attached to it. */
static ssize_t receive(int conn, struct floor_request* req) {
    if (!confined) return recv(conn, req, sizeof *req - 1, MSG_DONTWAIT);
    struct iovec iov = {.iov_base = req, .iov_len = sizeof *req - 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(conn, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    struct cmsghdr* cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (n > 0 && (cm == NULL || cm->cmsg_type != SCM_CREDENTIALS)) return 0; /* unauthenticated: refuse */
    return n;
}

static int open_path(const char* path, int flags) {
#ifdef FLOOR_WITH_POLICY
    if (!floor_policy_allows(path, flags)) {
        errno = EACCES;
        return -1;
    }
#endif
    if (!confined) return open(path, flags);
    struct open_how how = {.flags = (uint64_t)flags, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}

static void serve_one(int conn, int ep) {
    struct floor_request req;
    ssize_t n = receive(conn, &req);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= (ssize_t)sizeof req.flags) {
        /* EOF or a malformed request: forget the connection. */
        epoll_ctl(ep, EPOLL_CTL_DEL, conn, NULL);
        close(conn);
        return;
    }
    ((char*)&req)[n] = '\0';
    int fd = open_path(req.path, (int)req.flags | O_CLOEXEC);
    int32_t err = fd < 0 ? errno : 0;

    struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    /* A worker that went away is not the broker's problem: MSG_NOSIGNAL, ignore the error. */
    (void)sendmsg(conn, &msg, MSG_NOSIGNAL);
    if (fd >= 0) close(fd);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOCKET_PATH [CPU]\n", argv[0]);
        return 2;
    }
    if (argc > 2) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(atoi(argv[2]), &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
    }
#ifdef FLOOR_WITH_POLICY
    if (floor_policy_start() != 0) return 2;
#endif
    confined = floor_confined();
    if (confined && floor_confine() != 0) {
        perror("floor_confine");
        return 1;
    }
    int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (lfd < 0 || strlen(argv[1]) >= sizeof addr.sun_path) {
        perror("socket");
        return 1;
    }
    strcpy(addr.sun_path, argv[1]);
    unlink(argv[1]);
    /* On the listening socket, so that a request sent before accept() carries credentials too. */
    const int on = 1;
    if (confined && setsockopt(lfd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
        perror("SO_PASSCRED");
        return 1;
    }
    if (bind(lfd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(lfd, 256) != 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int conn;
                while ((conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = conn};
                    epoll_ctl(ep, EPOLL_CTL_ADD, conn, &cev);
                }
            } else {
                serve_one(fd, ep);
            }
        }
    }
}
