/* The P4 workload: an ordinary program that reads many small files with plain open/read/close, as a
 * build or a test runner does. Run natively, under the user-notification floor (notif_floor.c), under
 * `fdbroker run --transparent` and under proot; it times only its own loop, so start-up costs (which
 * differ widely between the four) stay out of the figure.
 *
 * usage: read_files DIR COUNT ROUNDS     reads DIR/0 .. DIR/COUNT-1, ROUNDS times
 * prints "median_ns X": the median over the rounds of the time one round took.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "timing.h"

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: read_files DIR COUNT ROUNDS\n");
        return 2;
    }
    const char* dir = argv[1];
    int count = atoi(argv[2]), rounds = atoi(argv[3]);
    if (count <= 0 || rounds <= 0 || rounds > 1000) return 2;
    uint64_t samples[1000];
    char path[4096], buf[4096];
    for (int r = 0; r < rounds; ++r) {
        uint64_t start = now_ns();
        for (int i = 0; i < count; ++i) {
            snprintf(path, sizeof path, "%s/%d", dir, i);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                perror(path);
                return 1;
            }
            while (read(fd, buf, sizeof buf) > 0) {
            }
            close(fd);
        }
        samples[r] = now_ns() - start;
    }
    qsort(samples, (size_t)rounds, sizeof samples[0], cmp_u64);
    printf("median_ns %llu\n", (unsigned long long)samples[rounds / 2]);
    return 0;
}
