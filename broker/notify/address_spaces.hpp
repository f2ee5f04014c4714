// The descriptors through which the broker writes results into a transparent-mode caller's memory
// (worker_memory.hpp), kept from one call of a thread to its next. Opening /proc/TID/mem and
// /proc/TID/maps and closing them again costs about a quarter of a brokered stat, and a program stats
// many files from the same thread.
//
// A kept descriptor goes on naming the address space it was opened on, whatever becomes of the thread
// id, so each reuse first proves that the caller is still that thread in that address space:
// - the thread: a pidfd for it (PIDFD_THREAD) that has not become readable, so it has not exited and
//   its id cannot have passed to another thread (a thread reusing an id may be a fork of the old one,
//   with a copy of its memory);
// - the address space: the 16 random bytes the kernel placed in it at exec (AT_RANDOM), read now by
//   thread id, so from whatever address space the caller has now, are those read through the kept
//   descriptor when it was opened. An exec gives the thread another address space, with other random
//   bytes elsewhere; the old one lives on where a vfork parent still uses it.
// Where the proof cannot be had (a kernel without thread pidfds, before 6.9) nothing is kept.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker {

// One caller thread's address space as the broker writes into it.
struct AddressSpace {
    pid_t tid = 0;
    unique_fd mem;    // /proc/TID/mem
    unique_fd maps;   // /proc/TID/maps
    unique_fd pidfd;  // the thread's; empty when this cannot be kept
    std::uint64_t random_at = 0;
    std::array<std::byte, 16> random{};

    // Whether the caller, thread `tid` now, is the thread these descriptors were opened for and still
    // has the address space they name.
    [[nodiscard]] bool still_current() const noexcept;
    // Takes the thread's pidfd and its address space's random bytes (through `mem`, opened already),
    // so that the descriptors can be kept; leaves pidfd empty where they cannot be had.
    void fingerprint() noexcept;
};

class AddressSpaces {
  public:
    AddressSpaces();

    // Thread tid's kept descriptors, taken out (tid 0 and empty if none are kept).
    AddressSpace take(pid_t tid) noexcept;
    // Keeps a thread's descriptors for its next call, forgetting the least recently used beyond
    // kMaxKept; those that cannot be kept are closed.
    void keep(AddressSpace space) noexcept;

  private:
    // Three descriptors each: enough for the threads a program stats from at once.
    static constexpr std::size_t kMaxKept = 16;

    std::mutex mutex_;
    std::vector<AddressSpace> kept_;  // least recently used first; capacity kMaxKept, never more
};

}  // namespace fdbroker::broker
