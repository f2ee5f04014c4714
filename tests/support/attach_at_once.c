/* A worker that attaches to the broker as the very first thing it does, before any library or
 * runtime start-up could give the broker time to prepare: it speaks the wire format itself
 * (docs/protocol.md) and prints "ok" when the attach reply arrives, or what went wrong. Built
 * static where the C library allows, so that it reaches main() as early as a program can. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put16(unsigned char* p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char* p, uint32_t v) {
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

int main(void) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return 2;
    unsigned char frame[24] = {0};
    put16(frame, 1);     /* version */
    put16(frame + 2, 1); /* op: attach */
    put32(frame + 4, 1); /* id */

    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {frame, sizeof frame};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &pair[1], sizeof(int));
    if (sendmsg(3, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof frame) {
        printf("send: %s\n", strerror(errno));
        return 1;
    }
    close(pair[1]);

    unsigned char reply[16];
    const ssize_t n = recv(pair[0], reply, sizeof reply, 0);
    if (n != (ssize_t)sizeof reply) {
        printf("no reply (%zd)\n", n);
        return 1;
    }
    const int32_t result = (int32_t)((uint32_t)reply[8] | (uint32_t)reply[9] << 8 |
                                     (uint32_t)reply[10] << 16 | (uint32_t)reply[11] << 24);
    if (result != 0) {
        printf("refused: %s\n", strerror(-result));
        return 1;
    }
    printf("ok\n");
    return 0;
}
