#include "broker/ops/perform.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "broker/ops/needs.hpp"

namespace fdbroker::broker {

namespace {

// Sets the broker's umask to 0 for one creation whose mode already carries the caller's umask; does
// nothing for a call that creates nothing (two system calls fewer per open).
class NoUmask {
  public:
    explicit NoUmask(bool active) noexcept : active_(active), old_(active ? ::umask(0) : 0) {}
    ~NoUmask() {
        if (active_) ::umask(old_);
    }
    NoUmask(const NoUmask&) = delete;
    NoUmask& operator=(const NoUmask&) = delete;

  private:
    bool active_;
    mode_t old_;
};

// Whether `path` is visible at all under `profile`: granted something, or on the way to what is.
bool visible(const policy::Profile& profile, std::string_view path) noexcept {
    return profile.decide(path, policy::need_any).allowed;
}

// The controlling terminal of process (or thread) `pid`: /proc/PID/stat's tty_nr, the device number
// in the kernel's encoding (as TIOCGDEV gives it); 0 for none, or when it cannot be read.
unsigned long long controlling_terminal(pid_t pid) noexcept {
    char name[40];
    std::snprintf(name, sizeof name, "/proc/%d/stat", static_cast<int>(pid));
    const unique_fd fd(::open(name, O_RDONLY | O_CLOEXEC));
    char text[1024];
    const ssize_t n = fd ? ::read(fd.get(), text, sizeof text - 1) : -1;
    if (n <= 0) return 0;
    text[n] = '\0';
    // "pid (comm) state ppid pgrp session tty_nr ...": comm may hold anything, so count from its end.
    const char* p = std::strrchr(text, ')');
    for (int field = 0; p != nullptr && field < 5; ++field)
        p = std::strchr(p + 1, ' ');
    return p == nullptr ? 0 : std::strtoull(p + 1, nullptr, 10);
}

// /dev/tty names the opener's controlling terminal, and the broker is the opener: the descriptor
// reaches the broker's terminal. The caller gets it only if that is its own terminal too (TIOCGDEV
// names the terminal behind the descriptor); otherwise ENXIO, what the kernel answers a process with
// no controlling terminal. A worker detached from the terminal, or a serve-mode client from another
// session, must not reach the terminal fdbroker was started from.
void own_terminal_only(pid_t caller, Outcome& out) noexcept {
    struct ::stat st {};
    if (!out.fd || ::fstat(out.fd.get(), &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 0))
        return;
    unsigned int behind = 0;
    const unsigned long long own = controlling_terminal(caller);
    if (own == 0 || ::ioctl(out.fd.get(), TIOCGDEV, &behind) != 0 || own != behind) {
        out.fd.reset();
        out.error = ENXIO;
        out.audit.error = ENXIO;
    }
}

// `>/dev/null`: shells open with O_CREAT, which needs create even where the file exists (so that
// success does not reveal existence). On an existing device that a rule names exactly, O_CREAT does
// nothing (open(2) creates only what is missing), and existence is no secret where a rule names the
// path, so the open is judged as the open it is. Anything else keeps its O_CREAT.
std::uint64_t without_idle_create(const policy::Profile& profile, const PathBuffer& path,
                                  std::uint64_t flags) noexcept {
    if (!(flags & O_CREAT) || (flags & O_EXCL)) return flags;
    const std::uint64_t plain = flags & ~static_cast<std::uint64_t>(O_CREAT);
    if (!profile.grants_exactly(path.view(), FileOps::open_needs(static_cast<std::uint32_t>(plain))))
        return flags;
    struct ::stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) return flags;
    return plain;
}

}  // namespace

void Performer::perform(const Caller& caller, op::Operation& operation, Outcome& out) const noexcept {
    out.audit.pid = caller.pid;
    out.audit.uid = caller.uid;
    out.audit.profile = profile_->name();
    // Never done with the broker's identity instead of the worker's.
    std::optional<AsWorker> identity;
    // A walk into /proc may have dropped CAP_SYS_PTRACE (resolve.cpp): back for the next caller.
    struct PtraceBack {
        PtraceBack() = default;
        PtraceBack(const PtraceBack&) = delete;
        PtraceBack& operator=(const PtraceBack&) = delete;
        ~PtraceBack() { thread_identity::ptrace_back(); }
    } const ptrace_back;
    switch (identity_for(operation)) {
        case Identity::broker:
            thread_identity::as_broker();
            break;
        case Identity::files:
            if ((out.error = thread_identity::files_as(*owner_)) != 0) return;
            break;
        case Identity::worker:
            identity.emplace(owner_);
            if ((out.error = identity->error()) != 0) return;
            break;
    }
    // The same performer, for this caller: /proc/self names it.
    Performer bound = *this;
    bound.files_ = files_.for_caller(caller.pid);
    // std::visit throws only for a variant left valueless by an exception, which none of these can be.
    try {
        bound.visit_operation(operation, out);
    } catch (...) {
        out.error = ENOMEM;
    }
    if (out.audited) out.audit.needs = needs_of(operation);
    if (out.maybe_device) own_terminal_only(caller.pid, out);
    // The one place where a refusal becomes the caller's answer: complain mode performs it instead.
    if (recorder_ != nullptr && out.audited && !out.audit.allowed)
        return perform_refused(caller, operation, out);
    if (profile_->denied_paths() == policy::DeniedPaths::absent) as_absent(operation, out);
}

namespace {

// Complain mode: the paths a request performed anyway reaches beyond the one it names (symlinks'
// targets, what a /proc/self/fd link leads to), handed to the recorder where the profile would
// refuse them too.
class Reached final : public JudgeWitness {
  public:
    Reached(const policy::Profile& profile, const ProcSelf& self, const AuditRecord& named,
            Recorder& recorder) noexcept
        : profile_(profile), self_(self), named_(named), recorder_(recorder) {}

    void judged(std::string_view path, std::uint8_t needs) noexcept override {
        // The named paths are recorded with the request, with what it needs; but an O_PATH open handed
        // over as a readable descriptor (readable_instead) needs read there.
        const bool named = path == named_.path || path == named_.path2;
        const bool more = named_.op == "open" && (needs & ~FileOps::open_needs(named_.flags)) != 0;
        if (named && !more) return;
        // The profile's own judgement, which no witness sees.
        JudgeWitness* const me = witness_judgements(nullptr);
        const bool refused = !judge(profile_, self_, path, needs).allowed;
        witness_judgements(me);
        if (!refused) return;
        try {
            paths_.emplace_back(path, needs);
        } catch (...) {
            // One path fewer: the learned policy may miss a rule, which its run then shows.
        }
    }

    // Hands what was reached to the recorder, unless the request failed as the worker's own would
    // have been refused: a rule for it would grant what the worker's user cannot do itself.
    void report(int result) const noexcept {
        if (result == EACCES || result == EPERM) return;
        for (const auto& [path, needs] : paths_)
            recorder_.reached(named_.op, path, needs);
    }

  private:
    const policy::Profile& profile_;
    const ProcSelf& self_;
    const AuditRecord& named_;
    Recorder& recorder_;
    std::vector<std::pair<std::string, std::uint8_t>> paths_;
};

void reset(Outcome& out) noexcept {
    out.error = 0;
    out.audited = false;
    out.fd.reset();
    out.pending = false;
    out.maybe_device = false;
    out.restore_flags = -1;
    out.socket = {};
}

}  // namespace

// Complain mode. A refusal does nothing before it is decided, so performing the request again is
// performing it once. The second performer judges with the permissive profile and always takes the
// worker's whole identity: the kernel, not the broker's privileges, says what the program may do.
void Performer::perform_refused(const Caller& caller, op::Operation& operation, Outcome& out) const noexcept {
    const AuditRecord refused = out.audit;  // views into `operation`, which stays as it is
    const FileOps mine = files_.for_caller(caller.pid);
    {
        const AsWorker worker(owner_);
        if (worker.error() != 0) return recorder_->refused(refused, out.error);
        Performer anyway(*permissive_, owner_, mode_);
        anyway.files_ = anyway.files_.for_caller(caller.pid);
        reset(out);
        Reached reached(*profile_, mine.self(), refused, *recorder_);
        JudgeWitness* const before = witness_judgements(&reached);
        try {
            anyway.visit_operation(operation, out);
        } catch (...) {
            out.error = ENOMEM;
        }
        witness_judgements(before);
        reached.report(out.error);
    }
    if (out.maybe_device) own_terminal_only(caller.pid, out);
    out.audit.complained = true;
    recorder_->refused(refused, out.error);
}

// `denied_paths = "absent"`: a path operation the policy refused, on a path the profile lets the
// worker see nothing of, fails with ENOENT instead of EACCES. The answer depends on the policy and
// the path as written, never on what exists, so it reveals no more than EACCES did. A path the
// worker may see (stat) keeps EACCES for what it is not granted: "absent" would contradict stat.
// Sockets keep EACCES: an address is not a file that could be absent.
void Performer::as_absent(const op::Operation& operation, Outcome& out) const noexcept {
    if (!out.audited || out.audit.allowed || out.error != EACCES) return;
    if (std::holds_alternative<op::Connect>(operation) || std::holds_alternative<op::Bind>(operation) ||
        std::holds_alternative<op::Listen>(operation))
        return;
    // A symlink's target is its content, not a path it touches.
    const bool two_paths =
        std::holds_alternative<op::Rename>(operation) || std::holds_alternative<op::Link>(operation);
    const bool hidden =
        !visible(*profile_, out.audit.path) || (two_paths && !visible(*profile_, out.audit.path2));
    if (!hidden) return;
    out.error = ENOENT;
    out.audit.error = ENOENT;
}

void Performer::visit_operation(op::Operation& operation, Outcome& out) const {
    std::visit(
        [&](auto& o) {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, op::Open>)
                open(o, out);
            else if constexpr (std::is_same_v<T, op::Stat>)
                stat(o, out);
            else if constexpr (std::is_same_v<T, op::Statx>)
                statx(o, out);
            else if constexpr (std::is_same_v<T, op::StatHeld>)
                stat_held(o, out);
            else if constexpr (std::is_same_v<T, op::Access>)
                access(o, out);
            else if constexpr (std::is_same_v<T, op::Readlink>)
                readlink(o, out);
            else if constexpr (std::is_same_v<T, op::Mkdir>)
                mkdir(o, out);
            else if constexpr (std::is_same_v<T, op::Unlink>)
                unlink(o, out);
            else if constexpr (std::is_same_v<T, op::Rmdir>)
                rmdir(o, out);
            else if constexpr (std::is_same_v<T, op::Rename>)
                rename(o, out);
            else if constexpr (std::is_same_v<T, op::Symlink>)
                symlink(o, out);
            else if constexpr (std::is_same_v<T, op::Chmod>)
                chmod(o, out);
            else if constexpr (std::is_same_v<T, op::Chown>)
                chown(o, out);
            else if constexpr (std::is_same_v<T, op::Truncate>)
                truncate(o, out);
            else if constexpr (std::is_same_v<T, op::Utimens>)
                utimens(o, out);
            else if constexpr (std::is_same_v<T, op::Link>)
                link(o, out);
            else if constexpr (std::is_same_v<T, op::Mknod>)
                mknod(o, out);
            else if constexpr (std::is_same_v<T, op::Xattr>)
                xattr(o, out);
            else if constexpr (std::is_same_v<T, op::Lookup>)
                lookup(o, out);
            else if constexpr (std::is_same_v<T, op::Connect>)
                connect(o, out);
            else if constexpr (std::is_same_v<T, op::Bind>)
                bind(o, out);
            else if constexpr (std::is_same_v<T, op::Listen>)
                listen(o, out);
            else
                out.error = ENOSYS;  // no operation: decoding answered already
        },
        operation);
}

namespace {

bool in_proc(const PathBuffer& path) noexcept {
    const std::string_view p = path.view();
    return p == "/proc" || p.starts_with("/proc/");
}

// Whether an operation names a path in /proc (a held descriptor's form names none).
template <typename Op>
bool names_proc(const Op& o) noexcept {
    if constexpr (requires { o.path; }) return in_proc(o.path);
    if constexpr (requires { o.from; }) return in_proc(o.from) || in_proc(o.to);
    return true;  // nothing to tell by: the stricter identity
}

}  // namespace

Performer::Identity Performer::identity_for(const op::Operation& operation) const noexcept {
    // std::visit throws only for a valueless variant, which is never performed; the safe answer is the
    // worker's whole identity.
    try {
        return std::visit(
            [this](const auto& o) {
                using T = std::decay_t<decltype(o)>;
                constexpr bool metadata = std::is_same_v<T, op::Chmod> || std::is_same_v<T, op::Chown> ||
                                          std::is_same_v<T, op::Truncate> || std::is_same_v<T, op::Utimens> ||
                                          std::is_same_v<T, op::Link> || std::is_same_v<T, op::Mknod> ||
                                          std::is_same_v<T, op::Xattr>;
                // Sockets take the worker's identity where they need it themselves (socket_ops.cpp); a
                // held descriptor's fstat asks nothing.
                constexpr bool files = std::is_same_v<T, op::Open> || std::is_same_v<T, op::Stat> ||
                                       std::is_same_v<T, op::Statx> || std::is_same_v<T, op::Access> ||
                                       std::is_same_v<T, op::Readlink> || std::is_same_v<T, op::Mkdir> ||
                                       std::is_same_v<T, op::Unlink> || std::is_same_v<T, op::Rmdir> ||
                                       std::is_same_v<T, op::Rename> || std::is_same_v<T, op::Symlink> ||
                                       std::is_same_v<T, op::Lookup>;
                if constexpr (metadata) {
                    // In transparent mode the thread holds the worker's file-system ids already, with no
                    // supplementary groups and of the capabilities only CAP_SYS_PTRACE: the kernel judges
                    // who may change a file's metadata by exactly these (capabilities(7): file-system
                    // ids), so no credential change is needed. CAP_SYS_PTRACE matters only in /proc,
                    // which keeps the effective ids (and a walk reaching it by a symlink drops it).
                    if (mode_ == Mode::transparent && owner_ && !names_proc(o)) return Identity::files;
                    return Identity::worker;
                }
                if constexpr (std::is_same_v<T, op::Access>) {
                    // Whether the worker may execute something is the kernel's answer for the worker.
                    if (o.mode & X_OK) return Identity::worker;
                }
                if constexpr (files) {
                    // Other processes' /proc entries: what the worker's user may see of them, never what
                    // the broker may (another user's environ, /proc/kcore), so with no capability at all.
                    if constexpr (requires { o.path; })
                        if (in_proc(o.path)) return Identity::worker;
                    if (mode_ == Mode::transparent && owner_) return Identity::files;
                }
                return Identity::broker;
            },
            operation);
    } catch (...) {
        return Identity::worker;
    }
}

AuditRecord Performer::socket_record(const Caller& caller, std::string_view profile, std::string_view op,
                                     std::string_view address, const SocketVerdict& verdict) noexcept {
    AuditRecord record{caller.pid, caller.uid, profile, op, address, {}, 0};
    record.allowed = verdict.allowed;
    record.rule = verdict.deny;
    record.address_rule = verdict.rule;
    record.error = verdict.error;
    return record;
}

void Performer::decided(std::string_view op, std::string_view path, OpResult& result, Outcome& out) noexcept {
    out.error = result.verdict.error;
    out.fd = std::move(result.fd);
    out.audit.op = op;
    out.audit.path = path;
    out.audit.allowed = result.verdict.allowed;
    out.audit.rule = result.verdict.rule;
    out.audit.error = result.verdict.error;
    out.audited = true;
}

void Performer::decided_socket(std::string_view op, std::string_view address, Outcome& out) noexcept {
    const SocketVerdict& v = out.socket;
    // The audit line names the address reached (a connect to 0.0.0.0 reaches 127.0.0.1).
    const AuditRecord record = socket_record({out.audit.pid, out.audit.uid}, out.audit.profile, op,
                                             v.reached ? v.reached->view() : address, v);
    out.audit = record;
    out.error = v.error;
    out.audited = true;
}

void Performer::open(op::Open& o, Outcome& out) const noexcept {
    OpResult result;
    if (o.flags >> 32) {
        result.verdict = {false, nullptr, EACCES};  // openat2 flags no open(2) has
    } else {
        const std::uint64_t flags = without_idle_create(*profile_, o.path, o.flags);
        const bool creates = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
        const NoUmask no_umask(o.exact_mode && creates);
        result = files_.open(o.path.view(), static_cast<std::uint32_t>(flags), o.mode);
    }
    if (mode_ == Mode::transparent && (o.flags & O_PATH) && result.fd) readable_instead(result);
    if (result.verdict.error == 0 && !result.fd) result.verdict.error = EIO;
    out.maybe_device = result.maybe_device && result.fd;
    decided("open", o.path.view(), result, out);
    out.audit.flags = static_cast<std::uint32_t>(o.flags);
    out.carries = Outcome::Carries::fd;
}

// SECCOMP_IOCTL_NOTIF_ADDFD installs no O_PATH descriptor (it takes the file with fget(), which skips
// them). A caller in transparent mode gets the same file opened for reading instead, where the policy
// grants reading it and the worker's user may read it: what O_PATH descriptors serve for (fstat, *at()
// calls, fchdir, reopening through /proc) works the same. A regular file or directory it may only look
// up, a symlink itself and anything else are refused with EACCES.
void Performer::readable_instead(OpResult& result) const noexcept {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", result.fd.get());
    struct ::stat st {};
    PathBuffer real;
    const ssize_t n = ::readlink(link, real.data(), PathBuffer::kCapacity);
    const bool seen =
        n > 0 && static_cast<std::size_t>(n) < PathBuffer::kCapacity && ::fstat(result.fd.get(), &st) == 0;
    // A FIFO opened for reading without waiting is as inert as an O_PATH descriptor of it (mkfifo -m
    // sets the mode through one).
    bool readable = seen && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISFIFO(st.st_mode));
    if (readable) {
        real.truncate(static_cast<std::size_t>(n));
        readable = judge(*profile_, files_.self(), real.view(), policy::need_read).allowed;
    }
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0) |
                      (S_ISFIFO(st.st_mode) ? O_NONBLOCK : 0);
    unique_fd reopened(readable ? ::open(link, flags) : -1);
    if (S_ISFIFO(st.st_mode) && reopened) ::fcntl(reopened.get(), F_SETFL, 0);
    // A symlink itself cannot be opened but with O_PATH: "not supported", which is what glibc's
    // fchmodat(AT_SYMLINK_NOFOLLOW) answers for a symlink anyway, and what tar -p expects of it.
    if (!reopened && seen && S_ISLNK(st.st_mode))
        result.verdict = {true, result.verdict.rule, EOPNOTSUPP};
    else if (!reopened)
        result.verdict = {false, result.verdict.rule, EACCES};
    result.fd = std::move(reopened);
}

void Performer::stat(op::Stat& o, Outcome& out) const noexcept {
    OpResult result = files_.stat(o.path.view(), out.st, o.follow);
    decided("stat", o.path.view(), result, out);
    out.carries = Outcome::Carries::stat;
}

void Performer::statx(op::Statx& o, Outcome& out) const noexcept {
    OpResult result = files_.statx(o.path.view(), o.flags, o.mask, out.stx);
    decided("stat", o.path.view(), result, out);
    out.carries = Outcome::Carries::statx;
}

void Performer::stat_held(op::StatHeld& o, Outcome& out) noexcept {
    // The /proc link names the open file itself, even a socket or a deleted file.
    const int rc = o.statx ? ::statx(AT_FDCWD, o.link.c_str(), o.flags, o.mask, &out.stx)
                           : ::stat(o.link.c_str(), &out.st);
    out.error = rc == 0 ? 0 : (errno == ENOENT ? EBADF : errno);
    out.carries = o.statx ? Outcome::Carries::statx : Outcome::Carries::stat;
}

void Performer::access(op::Access& o, Outcome& out) const noexcept {
    OpResult result = files_.access(o.path.view(), o.mode, o.follow);
    decided("access", o.path.view(), result, out);
    out.audit.flags = o.mode;
}

void Performer::readlink(op::Readlink& o, Outcome& out) const noexcept {
    OpResult result = files_.readlink(o.path.view(), std::span(out.link, std::min(sizeof out.link, o.size)));
    out.value = result.value;
    decided("readlink", o.path.view(), result, out);
    out.carries = Outcome::Carries::link;
}

void Performer::mkdir(op::Mkdir& o, Outcome& out) const noexcept {
    const NoUmask no_umask(o.exact_mode);
    OpResult result = files_.mkdir(o.path.view(), o.mode);
    decided("mkdir", o.path.view(), result, out);
    out.audit.flags = o.mode;
}

void Performer::unlink(op::Unlink& o, Outcome& out) const noexcept {
    OpResult result = files_.unlink(o.path.view());
    decided("unlink", o.path.view(), result, out);
}

void Performer::rmdir(op::Rmdir& o, Outcome& out) const noexcept {
    OpResult result = files_.rmdir(o.path.view());
    decided("rmdir", o.path.view(), result, out);
}

void Performer::rename(op::Rename& o, Outcome& out) const noexcept {
    OpResult result = files_.rename(o.from.view(), o.to.view(), o.flags);
    decided("rename", o.from.view(), result, out);
    out.audit.path2 = o.to.view();
}

void Performer::symlink(op::Symlink& o, Outcome& out) const noexcept {
    OpResult result = files_.symlink(o.target.view(), o.path.view());
    decided("symlink", o.path.view(), result, out);
    out.audit.path2 = o.target.view();
}

// The AT_EMPTY_PATH forms act on the caller's own descriptor, as the f- forms the filter allows do:
// nothing to judge, and the kernel's answer for the worker's identity is the caller's.
void Performer::chmod(op::Chmod& o, Outcome& out) const noexcept {
    if (o.held) {
        // glibc's fchmodat knows no AT_EMPTY_PATH; the descriptor's /proc link reaches the same file.
        char link[32];
        std::snprintf(link, sizeof link, "/proc/self/fd/%d", o.held.get());
        out.error = ::chmod(link, o.mode & 07777) == 0 ? 0 : errno;
        return;
    }
    OpResult result = files_.chmod(o.path.view(), o.mode, o.follow);
    decided("chmod", o.path.view(), result, out);
    out.audit.flags = o.mode;
}

void Performer::chown(op::Chown& o, Outcome& out) const noexcept {
    if (o.held) {
        out.error = ::fchownat(o.held.get(), "", o.uid, o.gid, AT_EMPTY_PATH) == 0 ? 0 : errno;
        return;
    }
    OpResult result = files_.chown(o.path.view(), o.uid, o.gid, o.follow);
    decided("chown", o.path.view(), result, out);
}

void Performer::truncate(op::Truncate& o, Outcome& out) const noexcept {
    OpResult result = files_.truncate(o.path.view(), o.length);
    decided("truncate", o.path.view(), result, out);
}

void Performer::utimens(op::Utimens& o, Outcome& out) const noexcept {
    const struct ::timespec* times = o.now ? nullptr : o.times;
    if (o.held) {
        out.error = ::utimensat(o.held.get(), "", times, AT_EMPTY_PATH) == 0 ? 0 : errno;
        return;
    }
    OpResult result = files_.utimens(o.path.view(), times, o.follow);
    decided("utimens", o.path.view(), result, out);
}

void Performer::link(op::Link& o, Outcome& out) const noexcept {
    OpResult result = files_.link(o.from.view(), o.to.view(), o.follow);
    decided("link", o.to.view(), result, out);
    out.audit.path2 = o.from.view();
}

void Performer::mknod(op::Mknod& o, Outcome& out) const noexcept {
    const NoUmask no_umask(o.exact_mode);
    OpResult result = files_.mknod(o.path.view(), o.mode, o.dev);
    decided("mknod", o.path.view(), result, out);
    out.audit.flags = o.mode;
}

void Performer::xattr(op::Xattr& o, Outcome& out) const noexcept {
    using Kind = op::Xattr::Kind;
    const std::size_t size = std::min(o.size, op::Xattr::kMaxValue);
    OpResult result;
    if (o.kind == Kind::get || o.kind == Kind::list) {
        try {
            out.data.resize(size);
        } catch (const std::bad_alloc&) {
            out.error = ENOMEM;
            return;
        }
        result = o.kind == Kind::get ? files_.get_xattr(o.path.view(), o.name.c_str(), out.data, o.follow)
                                     : files_.list_xattr(o.path.view(), out.data, o.follow);
        out.value = result.value;
        // Asked with no buffer, the caller gets only the size.
        if (size > 0) out.carries = Outcome::Carries::data;
    } else if (o.kind == Kind::set) {
        result = files_.set_xattr(o.path.view(), o.name.c_str(), o.value, o.flags, o.follow);
    } else {
        result = files_.remove_xattr(o.path.view(), o.name.c_str(), o.follow);
    }
    constexpr const char* kOps[] = {"getxattr", "listxattr", "setxattr", "removexattr"};
    decided(kOps[static_cast<int>(o.kind)], o.path.view(), result, out);
}

void Performer::lookup(op::Lookup& o, Outcome& out) const noexcept {
    OpResult result = files_.lookup(o.path.view(), std::span(out.link, sizeof out.link));
    out.value = result.value;
    decided("lookup", o.path.view(), result, out);
    out.carries = Outcome::Carries::link;
}

void Performer::connect(op::Connect& o, Outcome& out) const noexcept {
    if (!o.socket) {
        // The broker makes the socket: handed over connected, or pending while a TCP connect finishes.
        SocketResult result = sockets_.connect(o.address);
        out.socket = result.verdict;
        out.fd = std::move(result.fd);
        out.pending = result.pending;
        out.carries = Outcome::Carries::fd;
        if (!out.pending) decided_socket("connect", o.address, out);
        return;
    }
    // The caller's own socket. A blocking one is connected non-blocking and waited for by the event loop
    // (up to the profile's connect_timeout): the file description is shared, so its flags go back after.
    const int sock = o.socket.get();
    const int flags = ::fcntl(sock, F_GETFL);
    const bool blocking = flags >= 0 && !(flags & O_NONBLOCK);
    if (blocking) ::fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    out.socket = sockets_.connect_socket(o.address, sock);
    // EALREADY: a connect interrupted by a signal and made again; a blocking connect waits on for it.
    if (blocking && (out.socket.error == EINPROGRESS || out.socket.error == EALREADY)) {
        // Watched through a descriptor of its own; the caller's stays with the operation, so that the
        // flags can still be put back if waiting cannot start.
        out.pending = true;
        out.restore_flags = flags;
        out.fd.reset(::fcntl(sock, F_DUPFD_CLOEXEC, 0));
        return;
    }
    if (blocking) ::fcntl(sock, F_SETFL, flags);
    decided_socket("connect", o.address, out);
}

void Performer::bind(op::Bind& o, Outcome& out) const noexcept {
    out.socket = sockets_.bind_socket(o.address, o.socket.get(), o.umask);
    decided_socket("bind", o.address, out);
}

void Performer::listen(op::Listen& o, Outcome& out) const noexcept {
    if (o.socket) {
        out.socket = sockets_.listen_socket(o.address, o.socket.get(), o.backlog);
    } else {
        SocketResult result = sockets_.listen(o.address, o.backlog);
        out.socket = result.verdict;
        out.fd = std::move(result.fd);
        out.carries = Outcome::Carries::fd;
    }
    decided_socket("listen", o.address, out);
}

}  // namespace fdbroker::broker
