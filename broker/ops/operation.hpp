// What a worker asks the broker to do, as one typed value whichever way it asked: a library-mode
// request frame (decode_wire.hpp) and a transparent-mode system call (decode_notification.hpp) decode
// into the same Operation, which perform.hpp decides and performs. Paths are absolute and lexically
// normal as the caller meant them; where they really land is judged when they are performed.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <variant>

#include "fdbroker/unique_fd.hpp"
#include "policy/path_buffer.hpp"

namespace fdbroker::broker::op {

using policy::PathBuffer;

struct Open {
    PathBuffer path;
    std::uint64_t flags = 0;  // openat2 passes 64 bits; any above the low 32 is refused
    mode_t mode = 0;
    // The mode already carries the caller's umask (transparent mode), so none may be applied again.
    bool exact_mode = false;
};
struct Stat {
    PathBuffer path;
    bool follow = true;  // false: lstat
};
struct Statx {
    PathBuffer path;
    int flags = 0;  // AT_SYMLINK_NOFOLLOW and the AT_STATX_* sync bits
    unsigned mask = 0;
};
// fstat on a descriptor the caller holds, through its /proc/PID/fd link: no policy question, since
// fstat(2) on it is allowed to the caller anyway.
struct StatHeld {
    PathBuffer link;  // /proc/TID/fd/N
    bool statx = false;
    int flags = 0;  // statx: the AT_STATX_* sync bits
    unsigned mask = 0;
};
struct Access {
    PathBuffer path;
    std::uint32_t mode = 0;
};
struct Readlink {
    PathBuffer path;
    std::size_t size = 0;  // the caller's buffer
};
struct Mkdir {
    PathBuffer path;
    mode_t mode = 0;
    bool exact_mode = false;  // as for Open
};
struct Unlink {
    PathBuffer path;
};
struct Rmdir {
    PathBuffer path;
};
struct Rename {
    PathBuffer from;
    PathBuffer to;
    unsigned flags = 0;  // renameat2's
};
struct Symlink {
    PathBuffer target;  // the link's text, as written
    PathBuffer path;    // where the link is made
};
// Sockets: the address is written like a rule's ("tcp:127.0.0.1:80", "unix:/run/x", "unix:@name").
// In library mode the broker makes the socket; in transparent mode `socket` is the caller's own,
// duplicated into the broker, and the call acts on it.
struct Connect {
    std::string address;
    unique_fd socket;
};
struct Bind {
    std::string address;
    unique_fd socket;
};
struct Listen {
    std::string address;
    int backlog = 0;
    unique_fd socket;
};

using Operation = std::variant<std::monostate, Open, Stat, Statx, StatHeld, Access, Readlink, Mkdir, Unlink,
                               Rmdir, Rename, Symlink, Connect, Bind, Listen>;

}  // namespace fdbroker::broker::op
