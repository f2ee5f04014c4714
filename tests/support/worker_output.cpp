#include "support/worker_output.hpp"

#include "fdbroker/fdbroker.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fdbroker::test {

std::string arg(const std::vector<std::string>& args, std::size_t i) {
    return i < args.size() ? args[i] : std::string();
}

int parse_flags(const std::string& spec) {
    int flags = 0;
    std::size_t start = 0;
    while (start <= spec.size()) {
        const std::size_t bar = spec.find('|', start);
        const std::string f = spec.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
        if (f == "rdonly")
            flags |= O_RDONLY;
        else if (f == "wronly")
            flags |= O_WRONLY;
        else if (f == "rdwr")
            flags |= O_RDWR;
        else if (f == "accmode")
            flags |= O_ACCMODE;
        else if (f == "creat")
            flags |= O_CREAT;
        else if (f == "excl")
            flags |= O_EXCL;
        else if (f == "trunc")
            flags |= O_TRUNC;
        else if (f == "append")
            flags |= O_APPEND;
        else if (f == "cloexec")
            flags |= O_CLOEXEC;
        else if (f == "nofollow")
            flags |= O_NOFOLLOW;
        else if (f == "directory")
            flags |= O_DIRECTORY;
        else if (f == "path")
            flags |= O_PATH;
        else if (f == "tmpfile")
            flags |= O_TMPFILE;
        else if (f == "direct")
            flags |= O_DIRECT;
        else if (f == "noatime")
            flags |= O_NOATIME;
        else if (f == "async")
            flags |= O_ASYNC;
        else
            flags |= static_cast<int>(std::strtol(f.c_str(), nullptr, 0));
        if (bar == std::string::npos) break;
        start = bar + 1;
    }
    return flags;
}

void print_errno(int e) {
    const char* name = strerrorname_np(e);
    std::printf("%s\n", name ? name : "E?");
}

// Prints "ok" (plus detail) or the errno name of the last failure.
void report(int rc, const std::string& detail) {
    if (rc < 0)
        print_errno(errno);
    else if (detail.empty())
        std::printf("ok\n");
    else
        std::printf("ok %s\n", detail.c_str());
}

int open_many(const std::string& path, int count) {
    int failures = 0;
    for (int i = 0; i < count; ++i) {
        const int fd = fdbroker_open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            ++failures;
        else
            ::close(fd);
    }
    return failures;
}

}  // namespace fdbroker::test
