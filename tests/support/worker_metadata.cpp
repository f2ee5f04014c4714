// Metadata commands of the test worker, each one call through libfdbroker's C drop-ins:
//
//   chmod PATH MODE · lchmod PATH MODE                 MODE in octal
//   chown PATH UID GID · lchown PATH UID GID           -1 leaves it as it is
//   truncate PATH LENGTH
//   utimens PATH ATIME MTIME [nofollow]                seconds, "now" or "omit" (both "now": no times)
//   link FROM TO
//   mkfifo PATH MODE · mknod PATH TYPE MODE [MAJOR MINOR]   TYPE: fifo, sock, reg, chr
//   getxattr PATH NAME [SIZE] · lgetxattr ...          "ok LENGTH VALUE" (VALUE only if SIZE > 0)
//   listxattr PATH · llistxattr PATH                   "ok NAME,NAME..."
//   setxattr PATH NAME VALUE [create|replace] · lsetxattr ...
//   removexattr PATH NAME · lremovexattr PATH NAME
//   setxattr-sized PATH NAME N                         a value of N bytes of a known pattern
//   getxattr-sized PATH NAME                           "ok N intact" if the value has that pattern
#include "support/worker_metadata.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "fdbroker/fdbroker.h"
#include "support/worker_output.hpp"

namespace fdbroker::test {
namespace {

using Args = std::vector<std::string>;

mode_t octal(const std::string& text) {
    return static_cast<mode_t>(std::strtoul(text.c_str(), nullptr, 8));
}

long number(const std::string& text) {
    return std::strtol(text.c_str(), nullptr, 10);
}

// One time of utimens: seconds, or UTIME_NOW / UTIME_OMIT by name.
struct timespec time_arg(const std::string& text) {
    if (text == "now") return {0, UTIME_NOW};
    if (text == "omit") return {0, UTIME_OMIT};
    return {static_cast<time_t>(number(text)), 0};
}

void utimens(const Args& a) {
    const struct timespec times[2] = {time_arg(arg(a, 2)), time_arg(arg(a, 3))};
    const bool now = arg(a, 2) == "now" && arg(a, 3) == "now";
    const int flags = arg(a, 4) == "nofollow" ? AT_SYMLINK_NOFOLLOW : 0;
    const std::string path = arg(a, 1);
    report(fdbroker_utimens(path.c_str(), now ? nullptr : times, flags));
}

void mknod(const Args& a) {
    const std::string& type = arg(a, 2);
    const mode_t kind = type == "fifo"   ? S_IFIFO
                        : type == "sock" ? S_IFSOCK
                        : type == "chr"  ? S_IFCHR
                                         : S_IFREG;
    const dev_t dev =
        ::makedev(static_cast<unsigned>(number(arg(a, 4))), static_cast<unsigned>(number(arg(a, 5))));
    const std::string path = arg(a, 1);
    report(fdbroker_mknod(path.c_str(), kind | octal(arg(a, 3)), dev));
}

void getxattr(const Args& a, bool follow) {
    const std::size_t size = arg(a, 3).empty() ? 256 : static_cast<std::size_t>(number(arg(a, 3)));
    std::vector<char> value(size);
    const std::string path = arg(a, 1);
    const std::string name = arg(a, 2);
    const ssize_t n = follow ? fdbroker_getxattr(path.c_str(), name.c_str(), value.data(), size)
                             : fdbroker_lgetxattr(path.c_str(), name.c_str(), value.data(), size);
    if (n < 0) return report(-1);
    const std::string text =
        size == 0 ? std::string() : " " + std::string(value.data(), static_cast<std::size_t>(n));
    report(0, std::to_string(n) + text);
}

void listxattr(const Args& a, bool follow) {
    std::vector<char> list(65536);
    const std::string path = arg(a, 1);
    const ssize_t n = follow ? fdbroker_listxattr(path.c_str(), list.data(), list.size())
                             : fdbroker_llistxattr(path.c_str(), list.data(), list.size());
    if (n < 0) return report(-1);
    std::string names(list.data(), static_cast<std::size_t>(n));
    if (!names.empty()) names.pop_back();  // the last name's NUL
    for (char& c : names)
        if (c == '\0') c = ',';
    report(0, names);
}

void setxattr(const Args& a, bool follow) {
    const std::string path = arg(a, 1);
    const std::string name = arg(a, 2);
    const std::string value = arg(a, 3);
    const int flags = arg(a, 4) == "create" ? XATTR_CREATE : arg(a, 4) == "replace" ? XATTR_REPLACE : 0;
    report(follow ? fdbroker_setxattr(path.c_str(), name.c_str(), value.data(), value.size(), flags)
                  : fdbroker_lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), flags));
}

char pattern(std::size_t i) {
    return static_cast<char>('a' + i % 26);
}

void setxattr_sized(const Args& a) {
    std::vector<char> value(static_cast<std::size_t>(number(arg(a, 3))));
    for (std::size_t i = 0; i < value.size(); ++i)
        value[i] = pattern(i);
    const std::string path = arg(a, 1);
    const std::string name = arg(a, 2);
    report(fdbroker_setxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0));
}

void getxattr_sized(const Args& a) {
    std::vector<char> value(65536);
    const std::string path = arg(a, 1);
    const std::string name = arg(a, 2);
    const ssize_t n = fdbroker_getxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (n < 0) return report(-1);
    bool intact = true;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
        intact = intact && value[i] == pattern(i);
    report(0, std::to_string(n) + (intact ? " intact" : " corrupt"));
}

// The xattr commands; false if the command is not one of them.
bool run_xattr_command(const Args& a) {
    const std::string& cmd = a[0];
    const bool follow = !cmd.starts_with("l");
    if (cmd == "getxattr" || cmd == "lgetxattr") {
        getxattr(a, follow);
    } else if (cmd == "listxattr" || cmd == "llistxattr") {
        listxattr(a, follow);
    } else if (cmd == "setxattr" || cmd == "lsetxattr") {
        setxattr(a, follow);
    } else if (cmd == "removexattr" || cmd == "lremovexattr") {
        const std::string path = arg(a, 1);
        const std::string name = arg(a, 2);
        report(follow ? fdbroker_removexattr(path.c_str(), name.c_str())
                      : fdbroker_lremovexattr(path.c_str(), name.c_str()));
    } else if (cmd == "setxattr-sized") {
        setxattr_sized(a);
    } else if (cmd == "getxattr-sized") {
        getxattr_sized(a);
    } else {
        return false;
    }
    return true;
}

}  // namespace

bool run_metadata_command(const Args& a) {
    const std::string& cmd = a[0];
    const std::string file = arg(a, 1);
    const char* path = file.c_str();
    if (cmd == "chmod") {
        report(fdbroker_chmod(path, octal(arg(a, 2))));
    } else if (cmd == "lchmod") {
        report(fdbroker_lchmod(path, octal(arg(a, 2))));
    } else if (cmd == "chown" || cmd == "lchown") {
        const auto uid = static_cast<uid_t>(number(arg(a, 2)));
        const auto gid = static_cast<gid_t>(number(arg(a, 3)));
        report(cmd == "chown" ? fdbroker_chown(path, uid, gid) : fdbroker_lchown(path, uid, gid));
    } else if (cmd == "truncate") {
        report(fdbroker_truncate(path, static_cast<off_t>(number(arg(a, 2)))));
    } else if (cmd == "utimens") {
        utimens(a);
    } else if (cmd == "link") {
        const std::string to = arg(a, 2);
        report(fdbroker_link(path, to.c_str()));
    } else if (cmd == "mkfifo") {
        report(fdbroker_mkfifo(path, octal(arg(a, 2))));
    } else if (cmd == "mknod") {
        mknod(a);
    } else {
        return run_xattr_command(a);
    }
    return true;
}

}  // namespace fdbroker::test
