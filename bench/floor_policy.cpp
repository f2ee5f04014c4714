// The floor broker's policy step (floor_policy.h): fdbroker's own Profile::decide(), nothing around it.
#include "floor_policy.h"

#include <fcntl.h>

#include <cstdint>
#include <cstdio>
#include <memory>

#include "policy/policy.hpp"

namespace {

std::shared_ptr<const fdbroker::policy::Policy> loaded;
const fdbroker::policy::Profile* profile = nullptr;

// What an open with these flags needs, as the broker asks for it: the floor only ever opens files that
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

extern "C" int floor_policy_load(const char* file) {
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
    return 0;
}

extern "C" int floor_policy_allows(const char* path, int flags) {
    return profile != nullptr && profile->decide(path, needs_of(flags)).allowed ? 1 : 0;
}
