// A transparent-mode caller's memory, read and written by the broker on its behalf.
//
// Reads use process_vm_readv on the caller's thread id, which honours page protections as the kernel's
// own copy from user memory would; the caller confirms with SECCOMP_IOCTL_NOTIF_ID_VALID afterwards
// that the notification is still pending, and a thread waiting in a notification cannot have exited
// (and had its id reused) without the notification going with it — so what was read was the caller's.
// Writes cannot be confirmed afterwards, so they go through /proc/TID/mem, opened and then confirmed
// before anything is written: from then on the descriptor names the caller's address space, whatever
// happens to the thread id. Writes through it use the kernel's "force" access, which ignores page
// protections (a debugger's breakpoints), so before writing a result the broker asks the same address
// space, through a /proc/TID/maps descriptor opened and confirmed the same way, whether the kernel
// itself could write there: a read-only buffer then gets EFAULT, as the system call would give. Only
// the few calls that return data (stat, readlink) write, so the others open nothing. Both descriptors
// are kept for the thread's next call where it can be proven to be the same thread in the same address
// space then (address_spaces.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "broker/notify/address_spaces.hpp"
#include "policy/path_buffer.hpp"

namespace fdbroker::broker {

using policy::PathBuffer;

class WorkerMemory {
  public:
    // `kept` (or none) keeps the descriptors writes go through from one call of the thread to the next.
    WorkerMemory(pid_t tid, AddressSpaces* kept) noexcept : tid_(tid), kept_(kept) {}
    ~WorkerMemory();
    WorkerMemory(const WorkerMemory&) = delete;
    WorkerMemory& operator=(const WorkerMemory&) = delete;

    // Copies a NUL-terminated string (at most PathBuffer::kCallerLimit bytes, as the kernel takes) into
    // out: 0, EFAULT or ENAMETOOLONG. Reads stop at page ends, so a string just before an unmapped page is
    // still read.
    int read_string(std::uint64_t addr, PathBuffer& out) const noexcept;
    int read_bytes(std::uint64_t addr, void* buf, std::size_t size) const noexcept;
    // Writes a result into the caller's buffer if the caller could write it there itself: 0, EFAULT,
    // or ESRCH if the caller is gone. `confirm` re-checks the notification once the descriptors the
    // write goes through are open.
    int write_bytes(std::uint64_t addr, const void* buf, std::size_t size,
                    const std::function<bool()>& confirm) noexcept;

  private:
    int open_space(const std::function<bool()>& confirm) noexcept;
    int writable(std::uint64_t addr, std::size_t size) const noexcept;
    int writable_from_text(std::uint64_t addr, std::uint64_t end) const noexcept;

    [[nodiscard]] ssize_t read_some(std::uint64_t addr, void* buf, std::size_t size) const noexcept;

    pid_t tid_;
    AddressSpaces* kept_;
    AddressSpace space_;  // the descriptors writes go through, once a write needs them
};

}  // namespace fdbroker::broker
