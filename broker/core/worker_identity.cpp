#include "broker/core/worker_identity.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <vector>

namespace fdbroker::broker {

namespace {

constexpr long kUnchanged = -1;

// The broker's own ids, read once: its threads change only their effective and file-system ids, and
// only after this has been read (the first switch reads it).
struct BrokerIds {
    uid_t uid;
    gid_t gid;
    bool root;
};

const BrokerIds& broker_ids() noexcept {
    static const BrokerIds ids{::geteuid(), ::getegid(), ::geteuid() == 0};
    return ids;
}

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

void restore_groups() noexcept {
    const std::vector<gid_t>& groups = broker_groups().groups;
    if (::syscall(SYS_setgroups, static_cast<long>(groups.size()), groups.data()) != 0) std::abort();
}

// What the calling thread holds now. `unknown`: not yet looked at (a new thread inherits its creator's
// credentials, which as_broker() then makes the broker's whatever they were).
enum class Held : std::uint8_t { unknown, broker, files, files_bare, worker };

struct ThreadState {
    Held held = Held::unknown;
    FileOwner files{0, 0};
    bool groups_dropped = false;
    bool caps_read = false;
    std::uint64_t permitted = 0;
    std::uint64_t inheritable = 0;
};

thread_local ThreadState state;

constexpr std::uint64_t kPtraceOnly = std::uint64_t{1} << CAP_SYS_PTRACE;

// The thread's permitted and inheritable sets, which changing ids as root never alters.
int read_caps(ThreadState& s) noexcept {
    if (s.caps_read) return 0;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) return errno;
    s.permitted = data[0].permitted | (std::uint64_t{data[1].permitted} << 32);
    s.inheritable = data[0].inheritable | (std::uint64_t{data[1].inheritable} << 32);
    s.caps_read = true;
    return 0;
}

int set_effective(const ThreadState& s, std::uint64_t effective) noexcept {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    effective &= s.permitted;
    data[0] = {static_cast<std::uint32_t>(effective), static_cast<std::uint32_t>(s.permitted),
               static_cast<std::uint32_t>(s.inheritable)};
    data[1] = {static_cast<std::uint32_t>(effective >> 32), static_cast<std::uint32_t>(s.permitted >> 32),
               static_cast<std::uint32_t>(s.inheritable >> 32)};
    return ::syscall(SYS_capset, &header, data) == 0 ? 0 : errno;
}

// setfsuid and setfsgid report no failure, only the previous id: asking again with an invalid id
// (which changes nothing) tells whether the change took.
bool set_fsuid(uid_t uid) noexcept {
    ::syscall(SYS_setfsuid, static_cast<long>(uid));
    return ::syscall(SYS_setfsuid, kUnchanged) == static_cast<long>(uid);
}

bool set_fsgid(gid_t gid) noexcept {
    ::syscall(SYS_setfsgid, static_cast<long>(gid));
    return ::syscall(SYS_setfsgid, kUnchanged) == static_cast<long>(gid);
}

}  // namespace

namespace thread_identity {

void as_broker() noexcept {
    ThreadState& s = state;
    // Inside an AsWorker its destructor gives the broker's identity back.
    if (s.held == Held::broker || s.held == Held::worker) return;
    const BrokerIds& ids = broker_ids();
    if (ids.root) {
        // Going back cannot fail for a thread whose real uid is 0; if it ever did, continuing would
        // mean serving every worker with the wrong identity.
        if (read_caps(s) != 0 || set_effective(s, s.permitted) != 0) std::abort();
        if (!set_fsuid(ids.uid) || !set_fsgid(ids.gid)) std::abort();
        if (s.groups_dropped) restore_groups();
        s.groups_dropped = false;
    }
    s.held = Held::broker;
}

int files_as(const FileOwner& owner) noexcept {
    ThreadState& s = state;
    if (s.held == Held::worker) return 0;  // a stricter identity is in force already
    if ((s.held == Held::files || s.held == Held::files_bare) && s.files == owner) {
        if (s.held == Held::files) return 0;
        if (const int err = set_effective(s, kPtraceOnly); err != 0) return err;
        s.held = Held::files;
        return 0;
    }
    as_broker();
    if (!broker_ids().root) return 0;
    if (const int err = read_caps(s); err != 0) return err;
    const BrokerGroups& saved = broker_groups();
    if (saved.error != 0) return saved.error;
    // From here on as_broker() puts back whatever was changed.
    s.held = Held::files_bare;
    s.files = owner;
    if (!saved.groups.empty()) {
        s.groups_dropped = true;
        if (::syscall(SYS_setgroups, 0L, nullptr) != 0) {
            const int err = errno;
            as_broker();
            return err;
        }
    }
    // The gid first: the uid change takes the file-system capabilities away (capabilities(7)).
    if (!set_fsgid(owner.gid) || !set_fsuid(owner.uid) || set_effective(s, kPtraceOnly) != 0) {
        as_broker();
        return EPERM;
    }
    s.held = Held::files;
    return 0;
}

bool acting_as_worker() noexcept {
    const Held held = state.held;
    return held == Held::files || held == Held::files_bare || held == Held::worker;
}

bool without_ptrace() noexcept {
    ThreadState& s = state;
    if (s.held != Held::files) return false;
    // Lowering the effective set is always allowed; continuing with CAP_SYS_PTRACE would not be.
    if (set_effective(s, 0) != 0) std::abort();
    s.held = Held::files_bare;
    return true;
}

void ptrace_back() noexcept {
    ThreadState& s = state;
    if (s.held != Held::files_bare) return;
    // Raising within the permitted set is always allowed; without it every later caller's memory would
    // be unreadable.
    if (set_effective(s, kPtraceOnly) != 0) std::abort();
    s.held = Held::files;
}

}  // namespace thread_identity

AsWorker::AsWorker(const std::optional<FileOwner>& owner) noexcept {
    if (!owner || !broker_ids().root || state.held == Held::worker) return;
    thread_identity::as_broker();
    if ((error_ = switch_to(*owner)) != 0)
        restore();
    else
        state.held = Held::worker;
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
    if (stage_ == Stage::none) return;
    const BrokerIds& ids = broker_ids();
    // Going back cannot fail for a thread whose real and saved uid are 0; if it ever did, continuing
    // would mean serving every worker with the wrong identity.
    if (stage_ >= Stage::uid &&
        ::syscall(SYS_setresuid, kUnchanged, static_cast<long>(ids.uid), kUnchanged) != 0)
        std::abort();
    if (stage_ >= Stage::gid &&
        ::syscall(SYS_setresgid, kUnchanged, static_cast<long>(ids.gid), kUnchanged) != 0)
        std::abort();
    if (stage_ >= Stage::groups) restore_groups();
    stage_ = Stage::none;
    state.held = Held::broker;
}

}  // namespace fdbroker::broker
