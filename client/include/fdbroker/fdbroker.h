/* libfdbroker: ask the fdbroker broker for files and sockets instead of opening them yourself.
 *
 * Each call behaves like the system call it replaces: it returns the result (an fd, 0, a length) or
 * -1 with errno set. A request the policy denies fails with EACCES whether or not the path exists.
 * The channel to the broker is found from FDBROKER_FD, else FDBROKER_SOCKET, else the default serve
 * socket; with none reachable calls fail with ENOTCONN, and if the broker goes away they fail with
 * ECONNRESET (never SIGPIPE). All functions are thread-safe and may be used after fork(). They are
 * not async-signal-safe: they take locks and may allocate, so a signal handler must not call them.
 */
#ifndef FDBROKER_FDBROKER_H
#define FDBROKER_FDBROKER_H

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FDBROKER_API __attribute__((visibility("default")))
#else
#define FDBROKER_API
#endif

/* Like open(2). O_CLOEXEC on the returned fd only if flags ask for it. In a worker whose profile
 * says reads = "kernel" (FDBROKER_KERNEL_READS=1), a read-only open is tried directly first, and
 * the broker asked only if the kernel refuses it. */
FDBROKER_API int fdbroker_open(const char* path, int flags, ... /* mode_t mode */);
/* Many opens in one round trip to the broker (FDBROKER_OPEN_MANY_MAX at most), for a worker that
 * opens many files: each entry is decided, performed and audited exactly as fdbroker_open(path, flags,
 * mode) would be (mode is read only when flags hold O_CREAT or O_TMPFILE). fds[i] receives entry i's
 * descriptor (O_CLOEXEC only if its flags ask for it), or -errno if that open failed. Returns 0, or -1
 * with errno when the exchange itself failed (EFAULT: requests or fds NULL; EINVAL: n above
 * FDBROKER_OPEN_MANY_MAX; ENOTCONN, ECONNRESET as for every call), and then leaves no descriptor
 * open. Paths longer than about a thousand bytes on average take a few round trips. Under
 * reads = "kernel", as for fdbroker_open, each read-only entry is tried directly first and only the
 * others go to the broker (no round trip at all when the kernel opens every one). */
#define FDBROKER_OPEN_MANY_MAX 64
struct fdbroker_open_request {
    const char* path;
    int flags;
    mode_t mode;
};
FDBROKER_API int fdbroker_open_many(const struct fdbroker_open_request* requests, size_t n, int* fds);
/* Like access(2): R_OK/W_OK need read/write, F_OK any permission; X_OK is the kernel's answer for the
 * worker's user on a path it may see. */
FDBROKER_API int fdbroker_access(const char* path, int mode);
/* Like stat(2) (follows a final symlink). */
FDBROKER_API int fdbroker_stat(const char* path, struct stat* st);
/* Like readlink(2): no terminating NUL, truncated to size. */
FDBROKER_API ssize_t fdbroker_readlink(const char* path, char* buf, size_t size);
FDBROKER_API int fdbroker_mkdir(const char* path, mode_t mode);
FDBROKER_API int fdbroker_unlink(const char* path);
FDBROKER_API int fdbroker_rmdir(const char* path);
FDBROKER_API int fdbroker_rename(const char* from, const char* to);

/* Changes to a file's metadata. They need write on the path (mknod, mkfifo and link's new name need
 * create); the broker makes the change as the worker's user, so the kernel's own rules on who may
 * change what apply (EPERM for a file the worker does not own, chown to another user...), whatever
 * the policy grants. The l- forms act on a final symlink itself. */
FDBROKER_API int fdbroker_chmod(const char* path, mode_t mode);
/* Like lchmod(3): a symlink's own mode cannot be changed (EOPNOTSUPP); any other file's can. */
FDBROKER_API int fdbroker_lchmod(const char* path, mode_t mode);
FDBROKER_API int fdbroker_chown(const char* path, uid_t owner, gid_t group);
FDBROKER_API int fdbroker_lchown(const char* path, uid_t owner, gid_t group);
FDBROKER_API int fdbroker_truncate(const char* path, off_t length);
/* Like utimensat(AT_FDCWD, path, times, flags): times NULL for now, UTIME_NOW and UTIME_OMIT
 * honoured; flags 0 or AT_SYMLINK_NOFOLLOW. */
FDBROKER_API int fdbroker_utimens(const char* path, const struct timespec times[2], int flags);
/* Like link(2): the new name may not grant more than the old one has (EACCES). */
FDBROKER_API int fdbroker_link(const char* from, const char* to);
/* Like mknod(2) and mkfifo(3). Device nodes are refused by the kernel (the worker has no CAP_MKNOD). */
FDBROKER_API int fdbroker_mknod(const char* path, mode_t mode, dev_t dev);
FDBROKER_API int fdbroker_mkfifo(const char* path, mode_t mode);

/* Extended attributes, like getxattr(2), listxattr(2), setxattr(2) and removexattr(2) with their l-
 * forms. Setting and removing need write. Getting and listing need any grant, and show the file's
 * attributes where it may be read; elsewhere it looks as if it had none (ENODATA, an empty list).
 * Values and lists are at most 64 KiB; a size of 0 asks for the length only. */
FDBROKER_API ssize_t fdbroker_getxattr(const char* path, const char* name, void* value, size_t size);
FDBROKER_API ssize_t fdbroker_lgetxattr(const char* path, const char* name, void* value, size_t size);
FDBROKER_API ssize_t fdbroker_listxattr(const char* path, char* list, size_t size);
FDBROKER_API ssize_t fdbroker_llistxattr(const char* path, char* list, size_t size);
FDBROKER_API int fdbroker_setxattr(const char* path, const char* name, const void* value, size_t size,
                                   int flags);
FDBROKER_API int fdbroker_lsetxattr(const char* path, const char* name, const void* value, size_t size,
                                    int flags);
FDBROKER_API int fdbroker_removexattr(const char* path, const char* name);
FDBROKER_API int fdbroker_lremovexattr(const char* path, const char* name);

/* Sockets, by address: "tcp:HOST:PORT", "udp:HOST:PORT" (HOST an IPv4 address or [IPv6]),
 * "unix:/path" or "unix:@abstract". The returned socket is always close-on-exec and blocking.
 * A malformed address fails with EINVAL, one the policy does not grant with EACCES.
 *
 * Like socket(2) + connect(2): a connected socket (for udp, one with a default peer). */
FDBROKER_API int fdbroker_connect(const char* address);
/* Like socket(2) + bind(2) + listen(2): a listening socket; for udp, a bound one (backlog unused). */
FDBROKER_API int fdbroker_listen(const char* address, int backlog);

/* Confines the calling process with fdbroker's worker system call filter, for a worker that was not
 * started by `fdbroker run` (e.g. one started by systemd that connects to `fdbroker serve`). Sets
 * no_new_privs, then loads the filter: opening for writing, creating files, making sockets and exec
 * fail with EACCES; calls outside the allow-list kill the process (SIGSYS), since no broker is
 * there to hear about them. Irreversible, and it applies to every thread and every child.
 * preset: NULL or "default". Returns 0, or -1 with errno (EINVAL: unknown preset). */
FDBROKER_API int fdbroker_lockdown(const char* preset);

#ifdef __cplusplus
}
#endif

#endif /* FDBROKER_FDBROKER_H */
