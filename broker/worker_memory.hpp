// A transparent-mode caller's memory, read and written by the broker on its behalf.
//
// /proc/TID/mem is opened before anything is read and confirmed by SECCOMP_IOCTL_NOTIF_ID_VALID after
// (by the caller of open()): from then on the descriptor names the caller's address space, whatever
// happens to the thread id. Writes through it use the kernel's "force" access, which ignores page
// protections (a debugger's breakpoints), so before writing a result the broker asks the same address
// space, through a /proc/TID/maps descriptor opened and confirmed the same way, whether the kernel
// itself could write there: a read-only buffer then gets EFAULT, as the system call would give.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "broker/path_buffer.hpp"
#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

class WorkerMemory {
  public:
    // Opens the memory of thread `tid`: 0 or ESRCH. The caller confirms the notification afterwards.
    int open(pid_t tid) noexcept;

    // Copies a NUL-terminated string (at most PathBuffer::kCapacity bytes) into out: 0, EFAULT or
    // ENAMETOOLONG. Reads stop at page ends, so a string just before an unmapped page is still read.
    int read_string(std::uint64_t addr, PathBuffer& out) const noexcept;
    int read_bytes(std::uint64_t addr, void* buf, std::size_t size) const noexcept;
    // Writes a result into the caller's buffer if the caller could write it there itself: 0 or EFAULT.
    // `confirm` re-checks the notification after the memory map was opened (it is opened only here,
    // for the few calls that return data).
    int write_bytes(std::uint64_t addr, const void* buf, std::size_t size,
                    const std::function<bool()>& confirm) noexcept;

  private:
    int writable(std::uint64_t addr, std::size_t size) const noexcept;
    int writable_from_text(std::uint64_t addr, std::uint64_t end) const noexcept;

    pid_t tid_ = 0;
    unique_fd mem_;
    unique_fd maps_;
};

}  // namespace fdbroker::broker
