/* A program built against an unpacked fdbroker package: it must link, load the packaged library and
 * call it. With no broker reachable (the test points FDBROKER_SOCKET at a path where nothing
 * listens), fdbroker_open must fail with ENOTCONN, as the C API promises. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <fdbroker/fdbroker.h>

int main(void) {
    errno = 0;
    int fd = fdbroker_open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (fd != -1 || errno != ENOTCONN) {
        fprintf(stderr, "fdbroker_open returned %d, errno %d (%s); expected -1, ENOTCONN\n", fd, errno,
                strerror(errno));
        return 1;
    }
    puts("fdbroker_open without a broker: ENOTCONN");
    return 0;
}
