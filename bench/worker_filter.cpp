// P5's context row: the seccomp program every fdbroker worker runs under (the default preset, exec
// allowed, as a profile with `exec = true` has it), written raw to standard output for bubblewrap's
// `--seccomp FD`, so that the peer can be timed filtering system calls as fdbroker's workers do.
// Calls the filter would hand to a broker fail with ENOSYS there, which /bin/true never makes.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "sandbox/seccomp_filter.hpp"

int main() {
    std::vector<sock_filter> program;
    if (const int err = fdbroker::sandbox::compile_worker_filter({}, {.exec = true}, program); err != 0) {
        std::fprintf(stderr, "worker_filter: %s\n", std::strerror(err));
        return 1;
    }
    const std::size_t size = program.size() * sizeof(sock_filter);
    if (::write(STDOUT_FILENO, program.data(), size) != static_cast<ssize_t>(size)) {
        std::perror("worker_filter");
        return 1;
    }
    return 0;
}
