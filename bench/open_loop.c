/* The worker side of P1, P2 and P7: opens one file over and over through a broker and reports the
 * median round trip (one process) or the aggregate throughput (several).
 *
 * Built twice from this one file, so both sides are timed by identical code:
 *   open_loop_floor    asks floor_broker (FLOOR_SOCKET names its socket); with FLOOR_CONFINED=1
 *                      it runs under a seccomp filter as fdbroker's worker does (floor_confine.h);
 *   open_loop_fdbroker calls fdbroker_open() and runs under `fdbroker run`; with --batch B (P7) each
 *                      call is one fdbroker_open_many() of B opens of the file.
 *
 * usage: open_loop [--cpu N] [--procs P] [--batch B] [--mean 1] PATH ITERATIONS WARMUP
 * prints "median_ns X" (P = 1; per call, a whole batch with --batch) or "ops_per_sec X" (P > 1); with
 * --mean 1, "mean_ns X": the whole loop timed at once and divided by ITERATIONS, every slow call
 * counted (the unpinned outside measurement in run.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

#ifdef USE_FDBROKER
#include <fdbroker/fdbroker.h>

#define brokered_open(path) fdbroker_open((path), O_RDONLY | O_CLOEXEC)
#else
#include "floor_confine.h"
#include "floor_proto.h"

/* One connection per process, made on first use after any fork, as libfdbroker attaches. */
static int floor_conn = -1;

static int floor_connect(void) {
    const char* sock = getenv("FLOOR_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (sock == NULL || strlen(sock) >= sizeof addr.sun_path) return -1;
    strcpy(addr.sun_path, sock);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int brokered_open(const char* path) {
    if (floor_conn < 0 && (floor_conn = floor_connect()) < 0) return -1;
    struct floor_request req;
    size_t len = strlen(path);
    req.flags = O_RDONLY;
    memcpy(req.path, path, len);
    if (send(floor_conn, &req, sizeof req.flags + len, MSG_NOSIGNAL) < 0) return -1;

    int32_t err = 0;
    struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    if (recvmsg(floor_conn, &msg, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof err) return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    if (cm == NULL || cm->cmsg_type != SCM_RIGHTS) {
        errno = EPROTO;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}
#endif

/* Opens per call: 1, or a batch's size (fdbroker only). */
static long batch = 1;

#ifdef USE_FDBROKER
static int batch_call(const char* path) {
    struct fdbroker_open_request requests[FDBROKER_OPEN_MANY_MAX];
    int fds[FDBROKER_OPEN_MANY_MAX];
    for (long i = 0; i < batch; ++i)
        requests[i] = (struct fdbroker_open_request){.path = path, .flags = O_RDONLY | O_CLOEXEC, .mode = 0};
    if (fdbroker_open_many(requests, (size_t)batch, fds) != 0) {
        perror("brokered open_many");
        return -1;
    }
    int failed = 0;
    for (long i = 0; i < batch; ++i) {
        if (fds[i] < 0)
            failed = -fds[i];
        else
            close(fds[i]);
    }
    if (failed != 0) {
        errno = failed;
        perror("brokered open_many entry");
        return -1;
    }
    return 0;
}
#else
static int batch_call(const char* path) {
    (void)path;
    fprintf(stderr, "--batch: the floor broker has no batched open\n");
    return -1;
}
#endif

static int mean = 0;

static int one_call(const char* path) {
    if (batch > 1) return batch_call(path);
    int fd = brokered_open(path);
    if (fd < 0) {
        perror("brokered open");
        return -1;
    }
    close(fd);
    return 0;
}

static int warm_up(const char* path, long warmup) {
    for (long i = 0; i < warmup; ++i)
        if (one_call(path) != 0) return -1;
    return 0;
}

/* P1: time every call separately so the median is not skewed by the odd preempted one. */
static int latency(const char* path, long iterations, long warmup) {
    uint64_t* samples = calloc((size_t)iterations, sizeof *samples);
    if (samples == NULL || warm_up(path, warmup) != 0) return 1;
    for (long i = 0; i < iterations; ++i) {
        uint64_t t0 = now_ns();
        if (one_call(path) != 0) return 1;
        samples[i] = now_ns() - t0;
    }
    qsort(samples, (size_t)iterations, sizeof *samples, cmp_u64);
    printf("median_ns %llu\n", (unsigned long long)samples[iterations / 2]);
    free(samples);
    return 0;
}

/* The same loop timed as a whole: the mean per call, slow calls included. */
static int mean_latency(const char* path, long iterations, long warmup) {
    if (warm_up(path, warmup) != 0) return 1;
    uint64_t t0 = now_ns();
    for (long i = 0; i < iterations; ++i)
        if (one_call(path) != 0) return 1;
    printf("mean_ns %llu\n", (unsigned long long)((now_ns() - t0) / (uint64_t)iterations));
    return 0;
}

/* P2: P processes connect and warm up, wait at a barrier, then all hammer the broker at once; the
 * wall time from releasing the barrier to the last exit gives the throughput. */
static int throughput(const char* path, long iterations, long warmup, int procs) {
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return 1;
    for (int p = 0; p < procs; ++p) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            close(ready[0]);
            close(go[1]);
            if (warm_up(path, warmup) != 0) _exit(1);
            char c = 1;
            if (write(ready[1], &c, 1) != 1) _exit(1);
            /* EOF on `go` is the starting gun: the parent closes its end. */
            if (read(go[0], &c, 1) != 0) _exit(1);
            for (long i = 0; i < iterations; ++i)
                if (one_call(path) != 0) _exit(1);
            _exit(0);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (int p = 0; p < procs; ++p) {
        char c;
        if (read(ready[0], &c, 1) != 1) {
            fprintf(stderr, "a child failed to warm up\n");
            return 1;
        }
    }
    uint64_t t0 = now_ns();
    close(go[1]);
    int failed = 0, status;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    uint64_t elapsed = now_ns() - t0;
    if (failed) {
        fprintf(stderr, "a child failed\n");
        return 1;
    }
    printf("ops_per_sec %.0f\n", (double)iterations * procs * 1e9 / (double)elapsed);
    return 0;
}

int main(int argc, char** argv) {
    int cpu = -1, procs = 1, i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--cpu") == 0)
            cpu = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--procs") == 0)
            procs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--mean") == 0)
            mean = atoi(argv[i + 1]);
        else
            break;
    }
    if (argc - i != 3 || procs < 1 || batch < 1 || batch > 64) {
        fprintf(stderr, "usage: %s [--cpu N] [--procs P] [--batch 1-64] [--mean 1] PATH ITERATIONS WARMUP\n",
                argv[0]);
        return 2;
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            perror("sched_setaffinity");
            return 1;
        }
    }
#ifndef USE_FDBROKER
    if (floor_confined() && floor_confine() != 0) {
        perror("floor_confine");
        return 1;
    }
#endif
    const char* path = argv[i];
    long iterations = atol(argv[i + 1]), warmup = atol(argv[i + 2]);
    if (iterations < 1) return 2;
    if (procs > 1) return throughput(path, iterations, warmup, procs);
    return mean ? mean_latency(path, iterations, warmup) : latency(path, iterations, warmup);
}
