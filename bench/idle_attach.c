/* P3: many connected, idle channels on one broker, to read the broker's memory per channel.
 *
 * Runs as a worker under `fdbroker run`: attaches N private channels on its bootstrap channel
 * (FDBROKER_FD) with the raw attach handshake of docs/protocol.md, keeps them all open and idle,
 * prints "ready N" and waits for end of file on stdin. bench/run.sh reads the broker's VmRSS
 * meanwhile. The broker accepts at most 4 channels per process, so the N channels are spread over
 * ceil(N / 4) forked processes: per-process state (a pidfd, a process-tree entry) is counted once
 * for every 4 channels, which bench/README.md notes next to the figure.
 *
 * usage: idle_attach N
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void put16(unsigned char* p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char* p, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* One attach: returns our end of the new private channel, or -1. */
static int attach(int bootstrap, uint32_t id) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return -1;
    unsigned char frame[24] = {0};
    put16(frame, 1);     /* version */
    put16(frame + 2, 1); /* op: attach */
    put32(frame + 4, id);

    struct iovec iov = {.iov_base = frame, .iov_len = sizeof frame};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pair[1], sizeof(int));
    cm = CMSG_NXTHDR(&msg, cm);
    struct ucred cred = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof cred);
    memcpy(CMSG_DATA(cm), &cred, sizeof cred);

    ssize_t sent = sendmsg(bootstrap, &msg, MSG_NOSIGNAL);
    close(pair[1]); /* the broker holds the only other copy now */
    unsigned char reply[16];
    if (sent != (ssize_t)sizeof frame || recv(pair[0], reply, sizeof reply, 0) != (ssize_t)sizeof reply) {
        close(pair[0]);
        return -1;
    }
    int32_t result = (int32_t)((uint32_t)reply[8] | (uint32_t)reply[9] << 8 | (uint32_t)reply[10] << 16 |
                               (uint32_t)reply[11] << 24);
    if (result != 0) {
        errno = -result;
        close(pair[0]);
        return -1;
    }
    return pair[0];
}

enum { kPerProcess = 4 };

/* A child: attaches `count` channels, reports on `ready`, then idles until `go` reaches end of file. */
static void child(int bootstrap, long count, int ready, int go) {
    /* The channel fds are deliberately never closed: they must stay connected until we exit. */
    /* The byte on `ready` says whether all attached: a failed child must still report, or the
     * parent would wait for it for ever while its siblings hold the pipe open. */
    char c = 1;
    for (long i = 0; i < count && c; ++i)
        if (attach(bootstrap, (uint32_t)i + 1) < 0) {
            fprintf(stderr, "attach: %s\n", strerror(errno));
            c = 0;
        }
    if (write(ready, &c, 1) != 1 || !c) _exit(1);
    while (read(go, &c, 1) > 0) {
    }
    _exit(0);
}

int main(int argc, char** argv) {
    const char* env = getenv("FDBROKER_FD");
    if (argc != 2 || env == NULL) {
        fprintf(stderr, "usage: FDBROKER_FD=N %s COUNT (run it under fdbroker run)\n", argv[0]);
        return 2;
    }
    int bootstrap = atoi(env);
    long count = atol(argv[1]);
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return 1;
    long procs = 0;
    for (long left = count; left > 0; left -= kPerProcess, ++procs) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            close(ready[0]);
            close(go[1]);
            child(bootstrap, left < kPerProcess ? left : kPerProcess, ready[1], go[0]);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (long p = 0; p < procs; ++p) {
        char c;
        if (read(ready[0], &c, 1) != 1 || !c) {
            fprintf(stderr, "a child failed to attach\n");
            return 1;
        }
    }
    printf("ready %ld channels in %ld processes\n", count, procs);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    close(go[1]); /* end of file: the children exit */
    while (wait(NULL) > 0) {
    }
    return 0;
}
