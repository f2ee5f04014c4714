// Transparent mode's decode step, without a notification, a second process or root: a fake caller
// whose memory, cwd, descriptors and umask the test sets.
#include "broker/notify/decode_notification.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace fdbroker::broker {
namespace {

using op::PathBuffer;

class FakeCaller final : public CallerView {
  public:
    // Puts `bytes` into the caller's memory and returns their address.
    std::uint64_t put(const void* bytes, std::size_t size) {
        const std::uint64_t addr = next_;
        next_ += 0x1000;
        memory_[addr].assign(static_cast<const char*>(bytes), static_cast<const char*>(bytes) + size);
        return addr;
    }
    std::uint64_t put(const std::string& s) { return put(s.c_str(), s.size() + 1); }

    int read_string(std::uint64_t addr, PathBuffer& out) noexcept override {
        const auto it = memory_.find(addr);
        if (it == memory_.end()) return EFAULT;
        return out.assign(it->second.data()) ? 0 : ENAMETOOLONG;
    }
    int read_bytes(std::uint64_t addr, void* buf, std::size_t size) noexcept override {
        // Anywhere inside what put() stored.
        auto it = memory_.upper_bound(addr);
        if (it == memory_.begin()) return EFAULT;
        --it;
        const std::uint64_t offset = addr - it->first;
        if (offset + size > it->second.size()) return EFAULT;
        std::memcpy(buf, it->second.data() + offset, size);
        return 0;
    }
    int directory(int dirfd, PathBuffer& out) noexcept override {
        if (dirfd == AT_FDCWD) return out.assign(cwd) ? 0 : ENAMETOOLONG;
        const auto it = dirs.find(dirfd);
        if (it == dirs.end()) return EBADF;
        if (it->second.empty()) return ENOTDIR;
        return out.assign(it->second) ? 0 : ENAMETOOLONG;
    }
    int descriptor_link(int fd, PathBuffer& out) noexcept override {
        return out.assign("/proc/77/fd/" + std::to_string(fd)) ? 0 : ENAMETOOLONG;
    }
    mode_t umask() noexcept override { return mask; }
    int take_fd(int fd, unique_fd& out) noexcept override {
        const auto it = sockets.find(fd);
        if (it == sockets.end()) return EBADF;
        out.reset(::fcntl(it->second.get(), F_DUPFD_CLOEXEC, 0));
        return 0;
    }

    std::string cwd = "/work";
    std::map<int, std::string> dirs;  // "" for a descriptor that is not a directory
    std::map<int, unique_fd> sockets;
    mode_t mask = 022;

  private:
    std::map<std::uint64_t, std::vector<char>> memory_;
    std::uint64_t next_ = 0x10000;
};

SystemCall call(const char* name, std::initializer_list<std::uint64_t> args) {
    SystemCall c;
    c.nr = seccomp_syscall_resolve_name(name);
    std::size_t i = 0;
    for (const std::uint64_t a : args)
        c.args[i++] = a;
    return c;
}

constexpr auto kCwd = static_cast<std::uint64_t>(static_cast<std::int64_t>(AT_FDCWD));

Decoded decode(const SystemCall& c, FakeCaller& caller) {
    Decoded d;
    decode_notification(c, caller, d);
    return d;
}

// The operation `d` decoded to, which must be a T.
template <class T>
const T& operation(const Decoded& d) {
    EXPECT_EQ(d.error, 0) << std::strerror(d.error);
    EXPECT_TRUE(std::holds_alternative<T>(d.operation));
    static const T empty{};
    return std::holds_alternative<T>(d.operation) ? std::get<T>(d.operation) : empty;
}
// The same, taken out of a temporary.
template <class T>
T operation(Decoded&& d) {
    static_cast<void>(operation<T>(static_cast<const Decoded&>(d)));  // the checks
    T* o = std::get_if<T>(&d.operation);
    return o != nullptr ? std::move(*o) : T{};
}

TEST(DecodeNotification, RelativePathsMayLeadBeyondPathMax) {
    // The kernel limits what the caller passes, not the directory it starts from plus that.
    FakeCaller caller;
    caller.cwd = "/" + std::string(4000, 'c');
    caller.dirs[5] = "/" + std::string(4094, 'd');
    const std::string rel = std::string(250, 'r') + "/" + std::string(3844, 's');  // 4095 bytes
    const auto& a = operation<op::Open>(decode(call("openat", {kCwd, caller.put(rel), O_RDONLY, 0}), caller));
    EXPECT_EQ(a.path.view(), caller.cwd + "/" + rel);
    const auto r =
        operation<op::Rename>(decode(call("renameat", {kCwd, caller.put(rel), 5, caller.put(rel)}), caller));
    EXPECT_EQ(r.from.view(), caller.cwd + "/" + rel);
    EXPECT_EQ(r.to.view(), caller.dirs[5] + "/" + rel);
}

TEST(DecodeNotification, RelativePathsStartAtTheCallersCwdOrDirfd) {
    FakeCaller caller;
    caller.dirs[5] = "/srv/d";
    const auto& a =
        operation<op::Open>(decode(call("openat", {kCwd, caller.put("x/../y"), O_RDONLY, 0}), caller));
    EXPECT_EQ(a.path.view(), "/work/y");
    const auto& b = operation<op::Open>(decode(call("openat", {5, caller.put("./f"), O_RDONLY, 0}), caller));
    EXPECT_EQ(b.path.view(), "/srv/d/f");
    const auto& c =
        operation<op::Open>(decode(call("open", {caller.put("/etc//passwd"), O_RDONLY, 0}), caller));
    EXPECT_EQ(c.path.view(), "/etc/passwd");
    const auto& d =
        operation<op::Open>(decode(call("openat", {99, caller.put("/abs"), O_RDONLY, 0}), caller));
    EXPECT_EQ(d.path.view(), "/abs") << "an absolute path ignores dirfd, even a bad one";
}

TEST(DecodeNotification, PathErrorsAreTheKernels) {
    FakeCaller caller;
    caller.dirs[6] = "";  // a socket
    EXPECT_EQ(decode(call("openat", {kCwd, caller.put(""), O_RDONLY, 0}), caller).error, ENOENT);
    EXPECT_EQ(decode(call("openat", {kCwd, 0xdead, O_RDONLY, 0}), caller).error, EFAULT);
    EXPECT_EQ(decode(call("openat", {6, caller.put("f"), O_RDONLY, 0}), caller).error, ENOTDIR);
    EXPECT_EQ(decode(call("openat", {9, caller.put("f"), O_RDONLY, 0}), caller).error, EBADF);
    const Decoded d = decode(call("open", {caller.put(""), O_RDONLY, 0}), caller);
    EXPECT_TRUE(std::holds_alternative<op::None>(d.operation)) << "an error performs nothing";
}

TEST(DecodeNotification, OpenFlagsModeAndUmask) {
    FakeCaller caller;
    caller.mask = 027;
    const auto& o = operation<op::Open>(
        decode(call("openat", {kCwd, caller.put("n"), O_WRONLY | O_CREAT | O_CLOEXEC, 0100666}), caller));
    EXPECT_EQ(o.flags, static_cast<std::uint64_t>(O_WRONLY | O_CREAT | O_CLOEXEC));
    EXPECT_EQ(o.mode, 0640u) << "file type bits dropped, umask applied";
    EXPECT_TRUE(o.exact_mode);
    const Decoded plain = decode(call("open", {caller.put("n"), O_RDONLY, 0777}), caller);
    EXPECT_EQ(operation<op::Open>(plain).mode, 0777u) << "no umask without O_CREAT";
    EXPECT_FALSE(plain.cloexec);
    const auto& c = operation<op::Open>(decode(call("creat", {caller.put("n"), 0666}), caller));
    EXPECT_EQ(c.flags, static_cast<std::uint64_t>(O_CREAT | O_WRONLY | O_TRUNC));
    EXPECT_EQ(c.mode, 0640u);
    // open(2) and openat(2) take an int: the upper half of the register is not flags.
    const auto& hi =
        operation<op::Open>(decode(call("open", {caller.put("n"), 0xffffffff00000000ULL, 0}), caller));
    EXPECT_EQ(hi.flags, 0u);
}

TEST(DecodeNotification, Openat2ReadsItsHowStruct) {
    FakeCaller caller;
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_NO_XDEV;
    const std::uint64_t at = caller.put(&how, sizeof how);
    const Decoded d = decode(call("openat2", {kCwd, caller.put("f"), at, sizeof how}), caller);
    EXPECT_EQ(operation<op::Open>(d).path.view(), "/work/f");
    EXPECT_TRUE(d.cloexec);
    EXPECT_EQ(decode(call("openat2", {kCwd, caller.put("f"), at, sizeof how - 1}), caller).error, EINVAL);
    // Scoping that normalising cannot honour: the path as written and where it starts are kept, for the
    // walk before the open (path_form.hpp).
    how.resolve = RESOLVE_BENEATH;
    caller.dirs[5] = "/srv/d";
    const Decoded scoped =
        decode(call("openat2", {5, caller.put("a/../b"), caller.put(&how, sizeof how), sizeof how}), caller);
    EXPECT_EQ(scoped.error, 0);
    EXPECT_EQ(scoped.scope, static_cast<std::uint64_t>(RESOLVE_BENEATH));
    EXPECT_EQ(scoped.scope_root.view(), "/srv/d");
    EXPECT_EQ(scoped.trailing_slash[0].unresolved.view(), "a/../b");
    how.resolve = RESOLVE_CACHED;
    EXPECT_EQ(
        decode(call("openat2", {kCwd, caller.put("f"), caller.put(&how, sizeof how), sizeof how}), caller)
            .error,
        EAGAIN)
        << "a broker cannot promise never to block";
    // What openat2(2) itself refuses before any path is looked at.
    how.resolve = 0;
    how.flags = 1ULL << 40;
    EXPECT_EQ(
        decode(call("openat2", {kCwd, caller.put("f"), caller.put(&how, sizeof how), sizeof how}), caller)
            .error,
        EINVAL)
        << "unknown flags";
    how.flags = O_RDONLY;
    how.mode = 0600;
    EXPECT_EQ(
        decode(call("openat2", {kCwd, caller.put("f"), caller.put(&how, sizeof how), sizeof how}), caller)
            .error,
        EINVAL)
        << "a mode without O_CREAT";
    how.mode = 0;
    std::uint64_t bigger[4] = {O_RDONLY, 0, 0, 1};  // a larger struct whose tail is not zero
    EXPECT_EQ(
        decode(call("openat2", {kCwd, caller.put("f"), caller.put(bigger, sizeof bigger), sizeof bigger}),
               caller)
            .error,
        E2BIG);
    bigger[3] = 0;
    EXPECT_EQ(
        decode(call("openat2", {kCwd, caller.put("f"), caller.put(bigger, sizeof bigger), sizeof bigger}),
               caller)
            .error,
        0);
}

TEST(DecodeNotification, StatFormsAndTheirBuffers) {
    FakeCaller caller;
    const Decoded s = decode(call("stat", {caller.put("a"), 0x500}), caller);
    EXPECT_TRUE(operation<op::Stat>(s).follow);
    EXPECT_EQ(s.result_buffer, 0x500u);
    EXPECT_FALSE(operation<op::Stat>(decode(call("lstat", {caller.put("a"), 0x500}), caller)).follow);
    const auto& nf = operation<op::Stat>(
        decode(call("newfstatat", {kCwd, caller.put("a"), 0x600, AT_SYMLINK_NOFOLLOW}), caller));
    EXPECT_FALSE(nf.follow);
    EXPECT_EQ(nf.path.view(), "/work/a");
    const Decoded x =
        decode(call("statx", {kCwd, caller.put("a"), AT_SYMLINK_NOFOLLOW, STATX_SIZE, 0x700}), caller);
    EXPECT_EQ(operation<op::Statx>(x).flags, AT_SYMLINK_NOFOLLOW);
    EXPECT_EQ(operation<op::Statx>(x).mask, static_cast<unsigned>(STATX_SIZE));
    EXPECT_EQ(x.result_buffer, 0x700u);
    // fstat through AT_EMPTY_PATH: the descriptor's own link, no policy question. A null path too.
    const auto& held = operation<op::StatHeld>(
        decode(call("newfstatat", {4, caller.put(""), 0x600, AT_EMPTY_PATH}), caller));
    EXPECT_EQ(held.link.view(), "/proc/77/fd/4");
    EXPECT_FALSE(held.statx);
    const auto& null_path = operation<op::StatHeld>(
        decode(call("statx", {4, 0, AT_EMPTY_PATH, STATX_BASIC_STATS, 0x700}), caller));
    EXPECT_TRUE(null_path.statx);
    // AT_EMPTY_PATH on AT_FDCWD is the cwd itself, judged like any path.
    EXPECT_EQ(
        operation<op::Stat>(decode(call("newfstatat", {kCwd, caller.put(""), 0x600, AT_EMPTY_PATH}), caller))
            .path.view(),
        "/work");
    EXPECT_EQ(decode(call("stat", {caller.put(""), 0x500}), caller).error, ENOENT);
}

TEST(DecodeNotification, NamespaceCalls) {
    FakeCaller caller;
    const Decoded rl = decode(call("readlinkat", {kCwd, caller.put("l"), 0x800, 64}), caller);
    EXPECT_EQ(operation<op::Readlink>(rl).size, 64u);
    EXPECT_EQ(rl.result_buffer, 0x800u);
    EXPECT_EQ(decode(call("readlink", {caller.put("l"), 0x800, 0}), caller).error, EINVAL);
    const auto& m = operation<op::Mkdir>(decode(call("mkdir", {caller.put("d"), 01777}), caller));
    EXPECT_EQ(m.mode, 01755u);
    EXPECT_EQ(operation<op::Rmdir>(decode(call("unlinkat", {kCwd, caller.put("d"), AT_REMOVEDIR}), caller))
                  .path.view(),
              "/work/d");
    EXPECT_EQ(operation<op::Unlink>(decode(call("unlink", {caller.put("f")}), caller)).path.view(),
              "/work/f");
    EXPECT_EQ(decode(call("unlinkat", {kCwd, caller.put("d"), 0x8000}), caller).error, EINVAL);
    const auto& r = operation<op::Rename>(
        decode(call("renameat2", {kCwd, caller.put("a"), kCwd, caller.put("/b"), RENAME_NOREPLACE}), caller));
    EXPECT_EQ(r.from.view(), "/work/a");
    EXPECT_EQ(r.to.view(), "/b");
    EXPECT_EQ(r.flags, static_cast<unsigned>(RENAME_NOREPLACE));
    const auto& s =
        operation<op::Symlink>(decode(call("symlink", {caller.put("../t"), caller.put("l")}), caller));
    EXPECT_EQ(s.target.view(), "../t") << "a link's text stays as written";
    EXPECT_EQ(s.path.view(), "/work/l");
}

TEST(DecodeNotification, MetadataChangesKeepTheirArguments) {
    FakeCaller caller;
    caller.dirs[5] = "/srv/d";
    const auto m = operation<op::Chmod>(decode(call("fchmodat", {5, caller.put("f"), 04755}), caller));
    EXPECT_EQ(m.path.view(), "/srv/d/f");
    EXPECT_EQ(m.mode, 04755u);
    EXPECT_TRUE(m.follow);
    const auto m2 = operation<op::Chmod>(
        decode(call("fchmodat2", {kCwd, caller.put("l"), 0600, AT_SYMLINK_NOFOLLOW}), caller));
    EXPECT_FALSE(m2.follow);
    EXPECT_EQ(decode(call("fchmodat2", {kCwd, caller.put("l"), 0600, 0x4000}), caller).error, EINVAL);

    const auto o = operation<op::Chown>(decode(call("lchown", {caller.put("/a"), 7, ~0ULL}), caller));
    EXPECT_EQ(o.uid, 7u);
    EXPECT_EQ(o.gid, static_cast<gid_t>(-1)) << "-1 leaves the group as it is";
    EXPECT_FALSE(o.follow);
    const auto o2 = operation<op::Chown>(decode(call("fchownat", {5, caller.put("g"), 1, 2, 0}), caller));
    EXPECT_EQ(o2.path.view(), "/srv/d/g");
    EXPECT_TRUE(o2.follow);

    const auto t = operation<op::Truncate>(decode(call("truncate", {caller.put("t"), 4096}), caller));
    EXPECT_EQ(t.path.view(), "/work/t");
    EXPECT_EQ(t.length, 4096);

    const auto k =
        operation<op::Mknod>(decode(call("mknodat", {kCwd, caller.put("p"), S_IFIFO | 0666, 0}), caller));
    EXPECT_EQ(k.mode, static_cast<mode_t>(S_IFIFO | 0644))
        << "the type stays, the permissions lose the umask";
}

TEST(DecodeNotification, TimesInEveryFormBecomeNanoseconds) {
    FakeCaller caller;
    const struct ::timespec ts[2] = {{1, 2}, {3, UTIME_OMIT}};
    const auto a = operation<op::Utimens>(decode(
        call("utimensat", {kCwd, caller.put("f"), caller.put(ts, sizeof ts), AT_SYMLINK_NOFOLLOW}), caller));
    EXPECT_FALSE(a.now);
    EXPECT_FALSE(a.follow);
    EXPECT_EQ(a.times[0].tv_nsec, 2);
    EXPECT_EQ(a.times[1].tv_nsec, UTIME_OMIT);
    const struct ::timeval tv[2] = {{10, 5}, {20, 6}};
    const auto b =
        operation<op::Utimens>(decode(call("utimes", {caller.put("f"), caller.put(tv, sizeof tv)}), caller));
    EXPECT_EQ(b.times[0].tv_sec, 10);
    EXPECT_EQ(b.times[1].tv_nsec, 6000);
    const struct ::timeval bad[2] = {{10, 1'000'000}, {20, 0}};
    EXPECT_EQ(decode(call("utimes", {caller.put("f"), caller.put(bad, sizeof bad)}), caller).error, EINVAL);
    const std::int64_t seconds[2] = {100, 200};
    const auto c = operation<op::Utimens>(
        decode(call("utime", {caller.put("f"), caller.put(seconds, sizeof seconds)}), caller));
    EXPECT_EQ(c.times[1].tv_sec, 200);
    EXPECT_EQ(c.times[1].tv_nsec, 0);
    EXPECT_TRUE(operation<op::Utimens>(decode(call("utime", {caller.put("f"), 0}), caller)).now);
}

TEST(DecodeNotification, LinksAndExtendedAttributes) {
    FakeCaller caller;
    const auto l = operation<op::Link>(
        decode(call("linkat", {kCwd, caller.put("a"), kCwd, caller.put("/b"), AT_SYMLINK_FOLLOW}), caller));
    EXPECT_EQ(l.from.view(), "/work/a");
    EXPECT_EQ(l.to.view(), "/b");
    EXPECT_TRUE(l.follow);
    const auto e = operation<op::Link>(
        decode(call("linkat", {9, caller.put(""), kCwd, caller.put("n"), AT_EMPTY_PATH}), caller));
    EXPECT_EQ(e.from.view(), "/proc/77/fd/9") << "a held descriptor is linked through its /proc link";
    EXPECT_TRUE(e.follow);

    const auto g = decode(call("lgetxattr", {caller.put("f"), caller.put("user.x"), 0x5000, 64}), caller);
    const auto& x = operation<op::Xattr>(g);
    EXPECT_EQ(x.kind, op::Xattr::Kind::get);
    EXPECT_EQ(x.name, "user.x");
    EXPECT_EQ(x.size, 64u);
    EXPECT_FALSE(x.follow);
    EXPECT_EQ(g.result_buffer, 0x5000u);
    const char value[] = {'v', '\0', 'w'};
    const auto s =
        operation<op::Xattr>(decode(call("setxattr", {caller.put("f"), caller.put("user.y"),
                                                      caller.put(value, sizeof value), sizeof value, 1}),
                                    caller));
    EXPECT_EQ(s.kind, op::Xattr::Kind::set);
    EXPECT_EQ(s.value, std::vector<char>(value, value + sizeof value)) << "values are bytes, NULs included";
    EXPECT_EQ(s.flags, 1);
    EXPECT_EQ(decode(call("setxattr", {caller.put("f"), caller.put("user.y"), 0, 65537, 0}), caller).error,
              E2BIG);
    EXPECT_EQ(decode(call("getxattr", {caller.put("f"), caller.put(""), 0, 0}), caller).error, ERANGE);
}

TEST(DecodeNotification, ATrailingSlashIsNoted) {
    FakeCaller caller;
    const Decoded a = decode(call("mkdir", {caller.put("d/"), 0755}), caller);
    EXPECT_EQ(operation<op::Mkdir>(a).path.view(), "/work/d");
    EXPECT_TRUE(a.trailing_slash[0]);
    const Decoded b = decode(call("rename", {caller.put("a"), caller.put("b/")}), caller);
    EXPECT_FALSE(b.trailing_slash[0]);
    EXPECT_TRUE(b.trailing_slash[1]);
    EXPECT_FALSE(decode(call("stat", {caller.put("/"), 0x5000}), caller).trailing_slash[0])
        << "the root is no slash";
}

TEST(DecodeNotification, FormsTheFilterDidNotAllowAreRefused) {
    FakeCaller caller;
    for (const char* name : {"socket", "socketpair", "sendto", "sendmsg", "sendmmsg"})
        EXPECT_EQ(decode(call(name, {}), caller).error, EACCES) << name;
}

TEST(DecodeNotification, TheTableIsWhatTheFilterSends) {
    EXPECT_TRUE(is_brokered(seccomp_syscall_resolve_name("openat")));
    EXPECT_TRUE(is_brokered(seccomp_syscall_resolve_name("sendto")));
    EXPECT_FALSE(is_brokered(seccomp_syscall_resolve_name("read")));
    EXPECT_FALSE(is_brokered(-1));
    std::vector<std::string> names;
    for (const char* n : brokered_call_names())
        names.emplace_back(n);
    EXPECT_EQ(names.size(), 48u);
    for (const char* sent :
         {"open", "openat", "openat2", "statx", "renameat2", "symlinkat", "connect", "listen"})
        EXPECT_NE(std::find(names.begin(), names.end(), sent), names.end()) << sent;
    for (const char* partly : {"socket", "sendto", "utimensat"})
        EXPECT_EQ(std::find(names.begin(), names.end(), partly), names.end()) << partly;
}

TEST(DecodeNotification, SocketAddressesAsRuleText) {
    FakeCaller caller;
    caller.sockets[7] = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    caller.sockets[8] = unique_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    caller.sockets[9] = unique_fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(80);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const Decoded c = decode(call("connect", {7, caller.put(&in, sizeof in), sizeof in}), caller);
    EXPECT_EQ(operation<op::Connect>(c).address, "tcp:127.0.0.1:80");
    EXPECT_TRUE(operation<op::Connect>(c).socket);
    EXPECT_EQ(
        operation<op::Bind>(decode(call("bind", {7, caller.put(&in, sizeof in), sizeof in}), caller)).address,
        "tcp:127.0.0.1:80");
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strcpy(un.sun_path, "run/../s");
    EXPECT_EQ(
        operation<op::Connect>(decode(call("connect", {8, caller.put(&un, sizeof un), sizeof un}), caller))
            .address,
        "unix:/work/s");
    const socklen_t abstract_len = offsetof(sockaddr_un, sun_path) + 5;
    std::memcpy(un.sun_path, "\0name", 5);
    EXPECT_EQ(
        operation<op::Connect>(decode(call("connect", {8, caller.put(&un, sizeof un), abstract_len}), caller))
            .address,
        "unix:@name");
    EXPECT_EQ(decode(call("connect", {9, caller.put(&in, sizeof in), sizeof in}), caller).error, EACCES)
        << "a datagram socket";
    EXPECT_EQ(decode(call("connect", {8, caller.put(&in, sizeof in), sizeof in}), caller).error,
              EAFNOSUPPORT);
    EXPECT_EQ(decode(call("connect", {7, caller.put(&in, sizeof in), 4}), caller).error, EINVAL);
    EXPECT_EQ(decode(call("connect", {7, caller.put(&in, sizeof in), 4096}), caller).error, EINVAL);
    EXPECT_EQ(decode(call("connect", {42, caller.put(&in, sizeof in), sizeof in}), caller).error, EBADF);
    // listen(2) on an unbound socket would bind it to an address no rule granted.
    EXPECT_EQ(decode(call("listen", {7, 5}), caller).error, EACCES);
}

}  // namespace
}  // namespace fdbroker::broker
