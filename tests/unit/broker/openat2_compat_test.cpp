// The userspace walk that stands in for openat2 where it answers ENOSYS, checked against the real
// openat2 as the oracle: a tree of files, directories and symlinks (relative, absolute, climbing,
// looping, dangling, into /proc) opened with each resolve flag set and each kind of open, the walk
// must fail with the kernel's errno or open the very file the kernel opens.
#include "broker/ops/openat2_compat.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"

namespace fdbroker::broker {
namespace {

namespace fs = std::filesystem;

// What one open came to: the errno, or the file reached and how it is open.
struct Outcome {
    int error = 0;
    dev_t dev = 0;
    ino_t ino = 0;
    int status_flags = 0;
    std::string real;  // where it is, as /proc/self/fd names it

    bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    if (o.error != 0) return os << "errno " << o.error << " (" << std::strerror(o.error) << ")";
    return os << "dev " << o.dev << " ino " << o.ino << " flags " << std::hex << o.status_flags << std::dec
              << " at " << o.real;
}

// `remade`: the tree was made again between the two opens, so a file is known by where it is only.
Outcome outcome_of(int fd, bool anonymous, bool remade) {
    Outcome o;
    if (fd < 0) {
        o.error = errno;
        return o;
    }
    const unique_fd held(fd);
    struct ::stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    // The walk opens the last component with O_NOFOLLOW, which F_GETFL shows (as on the broker's careful
    // path, which does the same); what the file is and how it is open otherwise must be the same.
    o.status_flags = ::fcntl(fd, F_GETFL) & ~O_NOFOLLOW;
    // An O_TMPFILE file is a new one each time: only where it is tells.
    if (!anonymous && !remade) {
        o.dev = st.st_dev;
        o.ino = st.st_ino;
    }
    std::error_code ec;
    o.real = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
    if (anonymous) o.real = o.real.substr(0, o.real.rfind('/'));
    EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);
    return o;
}

// With RESOLVE_BENEATH or RESOLVE_IN_ROOT, openat2 answers EAGAIN when a rename or mount anywhere on
// the system (another test running beside this one) happened during a walk through "..": the caller
// is to try again, as the broker does (resolve.cpp). The walk being tested never answers it.
Outcome real_openat2(int dirfd, const std::string& path, const open_how& how, bool remade = false) {
    long fd = -1;
    for (int attempt = 0; attempt < 100; ++attempt) {
        fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN) break;
    }
    return outcome_of(static_cast<int>(fd), (how.flags & O_TMPFILE) == O_TMPFILE, remade);
}

Outcome walked(int dirfd, const std::string& path, const open_how& how, bool remade = false) {
    return outcome_of(openat2_walk(dirfd, path.c_str(), how), (how.flags & O_TMPFILE) == O_TMPFILE, remade);
}

// The tree, made again before every open that may create: a directory `t` (the walks' dirfd) inside
// a private one that a symlink climbing out of `t` reaches.
class Tree {
  public:
    Tree() : root_(dir_ / "t") {
        fs::create_directory(root_);
        fd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        build();
    }
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& root() const { return root_; }

    void rebuild() {
        for (const fs::path& d : {fs::path(dir_.path()), fs::path(root_)})
            for (const auto& e : fs::directory_iterator(d))
                if (e.path() != fs::path(root_)) fs::remove_all(e.path());
        build();
    }

  private:
    void link(const std::string& target, const std::string& name) const {
        fs::create_symlink(target, root_ + "/" + name);
    }
    void build() const {
        test::write_file(root_ + "/file", "file\n");
        fs::create_directories(root_ + "/dir/sub");
        test::write_file(root_ + "/dir/file", "dir/file\n");
        test::write_file(root_ + "/dir/sub/deep", "deep\n");
        test::write_file(dir_ / "outside", "outside\n");
        link("dir", "rel");
        link("dir/file", "relfile");
        link(root_ + "/dir", "abs");
        link("..", "up");
        link("../file", "dir/back");
        link("../../dir", "dir/sub/upup");
        link("loop2", "loop1");
        link("loop1", "loop2");
        link("self", "self");
        link("nowhere", "dangling");
        link("rel/sub", "chain");
        link("dir/", "slashed");
        link("file/", "fileslash");
        link("/proc/self/fd/" + std::to_string(fd_.get()), "tofd");
        link("/proc/self", "toproc");
        link("/proc/mounts", "mounts");
        // links/0 -> 1 -> ... -> 41 -> the file: from links/2, the 40 symlinks the kernel follows at most.
        fs::create_directory(root_ + "/links");
        for (int i = 0; i < 41; ++i)
            link(std::to_string(i + 1), "links/" + std::to_string(i));
        link("../file", "links/41");
    }

    test::TempDir dir_;
    std::string root_;
    unique_fd fd_;
};

std::vector<std::string> paths(const Tree& tree) {
    const std::string fd = std::to_string(tree.fd());
    return {"file",
            "file/",
            "file/x",
            "dir",
            "dir/",
            "dir//sub///deep",
            "dir/file",
            "dir/file/",
            "dir/./sub/../file",
            "dir/sub/../../file",
            ".",
            "..",
            "../outside",
            "dir/..",
            "dir/../..",
            "missing",
            "missing/",
            "missing/x",
            "dir/missing",
            "rel",
            "rel/",
            "rel/file",
            "relfile",
            "relfile/",
            "abs",
            "abs/file",
            "up",
            "up/outside",
            "up/t/file",
            "dir/back",
            "dir/sub/upup/file",
            "loop1",
            "loop1/x",
            "self",
            "dangling",
            "dangling/",
            "chain",
            "chain/deep",
            "slashed",
            "slashed/file",
            "fileslash",
            "tofd",
            "tofd/file",
            "toproc",
            "toproc/status",
            "mounts",
            "links/0",
            "links/1",
            "links/2",
            "links/40",
            std::string(300, 'n'),
            tree.root() + "/file",
            tree.root() + "/rel/file",
            tree.root() + "/up/outside",
            "/",
            "/proc/self/fd/" + fd,
            "/proc/self/fd/" + fd + "/file",
            "/proc/self/cwd",
            "/proc/self",
            "/proc/self/status",
            "/proc/mounts",
            "/proc/thread-self/comm",
            "/proc/self/ns/net",
            "/proc/self/exe"};
}

constexpr std::uint64_t kResolves[] = {RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, RESOLVE_NO_MAGICLINKS,
                                       RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
                                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};

struct Kind {
    std::uint64_t flags;
    std::uint64_t mode;
    bool creates;
};
constexpr Kind kKinds[] = {
    {O_PATH, 0, false},
    {O_PATH | O_NOFOLLOW, 0, false},
    {O_PATH | O_DIRECTORY, 0, false},
    {O_RDONLY, 0, false},
    {O_RDONLY | O_NOFOLLOW, 0, false},
    {O_RDONLY | O_DIRECTORY, 0, false},
    {O_RDONLY | O_NOCTTY | O_NONBLOCK, 0, false},
    {O_WRONLY, 0, false},
    {O_WRONLY | O_CREAT, 0640, true},
    {O_WRONLY | O_CREAT | O_EXCL, 0600, true},
    {O_WRONLY | O_CREAT | O_NOFOLLOW, 0600, true},
    {O_RDWR | O_TMPFILE, 0600, true},
};

// The oracle: openat2 itself, which this kernel (or a filter around the test) may not answer.
bool kernel_has_openat2() {
    const open_how how{O_PATH | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS};
    const unique_fd fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how)));
    return fd || errno != ENOSYS;
}

TEST(Openat2Walk, OpensWhatOpenat2OpensOrFailsAsItFails) {
    if (!kernel_has_openat2()) GTEST_SKIP() << "openat2 answers ENOSYS here: no oracle";
    Tree tree;
    int compared = 0;
    for (const std::string& path : paths(tree))
        for (const std::uint64_t resolve : kResolves)
            for (const Kind& kind : kKinds) {
                open_how how{};
                how.flags = kind.flags | O_CLOEXEC;
                how.mode = kind.mode;
                how.resolve = resolve;
                const Outcome expected = real_openat2(tree.fd(), path, how, kind.creates);
                if (kind.creates) tree.rebuild();  // the same tree again, nothing created in it
                const Outcome got = walked(tree.fd(), path, how, kind.creates);
                if (kind.creates) tree.rebuild();
                EXPECT_EQ(got, expected) << "path " << path.substr(0, 80) << " resolve " << resolve
                                         << " flags 0" << std::oct << kind.flags << std::dec;
                ++compared;
            }
    EXPECT_GT(compared, 1000);
}

TEST(Openat2Walk, RefusesWhatOpenat2RefusesBeforeLooking) {
    if (!kernel_has_openat2()) GTEST_SKIP() << "openat2 answers ENOSYS here: no oracle";
    Tree tree;
    open_how how{};
    how.resolve = RESOLVE_NO_MAGICLINKS;
    for (const open_how bad : {open_how{O_RDONLY, 0644, RESOLVE_NO_MAGICLINKS},
                               open_how{O_CREAT | O_WRONLY, 010000, RESOLVE_NO_MAGICLINKS},
                               open_how{O_PATH | O_RDWR, 0, RESOLVE_NO_MAGICLINKS},
                               open_how{O_RDONLY, 0, RESOLVE_NO_MAGICLINKS | (std::uint64_t{1} << 40)},
                               open_how{std::uint64_t{1} << 40, 0, RESOLVE_NO_MAGICLINKS}}) {
        EXPECT_EQ(walked(tree.fd(), "file", bad), real_openat2(tree.fd(), "file", bad));
        EXPECT_EQ(walked(tree.fd(), "file", bad).error, EINVAL);
    }
    EXPECT_EQ(walked(tree.fd(), "", how), real_openat2(tree.fd(), "", how));
    // What the walk cannot do it refuses rather than do otherwise: following magic links, or flags
    // beyond the three.
    EXPECT_EQ(walked(tree.fd(), "file", open_how{O_RDONLY, 0, 0}).error, EINVAL);
    EXPECT_EQ(walked(tree.fd(), "file", open_how{O_RDONLY, 0, RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS}).error,
              EINVAL);
}

// Runs `body` in a child, which exits 0 when it holds; the result of the child's assertions.
template <class Body>
void in_child(Body body) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(body() ? 0 : 1);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

// RESOLVE_NO_XDEV tells the two apart: openat2 takes it, the walk refuses it (EINVAL).
bool took_the_walk() {
    const open_how how{O_PATH | O_CLOEXEC, 0, RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS};
    const unique_fd fd(openat2_compat(AT_FDCWD, "/", how));
    return !fd && errno == EINVAL;
}

// A file is opened, and a magic link refused, with or without openat2.
bool opens_a_file_without_symlinks() {
    const open_how how{O_RDONLY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    const std::string proc = "/proc/" + std::to_string(::getpid());
    const unique_fd fd(openat2_compat(AT_FDCWD, (proc + "/status").c_str(), how));
    const unique_fd magic(openat2_compat(AT_FDCWD, (proc + "/cwd").c_str(), how));
    return fd && !magic && errno == ELOOP;
}

// The choice is made once per process, so each of these runs in a process of its own: this binary
// again, running the one test named, with FDBROKER_SIMULATE_ABSENT as given. That test ends its process
// with kRan when it held, so that a filter naming no test cannot pass for it.
constexpr int kRan = 42;

void in_fresh_process(const char* test, const char* absent) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::setenv("FDBROKER_SIMULATE_ABSENT", absent, 1);
        const std::string filter = std::string("--gtest_filter=Openat2CompatProcess.DISABLED_") + test;
        ::execl("/proc/self/exe", "unit_broker_test", "--gtest_also_run_disabled_tests", filter.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == kRan) << "status " << status;
}

// A path longer than PATH_MAX, which no single openat2 takes, is opened in steps with the same flags:
// the file the steps lead to, a symlink on the way refused as in one walk, and what steps cannot mean
// refused.
bool opens_paths_longer_than_path_max() {
    const test::TempDir dir;
    const std::string deep = test::make_deep_tree(dir.path(), 20, "deep\n");
    bool ok = deep.size() > std::size_t{PATH_MAX};
    const std::string file = deep + "/f";
    const open_how plain{O_RDONLY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    unique_fd fd(openat2_compat(AT_FDCWD, file.c_str(), plain));
    char content[16] = {};
    ok = ok && fd && ::read(fd.get(), content, sizeof content) == 5 && std::string(content) == "deep\n";
    // Relative to a directory, confined beneath it.
    const unique_fd base(::open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    const std::string rel = file.substr(dir.path().size() + 1);
    fd.reset(openat2_compat(base.get(), rel.c_str(),
                            open_how{O_RDONLY | O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS}));
    ok = ok && fd;
    // A symlink past the first step.
    const std::size_t cut = deep.find('/', std::size_t{PATH_MAX});
    const std::string linked = deep.substr(0, cut) + "/s";
    const unique_fd at(openat2_compat(AT_FDCWD, deep.substr(0, cut).c_str(), plain));
    ok = ok && at && ::symlinkat(".", at.get(), "s") == 0;
    const std::string through = linked + deep.substr(cut) + "/f";
    fd.reset(openat2_compat(AT_FDCWD, through.c_str(), plain));
    ok = ok && !fd && errno == ELOOP;
    fd.reset(
        openat2_compat(AT_FDCWD, through.c_str(), open_how{O_RDONLY | O_CLOEXEC, 0, RESOLVE_NO_MAGICLINKS}));
    ok = ok && fd;  // followed, one step after another
    fd.reset(openat2_compat(AT_FDCWD, file.c_str(), open_how{O_RDONLY | O_CLOEXEC, 0, RESOLVE_IN_ROOT}));
    ok = ok && !fd && errno == ENAMETOOLONG;
    const std::string one_name = "/" + std::string(PATH_MAX, 'x');
    fd.reset(openat2_compat(AT_FDCWD, one_name.c_str(), plain));
    return ok && !fd && errno == ENAMETOOLONG;
}

TEST(Openat2Compat, OpensPathsLongerThanPathMaxInSteps) {
    EXPECT_TRUE(opens_paths_longer_than_path_max());
}

TEST(Openat2Compat, WalksPathsLongerThanPathMaxInSteps) {
    in_child([] {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (ctx == nullptr || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) != 0 ||
            seccomp_load(ctx) != 0)
            return false;
        seccomp_release(ctx);
        return opens_paths_longer_than_path_max() && took_the_walk();
    });
}

TEST(Openat2CompatProcess, DISABLED_CallsOpenat2) {
    EXPECT_FALSE(took_the_walk());
    EXPECT_TRUE(opens_a_file_without_symlinks());
    if (!HasFailure()) std::_Exit(kRan);
}

TEST(Openat2CompatProcess, DISABLED_Walks) {
    EXPECT_TRUE(took_the_walk());
    EXPECT_TRUE(opens_a_file_without_symlinks());
    if (!HasFailure()) std::_Exit(kRan);
}

TEST(Openat2Compat, CallsOpenat2WhereItAnswers) {
    if (!kernel_has_openat2()) GTEST_SKIP() << "openat2 answers ENOSYS here";
    in_fresh_process("CallsOpenat2", "");
}

TEST(Openat2Compat, WalksWhereASeccompFilterAnswersOpenat2WithENOSYS) {
    // As systemd's RestrictSUIDSGID=yes does.
    in_child([] {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (ctx == nullptr || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) != 0 ||
            seccomp_load(ctx) != 0)
            return false;
        seccomp_release(ctx);
        return took_the_walk() && opens_a_file_without_symlinks() && took_the_walk();
    });
}

TEST(Openat2Compat, WalksWhereFdbrokerSimulateAbsentNamesOpenat2) {
    in_fresh_process("Walks", "landlock,openat2");
}

}  // namespace
}  // namespace fdbroker::broker
