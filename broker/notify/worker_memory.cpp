#include "broker/notify/worker_memory.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace fdbroker::broker {

namespace {

// struct procmap_query (Linux 6.11, <linux/fs.h>): one VMA of a memory map, found by address.
struct ProcmapQuery {
    std::uint64_t size;
    std::uint64_t query_flags;
    std::uint64_t query_addr;
    std::uint64_t vma_start;
    std::uint64_t vma_end;
    std::uint64_t vma_flags;
    std::uint64_t vma_page_size;
    std::uint64_t vma_offset;
    std::uint64_t inode;
    std::uint32_t dev_major;
    std::uint32_t dev_minor;
    std::uint32_t vma_name_size;
    std::uint32_t build_id_size;
    std::uint64_t vma_name_addr;
    std::uint64_t build_id_addr;
};
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
constexpr std::uint64_t kQueryWritable = 0x02;  // PROCMAP_QUERY_VMA_WRITABLE

}  // namespace

ssize_t WorkerMemory::read_some(std::uint64_t addr, void* buf, std::size_t size) const noexcept {
    iovec local{buf, size};
    iovec remote{reinterpret_cast<void*>(addr), size};  // NOLINT: an address in another process
    return ::process_vm_readv(tid_, &local, 1, &remote, 1, 0);
}

int WorkerMemory::read_string(std::uint64_t addr, PathBuffer& out) const noexcept {
    if (addr == 0) return EFAULT;
    char* dst = out.data();
    std::size_t have = 0;
    while (have < PathBuffer::kCallerLimit + 1) {
        const std::uint64_t at = addr + have;
        std::size_t chunk = 4096 - (at & 4095);
        chunk = std::min(chunk, PathBuffer::kCallerLimit + 1 - have);
        const ssize_t n = read_some(at, dst + have, chunk);
        if (n <= 0) return n < 0 && errno == ESRCH ? ESRCH : EFAULT;
        const void* nul = std::memchr(dst + have, '\0', static_cast<std::size_t>(n));
        if (nul) {
            out.truncate(static_cast<std::size_t>(static_cast<const char*>(nul) - dst));
            return 0;
        }
        have += static_cast<std::size_t>(n);
    }
    out.truncate(0);
    return ENAMETOOLONG;
}

int WorkerMemory::read_bytes(std::uint64_t addr, void* buf, std::size_t size) const noexcept {
    if (addr == 0) return EFAULT;
    const ssize_t n = read_some(addr, buf, size);
    if (n < 0 && errno == ESRCH) return ESRCH;
    return n == static_cast<ssize_t>(size) ? 0 : EFAULT;
}

WorkerMemory::~WorkerMemory() {
    if (kept_ != nullptr && space_.mem) kept_->keep(std::move(space_));
}

int WorkerMemory::write_bytes(std::uint64_t addr, const void* buf, std::size_t size,
                              const std::function<bool()>& confirm) noexcept {
    if (addr == 0 || addr + size < addr) return EFAULT;
    if (!space_.mem)
        if (const int err = open_space(confirm); err != 0) return err;
    if (const int err = writable(addr, size); err != 0) return err;
    const ssize_t n = ::pwrite(space_.mem.get(), buf, size, static_cast<off_t>(addr));
    return n == static_cast<ssize_t>(size) ? 0 : EFAULT;
}

// The caller's kept descriptors if they still name its address space; otherwise opened afresh, with
// what will prove them current at the thread's next call. Confirmed either way just before the write:
// a call a signal interrupted meanwhile is no longer pending, and its buffer may be in other use by now.
int WorkerMemory::open_space(const std::function<bool()>& confirm) noexcept {
    if (kept_ != nullptr) {
        space_ = kept_->take(tid_);
        if (space_.still_current()) return confirm() ? 0 : ESRCH;
    }
    space_ = AddressSpace{};
    space_.tid = tid_;
    char path[40];
    std::snprintf(path, sizeof path, "/proc/%d/mem", tid_);
    space_.mem.reset(::open(path, O_RDWR | O_CLOEXEC));
    std::snprintf(path, sizeof path, "/proc/%d/maps", tid_);
    space_.maps.reset(::open(path, O_RDONLY | O_CLOEXEC));
    if (kept_ != nullptr && space_.mem) space_.fingerprint();
    if (!space_.mem || !space_.maps || !confirm()) {
        space_ = AddressSpace{};
        return ESRCH;
    }
    return 0;
}

// Whether every page of [addr, addr + size) lies in a writable mapping. Another thread of the caller
// may change the protections right after: that only changes what the caller does to itself.
int WorkerMemory::writable(std::uint64_t addr, std::size_t size) const noexcept {
    const std::uint64_t end = addr + size;
    for (std::uint64_t at = addr; at < end;) {
        ProcmapQuery q{};
        q.size = sizeof q;
        q.query_flags = kQueryWritable;
        q.query_addr = at;
        if (::ioctl(space_.maps.get(), kProcmapQuery, &q) != 0) {
            if (errno == ENOTTY || errno == EINVAL) return writable_from_text(addr, end);  // before 6.11
            return EFAULT;  // ENOENT: no writable mapping covers `at`
        }
        if (q.vma_start > at || q.vma_end <= at) return EFAULT;
        at = q.vma_end;
    }
    return 0;
}

// The same from the text of /proc/TID/maps ("start-end perms ..." per line, in address order).
int WorkerMemory::writable_from_text(std::uint64_t addr, std::uint64_t end) const noexcept {
    std::array<char, 16384> buf;
    std::size_t have = 0;
    off_t offset = 0;
    std::uint64_t covered = addr;  // everything below this is known to be writable
    for (;;) {
        const ssize_t n = ::pread(space_.maps.get(), buf.data() + have, buf.size() - have, offset);
        if (n <= 0) return EFAULT;
        offset += n;
        have += static_cast<std::size_t>(n);
        std::string_view text(buf.data(), have);
        std::size_t line_end;
        while ((line_end = text.find('\n')) != std::string_view::npos) {
            const std::string_view line = text.substr(0, line_end);
            text.remove_prefix(line_end + 1);
            std::uint64_t start = 0, stop = 0;
            const char* p = line.data();
            const char* const e = line.data() + line.size();
            auto r = std::from_chars(p, e, start, 16);
            if (r.ec != std::errc() || r.ptr == e || *r.ptr != '-') return EFAULT;
            r = std::from_chars(r.ptr + 1, e, stop, 16);
            if (r.ec != std::errc() || e - r.ptr < 3) return EFAULT;
            const bool w = r.ptr[2] == 'w';
            if (stop <= covered) continue;
            if (start > covered || !w) return EFAULT;
            covered = stop;
            if (covered >= end) return 0;
        }
        // Keep the partial last line for the next read.
        std::memmove(buf.data(), text.data(), text.size());
        have = text.size();
        if (have == buf.size()) return EFAULT;
    }
}

}  // namespace fdbroker::broker
