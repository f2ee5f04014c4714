#include "sandbox/seccomp_filter.hpp"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "sandbox/kernel_features.hpp"
#include "sandbox/prebuilt_filters.hpp"
#include "sandbox/syscall_preset.hpp"

namespace fdbroker::sandbox {

namespace {

// Allowed in library mode, where no socket can be unconnected or unbound; with socket() allowed
// (transparent mode) an address hidden in these calls (sendto's, TCP Fast Open's) would bypass the
// connect rules, so they are allowed below only in forms that carry none.
constexpr const char* kAddressCarrying[] = {"sendto", "sendmsg", "sendmmsg", "utimensat"};

// Open flags a worker may use by itself: reading only, checked in full.
constexpr std::uint64_t kReadOnlyOpenFlags =
    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_DIRECTORY | O_NOFOLLOW | 0100000 /* O_LARGEFILE */;

// Transparent mode under reads = "kernel": read-only opens the kernel judges (Landlock). Not
// O_DIRECTORY: opening a directory (opendir) stays with the broker, which can grant listing a directory
// named exactly, as Landlock cannot.
constexpr std::uint64_t kKernelReadOpenFlags = kReadOnlyOpenFlags & ~static_cast<std::uint64_t>(O_DIRECTORY);

constexpr std::uint64_t kNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

bool contains(const std::vector<std::string>& names, const char* name) {
    for (const auto& n : names)
        if (n == name) return true;
    return false;
}

template <std::size_t N>
bool listed(const char* const (&names)[N], const char* name) {
    for (const char* n : names)
        if (std::strcmp(n, name) == 0) return true;
    return false;
}

// Adds a rule; names this libseccomp does not know on this architecture are skipped (they then fall
// to the default action, which refuses them).
int add(void* ctx, std::uint32_t action, const char* name, unsigned count = 0,
        const scmp_arg_cmp* cmp = nullptr) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0;
    const int rc = seccomp_rule_add_array(ctx, action, nr, count, cmp);
    return rc == -EEXIST ? 0 : rc;
}

// What transparent mode lets through without the broker: TCP and unix stream sockets (connect, bind
// and listen reach the broker; a datagram socket could send anywhere with sendmsg, whose address the
// filter cannot see), sends that name no address, and setting times on a held descriptor. The protocol
// is checked too: only plain TCP (0 or IPPROTO_TCP) for the inet families and 0 for unix sockets, since
// another stream protocol (SCTP, MPTCP) could associate with a peer without the brokered connect.
// Under reads = "kernel" also read-only opens, which Landlock judges against the profile's read set,
// and under stat = "kernel" the stat family (which the profile's syscalls.deny may still take away).
int transparent_rules(void* ctx, const policy::SyscallRules& rules, const FilterOptions& options) {
    if (options.kernel_stat)
        for (const char* name : {"stat", "lstat", "newfstatat", "statx"})
            if (!contains(rules.deny, name))
                if (const int rc = add(ctx, SCMP_ACT_ALLOW, name); rc != 0) return rc;
    if (options.kernel_reads) {
        const scmp_arg_cmp open_flags = SCMP_A1(SCMP_CMP_MASKED_EQ, ~kKernelReadOpenFlags, 0);
        const scmp_arg_cmp openat_flags = SCMP_A2(SCMP_CMP_MASKED_EQ, ~kKernelReadOpenFlags, 0);
        if (const int rc = add(ctx, SCMP_ACT_ALLOW, "open", 1, &open_flags); rc != 0) return rc;
        if (const int rc = add(ctx, SCMP_ACT_ALLOW, "openat", 1, &openat_flags); rc != 0) return rc;
    }
    for (const int family : {AF_UNIX, AF_INET, AF_INET6}) {
        for (const int protocol : {0, static_cast<int>(IPPROTO_TCP)}) {
            if (family == AF_UNIX && protocol != 0) continue;
            const scmp_arg_cmp stream[] = {SCMP_A0(SCMP_CMP_EQ, static_cast<std::uint64_t>(family)),
                                           SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM),
                                           SCMP_A2(SCMP_CMP_EQ, static_cast<std::uint64_t>(protocol))};
            if (const int rc = add(ctx, SCMP_ACT_ALLOW, "socket", 3, stream); rc != 0) return rc;
        }
    }
    const scmp_arg_cmp sendto_plain[] = {SCMP_A4(SCMP_CMP_EQ, 0),
                                         SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, 0)};
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "sendto", 2, sendto_plain); rc != 0) return rc;
    const scmp_arg_cmp sendmsg_plain = SCMP_A2(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, 0);
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "sendmsg", 1, &sendmsg_plain); rc != 0) return rc;
    const scmp_arg_cmp sendmmsg_plain = SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, 0);
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "sendmmsg", 1, &sendmmsg_plain); rc != 0) return rc;
    // futimens(fd): the path argument is a null pointer, a register value the filter can see.
    const scmp_arg_cmp no_path = SCMP_A1(SCMP_CMP_EQ, 0);
    return add(ctx, SCMP_ACT_ALLOW, "utimensat", 1, &no_path);
}

// What library mode lets through by itself beyond the allow-list. Opening: read-only (Landlock narrows
// where); anything else goes to the broker, which answers EACCES. And unless the profile says its
// datagram sockets may send anywhere (datagram_reach = "any"), sendto only without an address: with
// one, a datagram socket reaches whatever it names, not the peer its rule granted. The forms left out
// reach the broker (an audited EACCES), or without one (`refuse`) fail with EACCES in the filter.
// (sendmsg's address lies in memory the filter cannot read; under "peer" the broker hands out no
// datagram socket for it to use.)
int library_rules(void* ctx, const policy::SyscallRules& rules, policy::DatagramReach datagram_reach,
                  bool refuse) {
    const scmp_arg_cmp open_flags = SCMP_A1(SCMP_CMP_MASKED_EQ, ~kReadOnlyOpenFlags, 0);
    const scmp_arg_cmp openat_flags = SCMP_A2(SCMP_CMP_MASKED_EQ, ~kReadOnlyOpenFlags, 0);
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "open", 1, &open_flags); rc != 0) return rc;
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "openat", 1, &openat_flags); rc != 0) return rc;
    // Under "any" sendto is on the allow-list; a profile's `syscalls.deny` takes it away in both cases.
    if (datagram_reach == policy::DatagramReach::any || contains(rules.deny, "sendto")) return 0;
    const scmp_arg_cmp no_address = SCMP_A4(SCMP_CMP_EQ, 0);
    const scmp_arg_cmp address = SCMP_A4(SCMP_CMP_NE, 0);
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "sendto", 1, &no_address); rc != 0) return rc;
    return refuse ? add(ctx, SCMP_ACT_ERRNO(EACCES), "sendto", 1, &address) : 0;
}

// Unix socket pairs of connected types and protocol 0 only: the library makes one per process to attach
// to the broker. A datagram pair is refused (EACCES, as any socket): its sendmsg could name any unix
// datagram socket the worker's uid may write to, such as /dev/log. So is any protocol but 0 (the kernel
// takes PF_UNIX as a synonym; nothing needs it). The refused forms reach the broker, or without one
// (`refuse`) fail in the filter.
int socketpair_rules(void* ctx, bool refuse) {
    for (const int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
        const scmp_arg_cmp connected[] = {SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
                                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, static_cast<std::uint64_t>(type)),
                                          SCMP_A2(SCMP_CMP_EQ, 0)};
        if (const int rc = add(ctx, SCMP_ACT_ALLOW, "socketpair", 3, connected); rc != 0) return rc;
    }
    if (!refuse) return 0;
    const scmp_arg_cmp datagram[] = {
        SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, static_cast<std::uint64_t>(SOCK_DGRAM))};
    if (const int rc = add(ctx, SCMP_ACT_ERRNO(EACCES), "socketpair", 2, datagram); rc != 0) return rc;
    const scmp_arg_cmp protocol[] = {SCMP_A0(SCMP_CMP_EQ, AF_UNIX), SCMP_A2(SCMP_CMP_NE, 0)};
    if (const int rc = add(ctx, SCMP_ACT_ERRNO(EACCES), "socketpair", 2, protocol); rc != 0) return rc;
    return 0;
}

// The ioctl commands left to the filter's default action: every 32-bit command but the refused ones,
// as masked-equality blocks (the commands that share a prefix of high bits), since libseccomp takes
// one comparison per argument and cannot negate one. The cover of 2^32 values minus k points needs at
// most 32·k blocks; the terminal commands, which share their top 24 bits, need far fewer. Commands with
// bits above 32 are in no block and go to the default action as well.
std::vector<scmp_arg_cmp> allowed_ioctl_blocks(std::span<const TerminalRefusal> refused) {
    struct Block {
        std::uint64_t prefix;
        int free_bits;  // the low bits any value may take
    };
    std::vector<scmp_arg_cmp> out;
    std::vector<Block> pending{{0, 32}};
    while (!pending.empty()) {
        const Block block = pending.back();
        pending.pop_back();
        const std::uint64_t low_mask = (std::uint64_t{1} << block.free_bits) - 1;
        const auto inside = [&](const TerminalRefusal& r) { return (r.cmd & ~low_mask) == block.prefix; };
        if (std::none_of(refused.begin(), refused.end(), inside))
            out.push_back(SCMP_A1(SCMP_CMP_MASKED_EQ, ~low_mask, block.prefix));
        else if (block.free_bits > 0)  // else a refused command itself
            for (const std::uint64_t half : {std::uint64_t{0}, std::uint64_t{1} << (block.free_bits - 1)})
                pending.push_back({block.prefix | half, block.free_bits - 1});
    }
    return out;
}

// A worker shares its user's terminal (as its standard streams, and as its controlling terminal unless
// the profile detaches it): it must not push input into it (TIOCSTI), use the console's tricks
// (TIOCLINUX), take a terminal as its own (TIOCSCTTY), change its line discipline (TIOCSETD) or send
// the console's output to it (TIOCCONS); and unless the profile keeps job control, it may not make
// itself the foreground process group (TIOCSPGRP), which would let it read what the user types next.
// With a broker the allow rules leave these out, so that they reach it to be answered and audited (a
// rule may not carry the filter's default action itself); without one each is refused here.
int ioctl_rules(void* ctx, policy::Terminal terminal, FilterAction action) {
    const std::span<const TerminalRefusal> refused = refused_terminal_ioctls(terminal);
    if (action == FilterAction::kill) {
        for (const TerminalRefusal& r : refused) {
            const scmp_arg_cmp is = SCMP_A1(SCMP_CMP_EQ, r.cmd);
            if (const int rc = add(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &is); rc != 0) return rc;
        }
        // Exact-value rules take precedence over the masked allow, which the attack suite checks.
        const scmp_arg_cmp ioctl_32bit = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff00000000ULL, 0);
        return add(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &ioctl_32bit);
    }
    for (const scmp_arg_cmp& block : allowed_ioctl_blocks(refused))
        if (const int rc = add(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &block); rc != 0) return rc;
    return 0;
}

bool listed(std::span<const char* const> names, const char* name) {
    for (const char* n : names)
        if (std::strcmp(n, name) == 0) return true;
    return false;
}

// The preset's allow-list and the profile's `syscalls.allow`, less its `syscalls.deny` and the calls
// transparent mode sends to the broker whatever they say (`skipped`).
template <class Skipped>
int allow_rules(void* ctx, const policy::SyscallRules& rules, Skipped skipped) {
    for (const char* name : allowed_calls())
        if (!contains(rules.deny, name) && !skipped(name))
            if (const int rc = add(ctx, SCMP_ACT_ALLOW, name); rc != 0) return rc;
    for (const std::string& name : rules.allow)
        if (!contains(rules.deny, name.c_str()) && !skipped(name.c_str()))
            if (const int rc = add(ctx, SCMP_ACT_ALLOW, name.c_str()); rc != 0) return rc;
    return 0;
}

int build(void* ctx, const policy::SyscallRules& rules, const FilterOptions& options, bool transparent) {
    const policy::DatagramReach datagram_reach = options.datagram_reach;
    // With a broker, every refusal but the few below reaches it (the default action), which answers it
    // and records it in the audit stream; without one, the filter refuses by itself (lockdown_rules).
    const bool refuse = options.action == FilterAction::kill;
    // In transparent mode the brokered calls and the address-carrying ones are left to the default
    // action (the broker), whatever the preset or the profile's `syscalls.allow` say; in library mode
    // sendto gets the rules of library_rules alone, unless the profile lets datagrams go anywhere.
    const bool guarded_sendto = !transparent && datagram_reach == policy::DatagramReach::peer;
    auto skipped = [&options, transparent, guarded_sendto](const char* name) {
        if (guarded_sendto && std::strcmp(name, "sendto") == 0) return true;
        return transparent && (listed(options.brokered, name) || listed(kAddressCarrying, name));
    };
    if (const int rc = allow_rules(ctx, rules, skipped); rc != 0) return rc;
    if (const int rc = transparent ? transparent_rules(ctx, rules, options)
                                   : library_rules(ctx, rules, datagram_reach, refuse);
        rc != 0)
        return rc;

    // Threads and fork, never new namespaces. clone3 hides its flags in memory a filter cannot read,
    // so it reports ENOSYS and the C library falls back to clone: answered here, not by the broker,
    // since every thread a program starts begins so (the lockdown filter's default is ENOSYS already).
    const scmp_arg_cmp no_namespaces = SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0);
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "clone", 1, &no_namespaces); rc != 0) return rc;
    if (!refuse && !contains(rules.allow, "clone3"))
        if (const int rc = add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3"); rc != 0) return rc;

    if (const int rc = socketpair_rules(ctx, refuse); rc != 0) return rc;

    // ioctl on held descriptors; the command is 32 bits, higher bits go to the default action, and so
    // do the terminal commands a worker may not use.
    if (const int rc = ioctl_rules(ctx, options.terminal, options.action); rc != 0) return rc;

    // personality(): querying only.
    const scmp_arg_cmp query = SCMP_A0(SCMP_CMP_EQ, 0xffffffffULL);
    if (const int rc = add(ctx, SCMP_ACT_ALLOW, "personality", 1, &query); rc != 0) return rc;

    if (options.exec)
        if (const int rc = add(ctx, SCMP_ACT_ALLOW, "execve"); rc != 0) return rc;
    return 0;
}

// With no broker to answer, the filter refuses by itself what the broker would refuse: the preset's
// quiet refusals with EACCES, its refusals with their errno (ENOSYS is the default action), its fatal
// calls and clone with a namespace flag by killing the process; and exec and opening with any flag
// beyond reading with EACCES. libseccomp cannot negate a comparison, so each such flag bit gets a rule
// of its own; flags with bits above 32 still fall to the default.
int lockdown_rules(void* ctx, const policy::SyscallRules& rules) {
    auto ruled = [&rules](const char* name) {
        return contains(rules.allow, name) || contains(rules.deny, name);
    };
    const std::uint32_t eacces = SCMP_ACT_ERRNO(EACCES);
    for (const char* name : quietly_refused_calls())
        if (!ruled(name))
            if (const int rc = add(ctx, eacces, name); rc != 0) return rc;
    for (const Refusal& r : refused_calls())
        if (r.error == RefusalErrno::eperm && !ruled(r.name))
            if (const int rc = add(ctx, SCMP_ACT_ERRNO(EPERM), r.name); rc != 0) return rc;
    for (const char* name : fatal_calls())
        if (!ruled(name))
            if (const int rc = add(ctx, SCMP_ACT_KILL_PROCESS, name); rc != 0) return rc;
    for (std::uint64_t bit = 1; bit <= kNamespaceFlags; bit <<= 1) {
        if (!(bit & kNamespaceFlags)) continue;
        const scmp_arg_cmp new_namespace = SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit);
        if (const int rc = add(ctx, SCMP_ACT_KILL_PROCESS, "clone", 1, &new_namespace); rc != 0) return rc;
    }
    if (const int rc = add(ctx, eacces, "execve"); rc != 0) return rc;
    for (std::uint64_t bit = 1; bit <= 0x80000000ULL; bit <<= 1) {
        if (bit & kReadOnlyOpenFlags) continue;
        const scmp_arg_cmp open_bit = SCMP_A1(SCMP_CMP_MASKED_EQ, bit, bit);
        const scmp_arg_cmp openat_bit = SCMP_A2(SCMP_CMP_MASKED_EQ, bit, bit);
        if (const int rc = add(ctx, eacces, "open", 1, &open_bit); rc != 0) return rc;
        if (const int rc = add(ctx, eacces, "openat", 1, &openat_bit); rc != 0) return rc;
    }
    return 0;
}

}  // namespace

void FilterContextDeleter::operator()(void* ctx) const noexcept {
    seccomp_release(ctx);
}

FilterContext new_filter(std::uint32_t default_action) noexcept {
    FilterContext ctx(seccomp_init(default_action));
    // A libseccomp without the tree (before 2.5) builds its chain: the same filter, loaded more slowly.
    if (ctx) static_cast<void>(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2));
    return ctx;
}

int export_program(void* ctx, std::vector<sock_filter>& code) noexcept {
    const unique_fd program(static_cast<int>(::syscall(SYS_memfd_create, "fdbroker-filter", MFD_CLOEXEC)));
    if (!program) return errno;
    if (const int rc = seccomp_export_bpf(ctx, program.get()); rc != 0) return -rc;
    const off_t size = ::lseek(program.get(), 0, SEEK_END);
    if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) return EINVAL;
    const std::size_t count = static_cast<std::size_t>(size) / sizeof(sock_filter);
    if (count > BPF_MAXINSNS) return EINVAL;
    try {
        code.resize(count);
    } catch (const std::bad_alloc&) {
        return ENOMEM;
    }
    const std::size_t bytes = code.size() * sizeof(sock_filter);
    if (::pread(program.get(), code.data(), bytes, 0) != static_cast<ssize_t>(bytes)) return EIO;
    return 0;
}

int load_program(std::span<const sock_filter> code, bool notify, unsigned flags,
                 unique_fd& listener) noexcept {
    if (code.empty() || code.size() > BPF_MAXINSNS) return EINVAL;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    // The kernel copies the program and never writes to it.
    sock_fprog prog{static_cast<unsigned short>(code.size()), const_cast<sock_filter*>(code.data())};
    if (notify) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    const long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (fd < 0) return errno;
    if (notify) listener.reset(static_cast<int>(fd));  // the kernel makes listeners close-on-exec
    return 0;
}

namespace {

// Loads the program libseccomp generated with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19),
// which libseccomp 2.5 cannot ask for: once the broker has received a call, only a fatal signal ends
// the wait. Otherwise a signal arriving while the broker performs a mkdir or a rename would restart
// the call, which would then fail (EEXIST, ENOENT) on the broker's own completed work. EINVAL: the
// kernel lacks the flag; the caller then loads the filter the ordinary way.
int load_wait_killable(void* ctx, unique_fd& listener) noexcept {
    std::vector<sock_filter> code;
    if (const int err = export_program(ctx, code); err != 0) return err;
    return load_program(code, /*notify=*/true, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, listener);
}

// The worker filter for `rules` and `options`, built by libseccomp but not loaded; null on failure,
// with `failed` saying why.
FilterContext compile(const policy::SyscallRules& rules, const FilterOptions& options,
                      FilterResult& failed) noexcept {
    const FilterAction action = options.action;
    const bool transparent = !options.brokered.empty() && action == FilterAction::notify;
    auto fail = [&failed](int error, const char* what) {
        failed.error = error;
        failed.what = what;
        return FilterContext();
    };
    // Without a broker a call the preset does not name fails with ENOSYS, as on a kernel without it.
    FilterContext ctx = new_filter(action == FilterAction::notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(ENOSYS));
    if (!ctx) return fail(ENOMEM, "seccomp_init");
    // Native architecture only. An i386 (int 0x80) or x32 call is never allowed: with a broker it
    // goes to the broker like any violation, which names it in the log and kills the process (a
    // foreign ABI is how filters written for one ABI are bypassed, so it is never answered EPERM);
    // without one it kills the process outright.
    const std::uint32_t foreign = action == FilterAction::notify ? SCMP_ACT_NOTIFY : SCMP_ACT_KILL_PROCESS;
    if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, foreign) != 0 ||
        seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 1) != 0)
        return fail(EINVAL, "seccomp_attr_set");
    if (const int rc = build(ctx.get(), rules, options, transparent); rc != 0)
        return fail(-rc, "seccomp_rule_add");
    if (action == FilterAction::kill)
        if (const int rc = lockdown_rules(ctx.get(), rules); rc != 0) return fail(-rc, "seccomp_rule_add");
    return ctx;
}

}  // namespace

bool filter_keeps_truncation(const policy::SyscallRules& rules) noexcept {
    // Each of these, allowed outright, truncates by path in some form the filter cannot tell apart:
    // truncate(2) itself, an open's O_TRUNC (openat2's flags and io_uring's requests lie in memory).
    for (const char* name : {"truncate", "open", "openat", "openat2", "creat", "io_uring_setup",
                             "io_uring_enter", "io_uring_register"})
        if (contains(rules.allow, name)) return false;
    return true;
}

FilterResult load_worker_filter(const policy::SyscallRules& rules, const FilterOptions& options) noexcept {
    const FilterAction action = options.action;
    const bool transparent = !options.brokered.empty() && action == FilterAction::notify;
    FilterResult result;
    auto failed = [&result](int error, const char* what) {
        result.error = error;
        result.what = what;
        return std::move(result);
    };
    // Compiling the filter is most of a worker's set-up time: the build compiled the usual ones already.
    if (const std::span<const sock_filter> prebuilt = prebuilt_worker_filter(rules, options);
        !prebuilt.empty()) {
        const int err = load_program(prebuilt, action == FilterAction::notify, 0, result.notify);
        return err == 0 ? std::move(result) : failed(err, "loading the prebuilt seccomp filter");
    }
    const FilterContext ctx = compile(rules, options, result);
    if (!ctx) return result;
    if (action == FilterAction::notify && transparent && !simulated_absent(Feature::wait_killable_recv)) {
        const int err = load_wait_killable(ctx.get(), result.notify);
        if (err == 0) return result;
        if (err != EINVAL) return failed(err, "loading the seccomp filter (wait-killable)");
    }
    if (const int rc = seccomp_load(ctx.get()); rc != 0) return failed(-rc, "seccomp_load");
    if (action == FilterAction::notify) {
        result.notify.reset(seccomp_notify_fd(ctx.get()));
        if (!result.notify) return failed(EBADF, "seccomp_notify_fd");
    }
    return result;
}

int compile_worker_filter(const policy::SyscallRules& rules, const FilterOptions& options,
                          std::vector<sock_filter>& program) noexcept {
    FilterResult failed;
    const FilterContext ctx = compile(rules, options, failed);
    return ctx ? export_program(ctx.get(), program) : failed.error;
}

std::span<const TerminalRefusal> refused_terminal_ioctls(policy::Terminal terminal) noexcept {
    // TIOCSPGRP last: job control keeps it.
    static constexpr TerminalRefusal refused[] = {{TIOCSTI, "TIOCSTI"},     {TIOCLINUX, "TIOCLINUX"},
                                                  {TIOCSCTTY, "TIOCSCTTY"}, {TIOCSETD, "TIOCSETD"},
                                                  {TIOCCONS, "TIOCCONS"},   {TIOCSPGRP, "TIOCSPGRP"}};
    const std::span<const TerminalRefusal> all(refused);
    return terminal == policy::Terminal::job_control ? all.first(all.size() - 1) : all;
}

NotifyProbeResult probe_notify_filter() noexcept {
    NotifyProbeResult result;
    FilterContext ctx = new_filter(SCMP_ACT_ALLOW);
    // A call no probe makes: the listener only has to exist.
    if (!ctx || seccomp_rule_add(ctx.get(), SCMP_ACT_NOTIFY, SCMP_SYS(acct), 0) != 0) return result;
    if (!simulated_absent(Feature::wait_killable_recv) &&
        load_wait_killable(ctx.get(), result.listener) == 0) {
        result.wait_killable = true;
        return result;
    }
    if (seccomp_load(ctx.get()) == 0) result.listener.reset(seccomp_notify_fd(ctx.get()));
    return result;
}

bool is_foreign_abi(std::uint32_t arch, int syscall_nr) noexcept {
    constexpr int kX32Bit = 0x40000000;  // __X32_SYSCALL_BIT: an x32 call on an x86-64 kernel
    return arch != seccomp_arch_native() || (arch == SCMP_ARCH_X86_64 && (syscall_nr & kX32Bit) != 0);
}

}  // namespace fdbroker::sandbox
