#include "sandbox/landlock.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "fdbroker/unique_fd.hpp"
#include "sandbox/kernel_features.hpp"

namespace fdbroker::sandbox {

namespace {

// Rights and fields newer than Debian 12's <linux/landlock.h> (ABI 1), from the kernel's UAPI.
constexpr std::uint64_t kRefer = 1ULL << 13;             // ABI 2
constexpr std::uint64_t kTruncate = 1ULL << 14;          // ABI 3
constexpr std::uint64_t kIoctlDev = 1ULL << 15;          // ABI 5
constexpr std::uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr std::uint64_t kScopeSignal = 1ULL << 1;        // ABI 6

// struct landlock_ruleset_attr as of ABI 6; older kernels are given the prefix they know.
struct RulesetAttr {
    std::uint64_t handled_access_fs;
    std::uint64_t handled_access_net;
    std::uint64_t scoped;
};

constexpr std::uint64_t kReadFile = LANDLOCK_ACCESS_FS_READ_FILE;
constexpr std::uint64_t kExecute = LANDLOCK_ACCESS_FS_EXECUTE;
constexpr std::uint64_t kReadDir = LANDLOCK_ACCESS_FS_READ_DIR;

std::uint64_t handled_fs(int abi) noexcept {
    std::uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // every ABI 1 right
    if (abi >= 2) all |= kRefer;
    if (abi >= 3) all |= kTruncate;
    if (abi >= 5) all |= kIoctlDev;
    return all;
}

// Adds `fd` with `dir_rights`, or with `file_rights` where it is not a directory: Landlock refuses
// directory rights on anything else (EINVAL), which tells the two apart without a stat of each path.
int add_rule(int ruleset, int fd, std::uint64_t dir_rights, std::uint64_t file_rights) noexcept {
    landlock_path_beneath_attr rule{};
    rule.allowed_access = dir_rights;
    rule.parent_fd = fd;
    if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == 0) return 0;
    if (errno != EINVAL || dir_rights == file_rights) return errno;
    rule.allowed_access = file_rights;
    if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) return errno;
    return 0;
}

int add_path(int ruleset, const std::string& path, std::uint64_t dir_rights,
             std::uint64_t file_rights) noexcept {
    const unique_fd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) return errno == ENOENT || errno == ENOTDIR ? 0 : errno;  // absent here: nothing to grant
    return add_rule(ruleset, fd.get(), dir_rights, file_rights);
}

// Where openat2 answers ENOSYS (an old kernel; systemd's RestrictSUIDSGID=yes, which pool workers of
// the packaged service inherit): the path opened as it is, and kept only if the kernel names what it
// reached by that same path, which a symbolic link on the way would have changed. ELOOP otherwise.
unique_fd open_without_symlinks(const std::string& path) noexcept {
    unique_fd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) return fd;
    char link[32];
    char real[PATH_MAX];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd.get());
    const ssize_t n = ::readlink(link, real, sizeof real);
    if (n < 0 || std::string_view(real, static_cast<std::size_t>(n)) != path) {
        errno = ELOOP;
        return {};
    }
    return fd;
}

// Opens a kernel read's path as Landlock will see it: with no symbolic link anywhere on it, since the
// broker judges the names a path goes through and Landlock only the inode it reaches. Sets `why` and
// returns an empty fd when there is nothing to grant.
unique_fd open_kernel_read(const policy::KernelRead& grant, const char*& why) noexcept {
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const bool absent = simulated_absent(Feature::openat2);
    unique_fd fd(
        absent ? -1
               : static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, grant.path.c_str(), &how, sizeof how)));
    if (!fd && (absent || errno == ENOSYS)) fd = open_without_symlinks(grant.path);
    if (!fd) {
        why = errno == ELOOP ? "it leads through a symbolic link" : "it does not exist";
        return fd;
    }
    struct ::stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        why = "it cannot be examined";
        return {};
    }
    if (!grant.tree && S_ISDIR(st.st_mode)) {
        why = "it is a directory, named as a file";
        return {};
    }
    why = nullptr;
    return fd;
}

int add_kernel_read(int ruleset, const policy::KernelRead& grant, std::uint64_t extra) noexcept {
    const char* why = nullptr;
    const unique_fd fd = open_kernel_read(grant, why);
    if (!fd) return 0;
    return add_rule(ruleset, fd.get(), kReadFile | kReadDir | extra, kReadFile | extra);
}

}  // namespace

const char* kernel_read_missing(const policy::KernelRead& grant) noexcept {
    const char* why = nullptr;
    const unique_fd fd = open_kernel_read(grant, why);
    return why;
}

int landlock_abi() noexcept {
    if (simulated_absent(Feature::landlock)) return 0;
    const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : static_cast<int>(abi);
}

LandlockResult apply_landlock(const std::vector<std::string>& runtime, const std::string& program,
                              const LandlockOptions& options) noexcept {
    LandlockResult result;
    result.abi = landlock_abi();
    if (result.abi == 0) return result;

    RulesetAttr attr{};
    attr.handled_access_fs = handled_fs(result.abi);
    std::size_t size = sizeof attr.handled_access_fs;
    if (result.abi >= 6) {
        attr.scoped = kScopeAbstractUnix | (options.scope_signals ? kScopeSignal : 0);
        size = sizeof attr;
    }
    unique_fd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0)));
    if (!ruleset) return result.error = errno, result;

    // Beside reading, where nothing can use it (LandlockOptions::truncate_where_readable).
    const std::uint64_t truncate = options.truncate_where_readable ? attr.handled_access_fs & kTruncate : 0;
    // Runtime paths: read and execute (execution itself is refused by the seccomp filter unless the
    // profile allows exec); the program: read and execute.
    const std::uint64_t run_file = kReadFile | kExecute | truncate;
    for (const std::string& path : runtime)
        if (const int err = add_path(ruleset.get(), path, run_file | kReadDir, run_file))
            return result.error = err, result;
    // The kernel read tier: reading only, exactly the profile's read set.
    for (const policy::KernelRead& grant : options.kernel_reads)
        if (const int err = add_kernel_read(ruleset.get(), grant, truncate))
            return result.error = err, result;
    if (const int err = program.empty() ? 0 : add_path(ruleset.get(), program, run_file, run_file)) {
        result.program_unreachable = true;
        return result.error = err, result;
    }

    if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0) result.error = errno;
    return result;
}

}  // namespace fdbroker::sandbox
