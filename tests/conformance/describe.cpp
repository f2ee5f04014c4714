#include "conformance/describe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

namespace {

struct Printing {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string dir;
    std::string other;
};

Printing& printing() {
    static Printing p;
    return p;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
}

char type_letter(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFREG:
            return 'f';
        case S_IFDIR:
            return 'd';
        case S_IFLNK:
            return 'l';
        case S_IFIFO:
            return 'p';
        case S_IFSOCK:
            return 's';
        case S_IFCHR:
            return 'c';
        case S_IFBLK:
            return 'b';
        default:
            return '?';
    }
}

// The status flags a program can observe, in a fixed order (O_LARGEFILE, which the kernel adds on
// 64-bit systems, is left out).
std::string describe_flags(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    const int fdfl = ::fcntl(fd, F_GETFD);
    if (fl < 0 || fdfl < 0) return " flags?" + errno_name(errno);
    std::string out;
    if ((fl & O_PATH) != 0) {
        out = " path";
    } else {
        const int acc = fl & O_ACCMODE;
        out = acc == O_RDONLY ? " r" : acc == O_WRONLY ? " w" : acc == O_RDWR ? " rw" : " acc?";
    }
    if ((fl & O_APPEND) != 0) out += "+append";
    if ((fl & O_NONBLOCK) != 0) out += "+nonblock";
    if ((fdfl & FD_CLOEXEC) != 0) out += "+cloexec";
    return out;
}

}  // namespace

void set_self(uid_t uid, gid_t gid) {
    printing().uid = uid;
    printing().gid = gid;
}

void set_bases(const std::string& dir, const std::string& other) {
    printing().dir = dir;
    printing().other = other;
}

std::string owner_name(uid_t uid) {
    if (uid == printing().uid) return "self";
    if (uid == 0) return "root";
    return std::to_string(uid);
}

std::string group_name(gid_t gid) {
    if (gid == printing().gid) return "self";
    if (gid == 0) return "root";
    return std::to_string(gid);
}

// The other directory first: it may lie inside the run's directory's name space only by accident.
std::string normalise(std::string text) {
    replace_all(text, printing().other, "$OTHER");
    replace_all(text, printing().dir, "$DIR");
    return text;
}

std::string compact(const std::string& text) {
    std::string out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('/', start);
        if (end == std::string::npos) end = text.size();
        const std::string part = text.substr(start, end - start);
        const bool repeated = part.size() > 16 && part.find_first_not_of(part[0]) == std::string::npos;
        if (start > 0) out += '/';
        out += repeated ? std::string(1, part[0]) + "*" + std::to_string(part.size()) : part;
        start = end + 1;
    }
    return out;
}

std::string errno_name(int err) {
    if (err == 0) return "0";
    const char* name = ::strerrorname_np(err);
    return name != nullptr ? name : "E" + std::to_string(err);
}

std::string octal(unsigned value) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", value);
    return buf;
}

std::string describe_stat(const struct stat& st) {
    std::string out(1, type_letter(st.st_mode));
    out += " " + octal(st.st_mode & 07777) + " " + owner_name(st.st_uid) + ":" + group_name(st.st_gid) +
           " n=" + std::to_string(st.st_nlink);
    // Sizes of directories depend on the file system's history, not on the call; a symlink's is the
    // length of its text, which is printed where it matters and may name the run's directory.
    if (S_ISREG(st.st_mode)) out += " s=" + std::to_string(st.st_size);
    return out;
}

std::string describe_fd(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return "fstat?" + errno_name(errno);
    return describe_stat(st) + describe_flags(fd);
}

Result sys(long ret) {
    Result r;
    r.ret = ret;
    r.err = ret < 0 ? errno : 0;
    return r;
}

Result opened(long fd) {
    Result r = sys(fd);
    r.fd = true;
    if (fd >= 0) {
        const unique_fd held(static_cast<int>(fd));
        r.detail = describe_fd(held.get());
    }
    return r;
}

Result stat_result(long ret, const struct stat& st) {
    Result r = sys(ret);
    if (ret == 0) r.detail = describe_stat(st);
    return r;
}

Result with_fd(const std::string& path, int flags, const std::function<Result(int)>& call) {
    const unique_fd fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd) {
        Result r = sys(-1);
        r.detail = "(opening the descriptor failed)";
        return r;
    }
    return call(fd.get());
}

}  // namespace fdbroker::conformance
