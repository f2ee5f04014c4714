// The floor programs' policy step and watchdog stand-in (floor_policy.h): fdbroker's own
// Profile::decide(), and a thread that only waits, nothing around them.
#include "floor_policy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <system_error>
#include <thread>

#include "policy/policy.hpp"

namespace {

std::shared_ptr<const fdbroker::policy::Policy> loaded;
const fdbroker::policy::Profile* profile = nullptr;

// What an open with these flags needs, as the broker asks for it: the floors only open files that
// exist, so creating is not asked for.
std::uint8_t needs_of(int flags) noexcept {
    switch (flags & O_ACCMODE) {
        case O_RDONLY:
            return fdbroker::policy::need_read;
        case O_WRONLY:
            return fdbroker::policy::need_write;
        default:
            return fdbroker::policy::need_read | fdbroker::policy::need_write;
    }
}

}  // namespace

extern "C" int floor_policy_start(void) {
    const char* file = std::getenv("FLOOR_POLICY");
    if (file == nullptr) {
        std::fprintf(stderr, "FLOOR_POLICY must name a policy file with a profile \"default\"\n");
        return -1;
    }
    fdbroker::policy::LoadResult result = fdbroker::policy::Policy::load_file(file);
    for (const auto& error : result.errors)
        std::fprintf(stderr, "%s\n", error.str().c_str());
    if (!result.policy) return -1;
    loaded = std::move(result.policy);
    profile = loaded->profile("default");
    if (profile == nullptr) {
        std::fprintf(stderr, "%s: no profile \"default\"\n", file);
        return -1;
    }
    // The watchdog's stand-in: a thread that never runs costs a round trip what fdbroker's does, the
    // C library's multi-threaded mode and a second thread of the process in the kernel.
    try {
        std::thread([] {
            for (;;)
                ::pause();
        }).detach();
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "starting the second thread: %s\n", e.what());
        return -1;
    }
    return 0;
}

extern "C" int floor_policy_allows(const char* path, int flags) {
    return profile != nullptr && profile->decide(path, needs_of(flags)).allowed ? 1 : 0;
}
