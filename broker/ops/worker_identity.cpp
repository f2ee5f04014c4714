#include "broker/ops/worker_identity.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <vector>

namespace fdbroker::broker {

namespace {

constexpr long kUnchanged = -1;

// The broker's supplementary groups, read once: they never change after start, and reading them for
// every operation would cost two system calls each time. Empty when the broker has none, and then
// the worker's (none) need not be set either.
struct BrokerGroups {
    std::vector<gid_t> groups;
    int error = 0;
};

const BrokerGroups& broker_groups() noexcept {
    static const BrokerGroups saved = [] {
        BrokerGroups g;
        const int count = ::getgroups(0, nullptr);
        if (count < 0) {
            g.error = errno;
            return g;
        }
        try {
            g.groups.resize(static_cast<std::size_t>(count));
        } catch (const std::bad_alloc&) {
            g.error = ENOMEM;
            return g;
        }
        if (count > 0 && ::getgroups(count, g.groups.data()) != count) g.error = errno != 0 ? errno : EAGAIN;
        return g;
    }();
    return saved;
}

}  // namespace

AsWorker::AsWorker(const std::optional<FileOwner>& owner) noexcept {
    if (!owner || ::geteuid() != 0) return;
    uid_ = ::geteuid();
    gid_ = ::getegid();
    if ((error_ = switch_to(*owner)) != 0) restore();
}

AsWorker::~AsWorker() {
    restore();
}

// The groups and gid go first and come back last: only an effective uid of 0 may change them.
int AsWorker::switch_to(const FileOwner& owner) noexcept {
    const BrokerGroups& saved = broker_groups();
    if (saved.error != 0) return saved.error;
    if (!saved.groups.empty()) {
        if (::syscall(SYS_setgroups, 0L, nullptr) != 0) return errno;
        stage_ = Stage::groups;
    }
    if (::syscall(SYS_setresgid, kUnchanged, static_cast<long>(owner.gid), kUnchanged) != 0) return errno;
    stage_ = Stage::gid;
    if (::syscall(SYS_setresuid, kUnchanged, static_cast<long>(owner.uid), kUnchanged) != 0) return errno;
    stage_ = Stage::uid;
    return 0;
}

void AsWorker::restore() noexcept {
    // Going back cannot fail for a thread whose real and saved uid are 0; if it ever did, continuing
    // would mean serving every worker with the wrong identity.
    if (stage_ >= Stage::uid &&
        ::syscall(SYS_setresuid, kUnchanged, static_cast<long>(uid_), kUnchanged) != 0)
        std::abort();
    if (stage_ >= Stage::gid &&
        ::syscall(SYS_setresgid, kUnchanged, static_cast<long>(gid_), kUnchanged) != 0)
        std::abort();
    if (stage_ >= Stage::groups) {
        const std::vector<gid_t>& groups = broker_groups().groups;
        if (::syscall(SYS_setgroups, static_cast<long>(groups.size()), groups.data()) != 0) std::abort();
    }
    stage_ = Stage::none;
}

}  // namespace fdbroker::broker
