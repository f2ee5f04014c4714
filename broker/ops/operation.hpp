// What a worker asks the broker to do, as one typed value whichever way it asked: a library-mode
// request frame (decode_wire.hpp) and a transparent-mode system call (decode_notification.hpp) decode
// into the same Operation, which perform.hpp decides and performs. Paths are absolute and lexically
// normal as the caller meant them; where they really land is judged when they are performed.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "policy/path_buffer.hpp"

namespace fdbroker::broker::op {

using policy::PathBuffer;

// Every operation holding a PathBuffer has a constructor of its own, written out ("= default" would not
// do): std::variant::emplace value-initializes, and value-initializing a struct without one zeroes it
// first, 8 KiB per PathBuffer at every request, where the buffer's own constructor writes one byte.

// No operation: what a request that failed to decode, or one the broker does not perform (exec),
// holds. It is the variant's first alternative, the one a default-constructed Operation holds, and
// its constructor is written out too: with std::monostate there, g++ zeroed the whole variant (16 KiB,
// the size of Rename's two paths) for every request's `op::Operation operation;`.
struct None {
    None() noexcept {}  // written out: see above
};

struct Open {
    Open() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    std::uint64_t flags = 0;  // openat2 passes 64 bits; any above the low 32 is refused
    mode_t mode = 0;
    // The mode already carries the caller's umask (transparent mode), so none may be applied again.
    bool exact_mode = false;
};
struct Stat {
    Stat() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    bool follow = true;  // false: lstat
};
struct Statx {
    Statx() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    int flags = 0;  // AT_SYMLINK_NOFOLLOW and the AT_STATX_* sync bits
    unsigned mask = 0;
};
// fstat on a descriptor the caller holds, through its /proc/PID/fd link: no policy question, since
// fstat(2) on it is allowed to the caller anyway.
struct StatHeld {
    StatHeld() noexcept {}  // written out: see the note above Open
    PathBuffer link;        // /proc/TID/fd/N
    bool statx = false;
    int flags = 0;  // statx: the AT_STATX_* sync bits
    unsigned mask = 0;
};
struct Access {
    Access() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    std::uint32_t mode = 0;
    bool follow = true;  // false: AT_SYMLINK_NOFOLLOW
};
struct Readlink {
    Readlink() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    std::size_t size = 0;  // the caller's buffer
};
struct Mkdir {
    Mkdir() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    mode_t mode = 0;
    bool exact_mode = false;  // as for Open
};
struct Unlink {
    Unlink() noexcept {}  // written out: see the note above Open
    PathBuffer path;
};
struct Rmdir {
    Rmdir() noexcept {}  // written out: see the note above Open
    PathBuffer path;
};
struct Rename {
    Rename() noexcept {}  // written out: see the note above Open
    PathBuffer from;
    PathBuffer to;
    unsigned flags = 0;  // renameat2's
};
struct Symlink {
    Symlink() noexcept {}  // written out: see the note above Open
    PathBuffer target;     // the link's text, as written
    PathBuffer path;       // where the link is made
};
// Metadata changes, performed with the worker's identity so the kernel applies its own rules on who
// may change what (perform.hpp). `follow`: false for the l- forms and AT_SYMLINK_NOFOLLOW. `held`: the
// AT_EMPTY_PATH form, on a descriptor the caller holds (duplicated into the broker): no policy
// question, as for the f- forms the filter allows.
struct Chmod {
    Chmod() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    mode_t mode = 0;
    bool follow = true;
    unique_fd held;
};
struct Chown {
    Chown() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    uid_t uid = static_cast<uid_t>(-1);  // -1: unchanged
    gid_t gid = static_cast<gid_t>(-1);
    bool follow = true;
    unique_fd held;
};
struct Truncate {
    Truncate() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    off_t length = 0;
};
struct Utimens {
    Utimens() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    bool now = true;  // no times given: both set to the current time
    struct ::timespec times[2]{};
    bool follow = true;
    unique_fd held;
};
// A hard link at `to` for the object at `from` (itself when it is a symlink, unless `follow`).
struct Link {
    Link() noexcept {}  // written out: see the note above Open
    PathBuffer from;
    PathBuffer to;
    bool follow = false;  // AT_SYMLINK_FOLLOW
};
// A FIFO, socket, regular file or device node (mode carries the type).
struct Mknod {
    Mknod() noexcept {}  // written out: see the note above Open
    PathBuffer path;
    mode_t mode = 0;
    dev_t dev = 0;
    bool exact_mode = false;  // as for Open
};
// Extended attributes by path: reading and listing need read, setting and removing need write.
struct Xattr {
    Xattr() noexcept {}  // written out: see the note above Open
    enum class Kind : std::uint8_t { get, list, set, remove };
    static constexpr std::size_t kMaxValue = 65536;  // XATTR_SIZE_MAX and XATTR_LIST_MAX
    Kind kind = Kind::get;
    PathBuffer path;
    std::string name;         // get, set, remove
    std::vector<char> value;  // set: the value
    std::size_t size = 0;     // get, list: the caller's buffer (0: only the size is asked)
    int flags = 0;            // set: XATTR_CREATE or XATTR_REPLACE
    bool follow = true;
};
// Where a directory path really leads, its symlinks followed and each hop judged (need: any): what a
// ".." after a name needs, since the kernel goes to the parent of the name's target. No system call of
// its own; the real path comes back as a readlink's text.
struct Lookup {
    Lookup() noexcept {}  // written out: see the note above Open
    PathBuffer path;
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
    mode_t umask = 022;  // the caller's, which the kernel applies to a unix socket file's mode
};
struct Listen {
    std::string address;
    int backlog = 0;
    unique_fd socket;
};

using Operation =
    std::variant<None, Open, Stat, Statx, StatHeld, Access, Readlink, Mkdir, Unlink, Rmdir, Rename, Symlink,
                 Chmod, Chown, Truncate, Utimens, Link, Mknod, Xattr, Lookup, Connect, Bind, Listen>;

// g++ zeroes the whole of a default-initialized variant whose first alternative is trivially
// constructible (std::monostate): see None.
static_assert(!std::is_trivially_default_constructible_v<std::variant_alternative_t<0, Operation>>);

}  // namespace fdbroker::broker::op
