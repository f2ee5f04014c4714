#define _GNU_SOURCE
/* fdcat: the smallest real worker. A C program linked against the shared libfdbroker that prints the
 * first line of each file named on its command line, or why the broker refused it.
 *
 *     fdbroker run --policy demo.toml -- fdcat /etc/debian_version /etc/shadow
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fdbroker/fdbroker.h>

int main(int argc, char** argv) {
    int failures = 0;
    for (int i = 1; i < argc; ++i) {
        int fd = fdbroker_open(argv[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            printf("%s: %s (%s)\n", argv[i], strerror(errno), strerrorname_np(errno));
            ++failures;
            continue;
        }
        char buf[256];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        printf("%s: %s\n", argv[i], buf);
    }
    return failures == 0 ? 0 : 1;
}
