// utimensat (by path, on a descriptor, with UTIME_NOW and UTIME_OMIT), utimes, utime, futimesat,
// futimens. Every case here starts with all times at kFixtureTime and prints them afterwards.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

constexpr timespec kAtime{1'234'567'890, 500'000'000};
constexpr timespec kMtime{1'111'111'111, 250'000'000};
constexpr timespec kNow{0, UTIME_NOW};
constexpr timespec kOmit{0, UTIME_OMIT};

struct Times {
    const char* name;
    bool null;
    timespec atime;
    timespec mtime;
};

constexpr Times kTimes[] = {
    {"null", true, {}, {}},
    {"now", false, kNow, kNow},
    {"omit", false, kOmit, kOmit},
    {"now-omit", false, kNow, kOmit},
    {"explicit", false, kAtime, kMtime},
    {"atime-only", false, kAtime, kOmit},
    {"mtime-now", false, kOmit, kNow},
};

std::vector<Target> time_targets() {
    return {
        {"mine", {file("f")}, "f"},
        {"mine-0444", {file("f", 0444)}, "f"},
        {"roots-0666", {owned(file("f", 0666), Owner::root)}, "f"},
        {"roots-0644", {owned(file("f", 0644), Owner::root)}, "f"},
        {"dir", {dir("d")}, "d"},
        {"lnk", {file("f"), symlink("lnk", "f")}, "lnk"},
    };
}

void add(Cases& out, std::string id, std::vector<Node> nodes, Call call) {
    out.push_back({std::move(id), std::move(nodes), std::move(call), true});
}

void add_utimensat_matrix(Cases& out) {
    for (const Target& t : time_targets()) {
        for (const Times& times : kTimes) {
            const std::string p = t.path;
            const Times tm = times;
            add(out, "utimensat." + t.name + "." + times.name, t.nodes, [p, tm](Env&) {
                const timespec ts[2] = {tm.atime, tm.mtime};
                return sys(::syscall(SYS_utimensat, AT_FDCWD, p.c_str(), tm.null ? nullptr : ts, 0));
            });
        }
    }
}

void add_utimensat_special(Cases& out) {
    const std::vector<Node> lnk{file("f"), symlink("lnk", "f")};
    auto at = [&out](const std::string& what, std::vector<Node> nodes, const std::string& path, int flags,
                     timespec a, timespec m) {
        add(out, "utimensat." + what, std::move(nodes), [path, flags, a, m](Env& e) {
            const timespec ts[2] = {a, m};
            return sys(::syscall(SYS_utimensat, e.dirfd(), path.c_str(), ts, flags));
        });
    };
    at("nofollow-lnk", lnk, "lnk", AT_SYMLINK_NOFOLLOW, kAtime, kMtime);
    at("nofollow-lnk-now", lnk, "lnk", AT_SYMLINK_NOFOLLOW, kNow, kNow);
    at("nofollow-file", {file("f")}, "f", AT_SYMLINK_NOFOLLOW, kAtime, kMtime);
    at("dangling", {symlink("lnk", "missing")}, "lnk", 0, kAtime, kMtime);
    at("missing", {}, "missing", 0, kAtime, kMtime);
    at("file-slash", {file("f")}, "f/", 0, kAtime, kMtime);
    at("bad-nsec", {file("f")}, "f", 0, {1, 1'000'000'000}, kMtime);
    at("negative-nsec", {file("f")}, "f", 0, kAtime, {1, -1});
    at("bad-flag", {file("f")}, "f", 0x1, kAtime, kMtime);
    at("in-dir0000", {dir("d", 0), file("d/f")}, "d/f", 0, kAtime, kMtime);
    at("empty-without-flag", {file("f")}, "", 0, kAtime, kMtime);
    add(out, "utimensat.empty-path", {file("f")}, [](Env& e) {
        return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
            const timespec ts[2] = {kAtime, kMtime};
            return sys(::syscall(SYS_utimensat, fd, "", ts, AT_EMPTY_PATH));
        });
    });
    for (const char* owner : {"mine", "roots-0644"}) {
        const bool mine = owner == std::string("mine");
        add(out, std::string("futimens.") + owner, {mine ? file("f") : owned(file("f"), Owner::root)},
            [](Env& e) {
                return with_fd(e.abs("f"), O_RDONLY, [](int fd) {
                    const timespec ts[2] = {kAtime, kMtime};
                    return sys(::syscall(SYS_utimensat, fd, nullptr, ts, 0));
                });
            });
    }
}

// The older calls: microseconds (utimes, futimesat) and whole seconds (utime).
void add_old_calls(Cases& out) {
    const timeval tv[2] = {{kAtime.tv_sec, 500'000}, {kMtime.tv_sec, 250'000}};
    const utimbuf ub{kAtime.tv_sec, kMtime.tv_sec};
    for (const Target& t : time_targets()) {
        const std::string p = t.path;
        add(out, "utimes." + t.name + ".explicit", t.nodes,
            [p, tv](Env& e) { return sys(::syscall(SYS_utimes, e.abs(p).c_str(), tv)); });
        add(out, "utimes." + t.name + ".null", t.nodes,
            [p](Env& e) { return sys(::syscall(SYS_utimes, e.abs(p).c_str(), nullptr)); });
        add(out, "utime." + t.name + ".explicit", t.nodes,
            [p, ub](Env& e) { return sys(::syscall(SYS_utime, e.abs(p).c_str(), &ub)); });
        add(out, "utime." + t.name + ".null", t.nodes,
            [p](Env& e) { return sys(::syscall(SYS_utime, e.abs(p).c_str(), nullptr)); });
    }
    add(out, "futimesat.cwd", {file("f")},
        [tv](Env&) { return sys(::syscall(SYS_futimesat, AT_FDCWD, "f", tv)); });
    add(out, "futimesat.dirfd-null", {file("f")},
        [](Env& e) { return sys(::syscall(SYS_futimesat, e.dirfd(), "f", nullptr)); });
    add(out, "utimes.bad-usec", {file("f")}, [](Env&) {
        const timeval bad[2] = {{1, 1'000'000}, {1, 0}};
        return sys(::syscall(SYS_utimes, "f", bad));
    });
}

}  // namespace

void add_time_cases(Cases& out) {
    add_utimensat_matrix(out);
    add_utimensat_special(out);
    add_old_calls(out);
}

}  // namespace fdbroker::conformance
