#include "broker/notify/pending_signal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

namespace {

constexpr std::uint64_t bit(int sig) {
    return std::uint64_t{1} << (sig - 1);
}

// Signals whose default action stops the process: natively they end a connect's wait as well (it is
// made again once the process continues).
constexpr std::uint64_t kStops = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);

struct SignalSets {
    std::uint64_t pending = 0;  // the thread's own (SigPnd)
    std::uint64_t shared = 0;   // the process's (ShdPnd)
    std::uint64_t blocked = 0;
    std::uint64_t ignored = 0;
    std::uint64_t caught = 0;
    pid_t tgid = -1;
    long threads = 0;
};

// One hexadecimal (or decimal) field of a status text; nullopt if missing.
std::optional<std::uint64_t> field(const char* text, const char* name, int base) {
    const char* at = std::strstr(text, name);
    if (at == nullptr) return std::nullopt;
    return std::strtoull(at + std::strlen(name), nullptr, base);
}

std::optional<SignalSets> read_sets(const char* path) noexcept {
    const unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    std::array<char, 4096> text{};
    const ssize_t n = fd ? ::read(fd.get(), text.data(), text.size() - 1) : -1;
    if (n <= 0) return std::nullopt;
    const auto pending = field(text.data(), "\nSigPnd:", 16), shared = field(text.data(), "\nShdPnd:", 16),
               blocked = field(text.data(), "\nSigBlk:", 16), ignored = field(text.data(), "\nSigIgn:", 16),
               caught = field(text.data(), "\nSigCgt:", 16), tgid = field(text.data(), "\nTgid:", 10),
               threads = field(text.data(), "\nThreads:", 10);
    if (!pending || !shared || !blocked || !ignored || !caught || !tgid || !threads) return std::nullopt;
    return SignalSets{*pending,
                      *shared,
                      *blocked,
                      *ignored,
                      *caught,
                      static_cast<pid_t>(*tgid),
                      static_cast<long>(*threads)};
}

// Of `signals`, pending for the whole process, those every thread but `tid` blocks: the kernel can
// only have woken `tid` for them.
std::uint64_t only_for(pid_t tgid, pid_t tid, std::uint64_t signals) noexcept {
    char dir[64];
    std::snprintf(dir, sizeof dir, "/proc/%d/task", static_cast<int>(tgid));
    DIR* tasks = ::opendir(dir);
    if (tasks == nullptr) return 0;
    while (const dirent* e = ::readdir(tasks)) {
        const long other = std::strtol(e->d_name, nullptr, 10);
        if (other <= 0 || other == tid) continue;
        char path[96];
        std::snprintf(path, sizeof path, "%s/%ld/status", dir, other);
        // A thread that has just exited has no status: it takes no signal either.
        if (const std::optional<SignalSets> sets = read_sets(path)) signals &= sets->blocked;
    }
    ::closedir(tasks);
    return signals;
}

}  // namespace

bool interrupting_signal_pending(pid_t tid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(tid));
    const std::optional<SignalSets> sets = read_sets(path);
    if (!sets) return false;
    const std::uint64_t interrupting = sets->caught | (kStops & ~sets->ignored);
    std::uint64_t shared = sets->shared & ~sets->blocked & interrupting;
    if (shared != 0 && sets->threads > 1) shared = only_for(sets->tgid, tid, shared);
    return ((sets->pending & ~sets->blocked & interrupting) | shared) != 0;
}

}  // namespace fdbroker::broker
