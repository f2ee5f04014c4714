/* The P4 floor: the least a seccomp user-notification supervisor can do to broker a program's opens,
 * in plain C. The child installs a libseccomp filter that sends open and openat to the parent and
 * execs PROGRAM; the parent copies each path out of the child's memory (process_vm_readv), checks the
 * notification is still valid, opens the path itself and answers with SECCOMP_IOCTL_NOTIF_ADDFD +
 * SECCOMP_ADDFD_FLAG_SEND. No policy, no confinement beyond the filter, no event loop: what the
 * kernel requires of transparent mode, and what `fdbroker run --transparent` is measured against.
 *
 * With FLOOR_CONFINED=1 the supervisor also pays what fdbroker's broker must for a path a wildcard rule
 * grants (P4's tree rule): it runs under a seccomp filter (floor_confine.h), looks at the file's type
 * before opening it (fstatat: a device or FIFO is opened only when a rule names it exactly) and opens
 * with openat2's resolution flags.
 *
 * Built as notif_floor_policy, it also does what fdbroker's broker must beyond that (floor_policy.h):
 * decides each open by fdbroker's policy engine first (FLOOR_POLICY, profile `default`), refusing with
 * EACCES, and runs a second thread as fdbroker's watchdog does.
 *
 * usage: notif_floor PROGRAM [ARG...]     exits with PROGRAM's status
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "floor_confine.h"
#ifdef FLOOR_WITH_POLICY
#include "floor_policy.h"
#endif

static int confined = 0;

/* The supervisor's open: plain, or as a confined broker must (see above). */
static int open_path(const char* path, int flags, mode_t mode) {
#ifdef FLOOR_WITH_POLICY
    if (!floor_policy_allows(path, flags)) {
        errno = EACCES;
        return -1;
    }
#endif
    if (!confined) return open(path, flags, mode);
    struct stat st;
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
        errno = EACCES;
        return -1;
    }
    struct open_how how = {.flags = (uint64_t)flags | O_NOCTTY,
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    /* A symlink on the way (the loader's /lib): fdbroker walks it hop by hop; the floor just opens. */
    return fd < 0 && errno == ELOOP ? open(path, flags, mode) : fd;
}

static int install_filter(void) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) return -1;
    if (seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(open), 0) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(openat), 0) != 0 || seccomp_load(ctx) != 0)
        return -1;
    int fd = seccomp_notify_fd(ctx);
    seccomp_release(ctx);
    return fd;
}

static void answer(int notify, struct seccomp_notif* req) {
    struct seccomp_notif_resp resp = {.id = req->id};
    int at = req->data.nr == SCMP_SYS(openat);
    int dirfd = at ? (int)req->data.args[0] : AT_FDCWD;
    unsigned long long addr = req->data.args[at ? 1 : 0];
    int flags = (int)req->data.args[at ? 2 : 1];
    char path[4096];
    /* The cheapest copy there is: one process_vm_readv up to the end of the page (a path in these
     * benchmarks is short), confirmed by ID_VALID below as the broker does. */
    size_t chunk = 4096 - (size_t)(addr & 4095);
    struct iovec local = {path, chunk};
    struct iovec remote = {(void*)(uintptr_t)addr, chunk};
    ssize_t n = process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0);
    /* A path that runs on into the next page (the caller's buffer straddles the end of one): the rest. */
    if (n == (ssize_t)chunk && chunk < sizeof path && memchr(path, 0, chunk) == NULL) {
        struct iovec rest_local = {path + chunk, sizeof path - chunk};
        struct iovec rest_remote = {(void*)(uintptr_t)(addr + chunk), sizeof path - chunk};
        const ssize_t more = process_vm_readv((pid_t)req->pid, &rest_local, 1, &rest_remote, 1, 0);
        if (more > 0) n += more;
    }
    if (n <= 0 || memchr(path, 0, (size_t)n) == NULL || dirfd != AT_FDCWD) {
        resp.error = n <= 0 ? -EFAULT : dirfd != AT_FDCWD ? -EACCES : -ENAMETOOLONG;
        ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        return;
    }
    if (ioctl(notify, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0) return;
    int fd = open_path(path, flags | O_CLOEXEC, (mode_t)req->data.args[at ? 3 : 2]);
    if (fd < 0) {
        resp.error = -errno;
        ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        return;
    }
    struct seccomp_notif_addfd addfd = {.id = req->id,
                                        .flags = SECCOMP_ADDFD_FLAG_SEND,
                                        .srcfd = (unsigned)fd,
                                        .newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0};
    if (ioctl(notify, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0 && errno != ENOENT) {
        resp.error = -errno;
        ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    close(fd);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: notif_floor PROGRAM [ARG...]\n");
        return 2;
    }
    int pidfd = -1;
    int ready[2], go[2]; /* child to parent: the listener's number; parent to child: go ahead */
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return 2;
    pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) {
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = install_filter();
        if (fd < 0 || write(ready[1], &fd, sizeof fd) != sizeof fd) _exit(125);
        /* The parent takes the listener with pidfd_getfd, then lets us go. */
        char byte;
        if (read(go[0], &byte, 1) != 1) _exit(125);
        close(fd);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int childfd = -1;
    if (read(ready[0], &childfd, sizeof childfd) != sizeof childfd) return 125;
    pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    int notify = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, childfd, 0);
    if (notify < 0) return 125;
#ifdef FLOOR_WITH_POLICY
    if (floor_policy_start() != 0) return 125;
#endif
    confined = floor_confined();
    if (confined && floor_confine() != 0) return 125;
    if (write(go[1], "g", 1) != 1) return 125;
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);

    struct seccomp_notif* req = NULL;
    struct seccomp_notif_resp* unused = NULL;
    if (seccomp_notify_alloc(&req, &unused) != 0) return 125;
    for (;;) {
        /* A blocking receive would wait forever once every process under the filter has exited:
         * that shows only as POLLHUP. */
        struct pollfd p = {.fd = notify, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) break;
        if (p.revents & POLLIN) {
            memset(req, 0, sizeof *req);
            if (ioctl(notify, SECCOMP_IOCTL_NOTIF_RECV, req) == 0) answer(notify, req);
        } else if (p.revents & (POLLHUP | POLLERR)) {
            break;
        }
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
