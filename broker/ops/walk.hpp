// Following symlinks the way the kernel does, with every hop judged: the file operations run their last
// step on a located name (resolve.hpp), and when that name is a symlink and the operation follows
// symlinks, the link's target is located and judged in turn.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string_view>

#include "broker/ops/file_ops.hpp"
#include "broker/ops/resolve.hpp"
#include "policy/path.hpp"
#include "policy/path_buffer.hpp"

namespace fdbroker::broker {

// Outcome of the last step on an already-judged Location.
enum class Step { done, symlink };

// Linux follows at most 40 symlinks in one lookup; so do we across the hops we make ourselves.
inline constexpr int kMaxLinkHops = 40;

// Runs final_step(loc, result) on the located name; when it answers Step::symlink, the link is read
// and its target located and judged like the kernel's own lookup, with every hop checked.
template <class Final>
OpResult follow_links(const policy::Profile& profile, const ProcSelf& self, std::string_view path,
                      std::uint8_t needs, Final&& final_step) noexcept {
    PathBuffer hops[2];
    for (int hop = 0; hop <= kMaxLinkHops; ++hop) {
        Location loc;
        OpResult result;
        result.verdict = locate(profile, self, path, needs, loc);
        if (result.verdict.error != 0) return result;
        if (final_step(loc, result) == Step::done) return result;

        char target[PathBuffer::kCapacity];
        const ssize_t n = ::readlinkat(loc.dir.get(), loc.name, target, sizeof target);
        if (n <= 0) {  // replaced since we looked: let the worker retry rather than guess
            result.verdict.error = n == 0 ? ENOENT : errno;
            return result;
        }
        PathBuffer& next = hops[hop % 2];
        if (!policy::join_lexically(loc.real.view().substr(0, loc.dir_len),
                                    {target, static_cast<std::size_t>(n)}, next)) {
            result.verdict.error = ENAMETOOLONG;
            return result;
        }
        path = next.view();
    }
    OpResult loop;
    loop.verdict = {true, nullptr, ELOOP};
    return loop;
}

}  // namespace fdbroker::broker
