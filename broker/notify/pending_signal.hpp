// Whether a thread waiting for the broker has a signal to handle. Once the broker has received a
// call, its caller waits killably only (sandbox/seccomp_filter.cpp, WAIT_KILLABLE_RECV), so a signal it
// catches waits for the answer. For a call the kernel would wait in for long natively too, a connect
// still in progress, the broker asks this instead and answers as the kernel's own wait would
// (ERESTARTSYS) when the caller has a signal to handle: the handler runs, and the kernel either
// restarts the call (SA_RESTART) or fails it with EINTR, as it would without fdbroker.
#pragma once

#include <sys/types.h>

namespace fdbroker::broker {

// What a waiting call is answered with when a signal interrupts it: the kernel's ERESTARTSYS, which
// never reaches the program (include/linux/errno.h; the kernel turns it into a restart or EINTR).
inline constexpr int kRestartSys = 512;

// True when thread `tid` has a signal pending that will interrupt it once it returns from the broker:
// not blocked, and either caught by a handler or one that stops the process by default. A signal
// pending for the whole process counts only when no other thread could take it, so that the thread
// the kernel woke for it is this one. /proc/TID/status names these sets (SigPnd, ShdPnd, SigBlk,
// SigCgt, SigIgn); any doubt (the thread gone, a field missing) is false.
[[nodiscard]] bool interrupting_signal_pending(pid_t tid) noexcept;

}  // namespace fdbroker::broker
