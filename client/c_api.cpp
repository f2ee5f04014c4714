// The C API: each function is the process-wide Client's method with the syscall convention (-1 and
// errno on failure, errno untouched on success). No exception crosses into C.
#include <fcntl.h>

#include <cerrno>
#include <cstdarg>
#include <new>
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
    return c_call<int>(
        [&](fdbroker::Client& c, std::error_code& ec) { return c.open(path, flags, mode, ec).release(); });
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

int fdbroker_connect(const char* address) {
    return c_call<int>(
        [&](fdbroker::Client& c, std::error_code& ec) { return c.connect(address, ec).release(); });
}

int fdbroker_listen(const char* address, int backlog) {
    return c_call<int>(
        [&](fdbroker::Client& c, std::error_code& ec) { return c.listen(address, backlog, ec).release(); });
}

}  // extern "C"
