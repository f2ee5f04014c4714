/* P5: how long a command takes from fork to reaped exit, as the median of N runs after a warm-up.
 *
 * usage: spawn_timer RUNS WARMUP [--fd N FILE] -- COMMAND [ARGS...]
 * prints "median_ns X"; the command's stdout and stderr go to /dev/null, and a run that exits
 * non-zero is an error (a start-up figure for a program that failed to start means nothing).
 * --fd opens FILE afresh for every run as the command's descriptor N (what bubblewrap's --seccomp N
 * reads to its end).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

struct extra_fd {
    int number; /* -1: none */
    const char* file;
};

static int run_once(char** cmd, struct extra_fd extra, uint64_t* elapsed) {
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(126);
        if (extra.number >= 0) {
            int fd = open(extra.file, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || dup2(fd, extra.number) < 0) _exit(126);
        }
        execvp(cmd[0], cmd);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    *elapsed = now_ns() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "spawn_timer: %s exited with status %d\n", cmd[0], status);
        return -1;
    }
    return 0;
}

int main(int argc, char** argv) {
    struct extra_fd extra = {-1, NULL};
    int dashes = 3;
    if (argc > 6 && strcmp(argv[3], "--fd") == 0) {
        extra.number = atoi(argv[4]);
        extra.file = argv[5];
        dashes = 6;
    }
    if (argc < dashes + 2 || strcmp(argv[dashes], "--") != 0 || extra.number == 0 || extra.number == 1 ||
        extra.number == 2) {
        fprintf(stderr, "usage: %s RUNS WARMUP [--fd N FILE] -- COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    long runs = atol(argv[1]), warmup = atol(argv[2]);
    char** cmd = argv + dashes + 1;
    uint64_t* samples = calloc((size_t)(runs > 0 ? runs : 1), sizeof *samples);
    if (runs < 1 || samples == NULL) return 2;
    uint64_t ignored;
    for (long i = 0; i < warmup; ++i)
        if (run_once(cmd, extra, &ignored) != 0) return 1;
    for (long i = 0; i < runs; ++i)
        if (run_once(cmd, extra, &samples[i]) != 0) return 1;
    qsort(samples, (size_t)runs, sizeof *samples, cmp_u64);
    printf("median_ns %llu\n", (unsigned long long)samples[runs / 2]);
    free(samples);
    return 0;
}
