// The policy loader: any text an administrator (or a typo) produces. Loading either yields a policy or
// diagnostics with positions inside the text, never both and never neither; a loaded policy answers
// decisions without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/policy.hpp"

using namespace fdbroker::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const LoadResult result = Policy::load_string(text, "fuzz.toml");
    if (result.policy && !result.errors.empty()) __builtin_trap();
    if (!result.policy && result.errors.empty()) __builtin_trap();
    for (const Diagnostic& d : result.errors)
        if (d.message.empty()) __builtin_trap();
    if (result.policy) {
        for (const Profile& p : result.policy->profiles()) {
            for (const char* path : {"/", "/etc/hostname", "/a/b/c", "/tmp/x.log"})
                for (std::uint8_t needs : {need_read, need_write, need_create, need_any})
                    (void)p.decide(path, needs);
            if (result.policy->profile(p.name()) == nullptr) __builtin_trap();
        }
    }
    return 0;
}
