/* Transparent mode's bare open, measured as an outside user would: an unmodified C program that opens
 * one file read-only and closes it, over and over, and reports the mean per call (the whole loop timed
 * at once, every slow call counted). Run under `fdbroker run --transparent` and under notif_floor.c.
 * With --stat it calls stat() instead: a brokered call answered without a descriptor.
 *
 * usage: open_close [--stat] PATH ITERATIONS WARMUP
 * prints "mean_ns X".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timing.h"

static int stat_only(const char* path, long n) {
    struct stat st;
    for (long i = 0; i < n; ++i)
        if (stat(path, &st) != 0) {
            perror(path);
            return 1;
        }
    return 0;
}

static int open_close(const char* path, long n) {
    for (long i = 0; i < n; ++i) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        close(fd);
    }
    return 0;
}

int main(int argc, char** argv) {
    int (*call)(const char*, long) = open_close;
    if (argc == 5 && strcmp(argv[1], "--stat") == 0) {
        call = stat_only;
        --argc;
        ++argv;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: open_close [--stat] PATH ITERATIONS WARMUP\n");
        return 2;
    }
    long iterations = atol(argv[2]), warmup = atol(argv[3]);
    if (iterations < 1 || warmup < 0) return 2;
    if (call(argv[1], warmup) != 0) return 1;
    uint64_t t0 = now_ns();
    if (call(argv[1], iterations) != 0) return 1;
    printf("mean_ns %llu\n", (unsigned long long)((now_ns() - t0) / (uint64_t)iterations));
    return 0;
}
