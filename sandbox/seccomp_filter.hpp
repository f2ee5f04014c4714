// The worker's system call filter, built with libseccomp (never hand-written BPF) from the default
// preset (syscall_preset.hpp) and the profile's `syscalls.allow` and `syscalls.deny`.
//
// Deny by default. With a broker (fdbroker run, serve), every call that is not allowed goes to it
// through a seccomp notification fd: it refuses the call with the preset's errno, or kills the process
// for a fatal one, and records it in the audit stream. Without one (fdbroker_lockdown()) the filter
// refuses by itself: EACCES for what libraries cope with (opening for write, creating sockets,
// changing the filesystem), the preset's errno for harmless calls, ENOSYS for calls the preset does
// not name, and a kill for fatal calls. Either way the only way to a new file or socket is the broker.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "policy/confinement.hpp"

namespace fdbroker::sandbox {

enum class FilterAction {
    notify,  // default action: a user notification answered by the broker (fdbroker run, serve)
    kill,    // no broker (fdbroker_lockdown): the filter refuses, and kills for fatal calls, by itself
};

struct FilterResult {
    int error = 0;          // errno; 0 on success
    unique_fd notify;       // the listener, for FilterAction::notify
    const char* what = "";  // which step failed
};

struct FilterOptions {
    // Whether execve stays allowed after the first exec (exec = true in the profile); without it
    // execve goes to the default action, which lets the broker allow exactly the worker's first exec.
    bool exec = false;
    FilterAction action = FilterAction::notify;
    // (notify only) Transparent mode when not empty: the system calls the broker performs, which all
    // reach it (broker/notify/decode_notification.hpp holds the list); TCP and unix stream sockets may then
    // be created, datagram ones not.
    std::span<const char* const> brokered{};
    // (transparent mode) reads = "kernel": a read-only open or openat (the flags a register the filter
    // sees, not worker memory) is let through to the kernel, where Landlock judges it, instead of
    // reaching the broker. O_DIRECTORY opens still reach it.
    bool kernel_reads = false;
    // (transparent mode) stat = "kernel": the stat family (stat, lstat, newfstatat, statx) is let
    // through to the kernel, which answers for anything the worker's user can look up, instead of
    // reaching the broker. Only with kernel_reads.
    bool kernel_stat = false;
    // (library mode) Under `peer`, sendto with an address fails with EACCES.
    policy::DatagramReach datagram_reach = policy::DatagramReach::peer;
    // Which terminal ioctls are refused (EPERM): pushing input (TIOCSTI), console tricks (TIOCLINUX),
    // taking a terminal (TIOCSCTTY), changing its line discipline (TIOCSETD) or redirecting the
    // console (TIOCCONS) always; making a process group the foreground one (TIOCSPGRP) unless the
    // profile keeps job control.
    policy::Terminal terminal = policy::Terminal::shared;
};

// A libseccomp filter context (a scmp_filter_ctx), released when it goes.
struct FilterContextDeleter {
    void operator()(void* ctx) const noexcept;
};
using FilterContext = std::unique_ptr<void, FilterContextDeleter>;

// A new filter whose calls fall to `default_action`, laid out as a binary tree of system call numbers
// rather than libseccomp's default chain; null when out of memory. Every filter fdbroker loads starts
// here. Loading a filter, the kernel runs it once for each system call number to learn which ones it
// always allows (those then skip the filter): along a chain of some 370 comparisons that took the
// worker's start 0.3-0.5 ms, along a tree's few it takes a third of that; the calls still judged by the
// filter (argument checks, notifications) cross fewer comparisons too.
[[nodiscard]] FilterContext new_filter(std::uint32_t default_action) noexcept;

// The BPF program libseccomp generates for the filter `ctx` (a scmp_filter_ctx), through
// seccomp_export_bpf. 0 or an errno value.
[[nodiscard]] int export_program(void* ctx, std::vector<sock_filter>& code) noexcept;

// Loads a program the way seccomp_load() loads the filters fdbroker builds (SCMP_FLTATR_CTL_NNP sets
// no_new_privs first; a filter with a notifying action asks for a listener, which goes to `listener`),
// with `flags` added. 0 or an errno value.
[[nodiscard]] int load_program(std::span<const sock_filter> code, bool notify, unsigned flags,
                               unique_fd& listener) noexcept;

// A terminal ioctl no worker may make (FilterOptions::terminal says which), with its name for the log.
struct TerminalRefusal {
    unsigned long cmd;
    const char* name;
};

// The terminal ioctls refused under `terminal`. With a broker they reach it (the filter's allow rules
// for ioctl leave them out), which answers EPERM and audits them; without one the filter answers EPERM.
[[nodiscard]] std::span<const TerminalRefusal> refused_terminal_ioctls(policy::Terminal terminal) noexcept;

// Builds and loads the filter into the calling process (which must have no_new_privs set). Where the
// build compiled this very filter already (prebuilt_filters.hpp), it loads that program instead.
[[nodiscard]] FilterResult load_worker_filter(const policy::SyscallRules& rules,
                                              const FilterOptions& options) noexcept;

// Whether the worker's filter keeps every truncation by path from the kernel: `truncate` and opens
// with O_TRUNC reach the broker (or fail in the filter), unless `syscalls.allow` lets through a call
// that can truncate by path in any form (truncate, open, openat, openat2, creat, io_uring). Landlock
// may then grant truncating wherever it grants reading (landlock.hpp), since nothing can use it.
[[nodiscard]] bool filter_keeps_truncation(const policy::SyscallRules& rules) noexcept;

// The BPF program libseccomp generates now for the filter load_worker_filter() builds (in transparent
// mode, before the wait-killable flag, which is not part of the program), without loading it: what the
// build compiles ahead of time, and what tests compare that with. 0 or an errno value.
[[nodiscard]] int compile_worker_filter(const policy::SyscallRules& rules, const FilterOptions& options,
                                        std::vector<sock_filter>& program) noexcept;

// A filter the broker's way (libseccomp, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has
// it), allowing everything but one call nobody makes, which it notifies: what kernel_features.hpp
// probes the listener with. Call only in a child that may keep the filter (no_new_privs set).
struct NotifyProbeResult {
    unique_fd listener;          // empty: the kernel has no user notification
    bool wait_killable = false;  // loaded with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
};
[[nodiscard]] NotifyProbeResult probe_notify_filter() noexcept;

// Whether a notified call was made through another ABI than the filter's (i386 `int 0x80`, x32): its
// number means another call than the native one of the same number, so it must never be answered as
// one; the broker kills the process.
[[nodiscard]] bool is_foreign_abi(std::uint32_t arch, int syscall_nr) noexcept;

}  // namespace fdbroker::sandbox
