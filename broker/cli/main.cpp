#include "broker/cli/cli.hpp"

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer stops the process with ptrace at exit, which the broker's own seccomp filter refuses
// once it has confined itself; a sanitized fdbroker would then fail at every exit, whatever its
// environment (tests run it with `env -i`). Its other checks stay on.
extern "C" const char* __asan_default_options() {  // NOLINT(bugprone-reserved-identifier): the runtime's hook
    return "detect_leaks=0";
}
#endif

int main(int argc, char** argv) {
    return fdbroker::broker::main_cli(argc, argv);
}
