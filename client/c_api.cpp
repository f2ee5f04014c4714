// The C API: each function is the process-wide Client's method with the syscall convention (-1 and
// errno on failure, errno untouched on success). No exception crosses into C.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <system_error>

#include "fdbroker/client.hpp"
#include "fdbroker/fdbroker.h"

namespace {

// Runs fn(client, ec) and converts its outcome to the C convention; fn returns the success value.
template <class Result, class Fn>
Result c_call(Fn&& fn) noexcept {
    const int saved = errno;
    try {
        std::error_code ec;
        // An unreachable broker needs no check here: the client's calls then fail with ENOTCONN,
        // after the same argument checks (EFAULT, ENOENT, ...) the syscall would make.
        fdbroker::Client& client = fdbroker::Client::global(ec);
        const Result result = fn(client, ec);
        if (ec) {
            errno = ec.value();
            return -1;
        }
        errno = saved;
        return result;
    } catch (const std::bad_alloc&) {
        errno = ENOMEM;
    } catch (...) {
        errno = EIO;
    }
    return -1;
}

// The open flags the kernel read tier lets through (sandbox/seccomp_filter.cpp): reading only.
constexpr int kKernelReadFlags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_LARGEFILE;

// Whether the broker said (FDBROKER_KERNEL_READS=1) that this worker's profile leaves reading to the
// kernel: its Landlock domain then grants exactly the profile's read set. Only a shortcut: Landlock,
// not this choice, is what keeps the worker to its read set.
bool kernel_reads() noexcept {
    static const bool on = [] {
        const char* value = std::getenv("FDBROKER_KERNEL_READS");
        return value != nullptr && std::strcmp(value, "1") == 0;
    }();
    return on;
}

// A read-only open the kernel grants by itself, or -1 (errno untouched): then the broker answers,
// with the authoritative errno, and audits. Opened close-on-exec, as a descriptor from the broker
// arrives, and made inheritable only if asked.
int open_in_kernel(const char* path, int flags) noexcept {
    if (path == nullptr || (flags & ~kKernelReadFlags) != 0 || !kernel_reads()) return -1;
    const int saved = errno;
    const int fd = ::open(path, flags | O_CLOEXEC);
    if (fd >= 0 && (flags & O_CLOEXEC) == 0 && ::fcntl(fd, F_SETFD, 0) != 0) {
        ::close(fd);
        errno = saved;
        return -1;
    }
    errno = saved;
    return fd;
}

// fdbroker_open_many's entries: under reads = "kernel" each one the kernel opens by itself never
// reaches the broker, as for fdbroker_open; the others go to the broker in one exchange (none at all
// when the kernel opened every one). On a failed exchange no descriptor is left open.
void open_many(fdbroker::Client& c, std::span<const fdbroker_open_request> requests, std::span<int> fds,
               std::error_code& ec) noexcept {
    constexpr std::size_t kMax = FDBROKER_OPEN_MANY_MAX;
    std::array<fdbroker::unique_fd, kMax> direct;
    std::array<fdbroker_open_request, kMax> asked{};
    std::array<std::size_t, kMax> entry{};  // asked[k] is requests[entry[k]]
    std::size_t count = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        direct[i].reset(open_in_kernel(requests[i].path, requests[i].flags));
        if (direct[i]) continue;
        asked[count] = requests[i];
        entry[count++] = i;
    }
    std::array<fdbroker::Client::OpenResult, kMax> results;
    if (count > 0) c.open_batch(std::span(asked).first(count), std::span(results).first(count), ec);
    if (ec) return;
    for (std::size_t k = 0; k < count; ++k)
        fds[entry[k]] = results[k].ec ? -results[k].ec.value() : results[k].fd.release();
    for (std::size_t i = 0; i < requests.size(); ++i)
        if (direct[i]) fds[i] = direct[i].release();
}

// The xattr calls' common shape: flags says which form (AT_SYMLINK_NOFOLLOW for the l- forms).
ssize_t get_xattr(const char* path, const char* name, void* value, size_t size, int flags) {
    return c_call<ssize_t>([&](fdbroker::Client& c, std::error_code& ec) {
        if (value == nullptr && size != 0) {
            ec.assign(EFAULT, std::system_category());
            return ssize_t{-1};
        }
        return static_cast<ssize_t>(
            c.getxattr(path, name, std::span(static_cast<char*>(value), size), flags, ec));
    });
}

ssize_t list_xattr(const char* path, char* list, size_t size, int flags) {
    return c_call<ssize_t>([&](fdbroker::Client& c, std::error_code& ec) {
        if (list == nullptr && size != 0) {
            ec.assign(EFAULT, std::system_category());
            return ssize_t{-1};
        }
        return static_cast<ssize_t>(c.listxattr(path, std::span(list, size), flags, ec));
    });
}

int set_xattr(const char* path, const char* name, const void* value, size_t size, int xattr_flags,
              int flags) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        if (value == nullptr && size != 0) {
            ec.assign(EFAULT, std::system_category());
            return -1;
        }
        c.setxattr(path, name, std::span(static_cast<const char*>(value), size), xattr_flags, flags, ec);
        return 0;
    });
}

int remove_xattr(const char* path, const char* name, int flags) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.removexattr(path, name, flags, ec);
        return 0;
    });
}

}  // namespace

extern "C" {

int fdbroker_open(const char* path, int flags, ...) {
    static_assert(sizeof(mode_t) == sizeof(unsigned int), "mode_t is passed as unsigned int through ...");
    mode_t mode = 0;
    // Like open(2), the variadic mode is read only when the flags give it a meaning: a caller
    // without O_CREAT or O_TMPFILE need not pass it.
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list args;
        va_start(args, flags);
        mode = va_arg(args, unsigned int);
        va_end(args);
    }
    if (const int fd = open_in_kernel(path, flags); fd >= 0) return fd;
    return c_call<int>(
        [&](fdbroker::Client& c, std::error_code& ec) { return c.open(path, flags, mode, ec).release(); });
}

int fdbroker_open_many(const struct fdbroker_open_request* requests, size_t n, int* fds) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        if (n == 0) return 0;
        if (requests == nullptr || fds == nullptr) {
            ec.assign(EFAULT, std::system_category());
            return -1;
        }
        if (n > FDBROKER_OPEN_MANY_MAX) {
            ec.assign(EINVAL, std::system_category());
            return -1;
        }
        open_many(c, std::span(requests, n), std::span(fds, n), ec);
        return ec ? -1 : 0;
    });
}

int fdbroker_access(const char* path, int mode) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.access(path, mode, ec);
        return 0;
    });
}

int fdbroker_stat(const char* path, struct stat* st) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        if (st == nullptr) {
            ec.assign(EFAULT, std::system_category());
            return -1;
        }
        const struct stat result = c.stat(path, ec);
        if (!ec) *st = result;
        return 0;
    });
}

ssize_t fdbroker_readlink(const char* path, char* buf, size_t size) {
    return c_call<ssize_t>([&](fdbroker::Client& c, std::error_code& ec) {
        if (buf == nullptr && size != 0) {
            ec.assign(EFAULT, std::system_category());
            return ssize_t{-1};
        }
        return static_cast<ssize_t>(c.readlink(path, std::span<char>(buf, size), ec));
    });
}

int fdbroker_mkdir(const char* path, mode_t mode) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.mkdir(path, mode, ec);
        return 0;
    });
}

int fdbroker_unlink(const char* path) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.unlink(path, ec);
        return 0;
    });
}

int fdbroker_rmdir(const char* path) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.rmdir(path, ec);
        return 0;
    });
}

int fdbroker_rename(const char* from, const char* to) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.rename(from, to, ec);
        return 0;
    });
}

int fdbroker_chmod(const char* path, mode_t mode) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.chmod(path, mode, 0, ec);
        return 0;
    });
}

int fdbroker_lchmod(const char* path, mode_t mode) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.chmod(path, mode, AT_SYMLINK_NOFOLLOW, ec);
        return 0;
    });
}

int fdbroker_chown(const char* path, uid_t owner, gid_t group) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.chown(path, owner, group, 0, ec);
        return 0;
    });
}

int fdbroker_lchown(const char* path, uid_t owner, gid_t group) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.chown(path, owner, group, AT_SYMLINK_NOFOLLOW, ec);
        return 0;
    });
}

int fdbroker_truncate(const char* path, off_t length) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.truncate(path, length, ec);
        return 0;
    });
}

int fdbroker_utimens(const char* path, const struct timespec times[2], int flags) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.utimens(path, times, flags, ec);
        return 0;
    });
}

int fdbroker_link(const char* from, const char* to) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.link(from, to, 0, ec);
        return 0;
    });
}

int fdbroker_mknod(const char* path, mode_t mode, dev_t dev) {
    return c_call<int>([&](fdbroker::Client& c, std::error_code& ec) {
        c.mknod(path, mode, dev, ec);
        return 0;
    });
}

int fdbroker_mkfifo(const char* path, mode_t mode) {
    // As glibc's mkfifo does it.
    return fdbroker_mknod(path, mode | S_IFIFO, 0);
}

ssize_t fdbroker_getxattr(const char* path, const char* name, void* value, size_t size) {
    return get_xattr(path, name, value, size, 0);
}

ssize_t fdbroker_lgetxattr(const char* path, const char* name, void* value, size_t size) {
    return get_xattr(path, name, value, size, AT_SYMLINK_NOFOLLOW);
}

ssize_t fdbroker_listxattr(const char* path, char* list, size_t size) {
    return list_xattr(path, list, size, 0);
}

ssize_t fdbroker_llistxattr(const char* path, char* list, size_t size) {
    return list_xattr(path, list, size, AT_SYMLINK_NOFOLLOW);
}

int fdbroker_setxattr(const char* path, const char* name, const void* value, size_t size, int flags) {
    return set_xattr(path, name, value, size, flags, 0);
}

int fdbroker_lsetxattr(const char* path, const char* name, const void* value, size_t size, int flags) {
    return set_xattr(path, name, value, size, flags, AT_SYMLINK_NOFOLLOW);
}

int fdbroker_removexattr(const char* path, const char* name) {
    return remove_xattr(path, name, 0);
}

int fdbroker_lremovexattr(const char* path, const char* name) {
    return remove_xattr(path, name, AT_SYMLINK_NOFOLLOW);
}

int fdbroker_connect(const char* address) {
    return c_call<int>(
        [&](fdbroker::Client& c, std::error_code& ec) { return c.connect(address, ec).release(); });
}

int fdbroker_listen(const char* address, int backlog) {
    return c_call<int>(
        [&](fdbroker::Client& c, std::error_code& ec) { return c.listen(address, backlog, ec).release(); });
}

}  // extern "C"
