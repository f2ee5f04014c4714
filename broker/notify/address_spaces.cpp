#include "broker/notify/address_spaces.hpp"

#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "broker/core/process_tree.hpp"

namespace fdbroker::broker {

namespace {

// Where the kernel put AT_RANDOM's bytes in thread tid's address space at exec; 0 if unknown.
std::uint64_t random_address(pid_t tid) noexcept {
    char path[40];
    std::snprintf(path, sizeof path, "/proc/%d/auxv", tid);
    const unique_fd auxv(::open(path, O_RDONLY | O_CLOEXEC));
    std::array<Elf64_auxv_t, 64> entries{};
    const ssize_t n = auxv ? ::read(auxv.get(), entries.data(), sizeof entries) : -1;
    if (n <= 0) return 0;
    const auto count = static_cast<std::size_t>(n) / sizeof(Elf64_auxv_t);
    for (std::size_t i = 0; i < count && entries[i].a_type != AT_NULL; ++i)
        if (entries[i].a_type == AT_RANDOM) return entries[i].a_un.a_val;
    return 0;
}

}  // namespace

void AddressSpace::fingerprint() noexcept {
    pidfd.reset(open_thread_pidfd(tid));
    random_at = pidfd ? random_address(tid) : 0;
    // Through `mem`: the bytes of the address space these descriptors name, whatever tid is by now.
    if (random_at == 0 || ::pread(mem.get(), random.data(), random.size(), static_cast<off_t>(random_at)) !=
                              static_cast<ssize_t>(random.size()))
        pidfd.reset();
}

bool AddressSpace::still_current() const noexcept {
    if (!pidfd || !mem || !maps) return false;
    pollfd exited{pidfd.get(), POLLIN, 0};
    if (::poll(&exited, 1, 0) != 0) return false;  // readable: the thread is gone (or poll failed)
    std::array<std::byte, 16> now{};
    iovec local{now.data(), now.size()};
    iovec remote{reinterpret_cast<void*>(random_at), now.size()};  // NOLINT: an address in the caller
    return ::process_vm_readv(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(now.size()) &&
           now == random;
}

AddressSpaces::AddressSpaces() {
    kept_.reserve(kMaxKept);
}

AddressSpace AddressSpaces::take(pid_t tid) noexcept {
    const std::lock_guard lock(mutex_);
    const auto it =
        std::find_if(kept_.begin(), kept_.end(), [tid](const AddressSpace& s) { return s.tid == tid; });
    if (it == kept_.end()) return {};
    AddressSpace found = std::move(*it);
    kept_.erase(it);
    return found;
}

void AddressSpaces::keep(AddressSpace space) noexcept {
    if (!space.pidfd || !space.mem || !space.maps) return;
    AddressSpace forgotten;  // closed after the lock is released
    const std::lock_guard lock(mutex_);
    if (kept_.size() == kMaxKept) {
        forgotten = std::move(kept_.front());
        kept_.erase(kept_.begin());
    }
    kept_.push_back(std::move(space));  // within the capacity reserved: never allocates
}

}  // namespace fdbroker::broker
