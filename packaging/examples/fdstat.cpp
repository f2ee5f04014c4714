// fdstat: a C++ worker using <fdbroker/client.hpp>. For each path it prints the type and size the
// broker reports, then reads the first bytes through a descriptor the broker opened.
//
//     fdbroker run --policy demo.toml -- fdstat /etc/debian_version
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fdbroker/client.hpp>
#include <system_error>

int main(int argc, char** argv) {
    std::error_code ec;
    fdbroker::Client& broker = fdbroker::Client::global(ec);
    if (ec) {
        std::fprintf(stderr, "fdstat: no broker: %s\n", ec.message().c_str());
        return 2;
    }
    int failures = 0;
    for (int i = 1; i < argc; ++i) {
        const struct stat st = broker.stat(argv[i], ec);
        if (ec) {
            std::printf("%s: stat: %s\n", argv[i], ec.message().c_str());
            ++failures;
            continue;
        }
        const fdbroker::unique_fd fd = broker.open(argv[i], O_RDONLY | O_CLOEXEC, 0, ec);
        char head[16] = {};
        const ssize_t n = fd ? ::read(fd.get(), head, sizeof head - 1) : -1;
        std::printf("%s: %s, %lld bytes, starts with \"%.*s\"\n", argv[i],
                    S_ISDIR(st.st_mode) ? "directory" : "file", static_cast<long long>(st.st_size),
                    n > 0 ? static_cast<int>(n) : 0, head);
    }
    return failures == 0 ? 0 : 1;
}
