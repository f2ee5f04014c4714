#include "conformance/fixture.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "conformance/describe.hpp"

namespace fdbroker::conformance {

namespace {

struct Ids {
    uid_t uid;
    gid_t gid;
};

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

void give(int at, const std::string& name, Owner owner, Ids self) {
    const uid_t uid = owner == Owner::root ? 0 : self.uid;
    const gid_t gid = owner == Owner::self ? self.gid : 0;
    if (::fchownat(at, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) fail("chown " + name);
}

// The directory that holds `path` (below `root`), and the last component of `path`. Missing
// directories on the way are made (0755, owned by self) when `self` is given. Walking one component
// at a time keeps paths of any length within reach.
unique_fd parent_of(int root, const std::string& path, std::string& leaf, const Ids* self) {
    unique_fd at(::fcntl(root, F_DUPFD_CLOEXEC, 0));
    std::size_t start = 0;
    for (std::size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', start)) {
        const std::string part = path.substr(start, slash - start);
        start = slash + 1;
        if (self != nullptr && ::mkdirat(at.get(), part.c_str(), 0755) == 0)
            give(at.get(), part, Owner::self, *self);
        unique_fd next(::openat(at.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) fail("open " + path.substr(0, slash));
        at = std::move(next);
    }
    leaf = path.substr(start);
    return at;
}

void write_content(int at, const Node& node, const std::string& leaf) {
    const unique_fd fd(::openat(at, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) fail("create " + node.path);
    if (::write(fd.get(), node.data.data(), node.data.size()) != static_cast<ssize_t>(node.data.size()))
        fail("write " + node.path);
}

void set_xattrs(int at, const Node& node, const std::string& leaf) {
    if (node.xattrs.empty()) return;
    const unique_fd fd(::openat(at, leaf.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) fail("open for xattrs " + node.path);
    for (const auto& [name, value] : node.xattrs)
        if (::fsetxattr(fd.get(), name.c_str(), value.data(), value.size(), 0) != 0)
            fail("setxattr " + node.path + " " + name);
}

// A symlink to a directory of the case's own on the other file system; dangling without one.
void make_other(int at, const std::string& leaf, const std::string& other_case, Ids self) {
    std::string target = "/nonexistent-second-file-system";
    if (!other_case.empty()) {
        if (::mkdir(other_case.c_str(), 0755) != 0 && errno != EEXIST) fail("mkdir " + other_case);
        if (::chown(other_case.c_str(), self.uid, self.gid) != 0) fail("chown " + other_case);
        target = other_case;
    }
    if (::symlinkat(target.c_str(), at, leaf.c_str()) != 0) fail("symlink " + leaf);
}

void make_node(int case_fd, const Node& node, const std::string& case_dir, const std::string& other_case,
               Ids self) {
    std::string leaf;
    const unique_fd at = parent_of(case_fd, node.path, leaf, &self);
    int rc = 0;
    switch (node.kind) {
        case Kind::file:
            write_content(at.get(), node, leaf);
            break;
        case Kind::dir:
            rc = ::mkdirat(at.get(), leaf.c_str(), 0700);
            break;
        case Kind::symlink: {
            std::string target = node.data;
            if (const auto p = target.find("{case}"); p != std::string::npos) target.replace(p, 6, case_dir);
            rc = ::symlinkat(target.c_str(), at.get(), leaf.c_str());
            break;
        }
        case Kind::fifo:
            rc = ::mknodat(at.get(), leaf.c_str(), S_IFIFO | 0600, 0);
            break;
        case Kind::socket:
            rc = ::mknodat(at.get(), leaf.c_str(), S_IFSOCK | 0600, 0);
            break;
        case Kind::hardlink:  // shares its node's owner and mode
            if (::linkat(case_fd, node.data.c_str(), at.get(), leaf.c_str(), 0) != 0)
                fail("link " + node.path);
            return;
        case Kind::other_fs:
            return make_other(at.get(), leaf, other_case, self);
    }
    if (rc != 0) fail("make " + node.path);
    give(at.get(), leaf, node.owner, self);
    set_xattrs(at.get(), node, leaf);
}

// Modes last, deepest first (a directory made 0 still had its children made), and times after
// everything else, since making a child changes its directory's times.
void finish(int base, int case_fd, const Case& c) {
    for (auto node = c.nodes.rbegin(); node != c.nodes.rend(); ++node) {
        if (node->kind == Kind::symlink || node->kind == Kind::other_fs || node->kind == Kind::hardlink)
            continue;
        std::string leaf;
        const unique_fd at = parent_of(case_fd, node->path, leaf, nullptr);
        if (::fchmodat(at.get(), leaf.c_str(), node->mode, 0) != 0) fail("chmod " + node->path);
    }
    if (!c.times) return;
    const timespec times[2] = {{kFixtureTime, 0}, {kFixtureTime, 0}};
    for (auto node = c.nodes.rbegin(); node != c.nodes.rend(); ++node) {
        std::string leaf;
        const unique_fd at = parent_of(case_fd, node->path, leaf, nullptr);
        if (::utimensat(at.get(), leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) fail("times " + node->path);
    }
    if (::utimensat(base, c.id.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) fail("times " + c.id);
}

void make_fixture(int base, const Case& c, const std::string& dir, const std::string& other, Ids self) {
    if (::mkdirat(base, c.id.c_str(), 0755) != 0) fail("mkdir " + c.id);
    give(base, c.id, Owner::self, self);
    const unique_fd case_fd(::openat(base, c.id.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!case_fd) fail("open " + c.id);
    const std::string case_dir = dir + "/" + c.id;
    const std::string other_case = other.empty() ? "" : other + "/" + c.id;
    for (const Node& node : c.nodes)
        make_node(case_fd.get(), node, case_dir, other_case, self);
    finish(base, case_fd.get(), c);
}

// ---- state ----

std::string format_time(const timespec& t) {
    // Anything long after the fixture's time was set by the run to "now", which differs from run to run.
    if (t.tv_sec > kFixtureTime + 400'000'000L) return "recent";
    std::string out = std::to_string(t.tv_sec);
    if (t.tv_nsec != 0) out += "." + std::to_string(t.tv_nsec);
    return out;
}

std::string printable(const std::string& value) {
    std::string out;
    for (const char ch : value) {
        if (ch >= 0x20 && ch < 0x7f && ch != ';') {
            out += ch;
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(ch) & 0xffU);
            out += hex;
        }
    }
    return out;
}

// Every extended attribute of `name` in `dir` (not followed), sorted, as name=value. The entry is
// reached through its /proc/self/fd link, which lands on the entry itself (a symlink included), so that
// entries deeper than PATH_MAX below the root are described too.
std::string describe_xattrs(int dir, const std::string& name) {
    const unique_fd entry(::openat(dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!entry) return {};
    const std::string path = "/proc/self/fd/" + std::to_string(entry.get());
    std::string names(65536, '\0');
    const ssize_t n = ::listxattr(path.c_str(), names.data(), names.size());
    if (n <= 0) return {};
    std::vector<std::string> list;
    for (std::size_t at = 0; at < static_cast<std::size_t>(n); at += list.back().size() + 1)
        list.emplace_back(names.c_str() + at);
    std::sort(list.begin(), list.end());
    std::string out = " x=";
    for (const std::string& attr : list) {
        std::string value(65536, '\0');
        const ssize_t v = ::getxattr(path.c_str(), attr.c_str(), value.data(), value.size());
        value.resize(v < 0 ? 0 : static_cast<std::size_t>(v));
        out += (out.size() > 3 ? "," : "") + attr + "=" + printable(value);
    }
    return out;
}

struct Listing {
    std::string label;  // printed before each entry's relative name ("" in DIR)
    bool times;
    std::vector<std::string> entries;
};

void describe_entry(int at, const std::string& name, const std::string& rel, Listing& l) {
    const std::string shown = (l.label.empty() ? "" : l.label + "/") + compact(rel);
    struct stat st {};
    if (::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        l.entries.push_back(shown + "=?" + errno_name(errno));
        return;
    }
    std::string text = shown + "=" + describe_stat(st);
    if (S_ISLNK(st.st_mode)) {
        std::string target(PATH_MAX, '\0');
        const ssize_t n = ::readlinkat(at, name.c_str(), target.data(), target.size());
        target.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
        text += " ->" + compact(normalise(target));
    }
    text += describe_xattrs(at, name);
    if (l.times) {
        text += " m=" + format_time(st.st_mtim);
        if (!S_ISDIR(st.st_mode)) text += " a=" + format_time(st.st_atim);
    }
    l.entries.push_back(text);
}

// The names in a directory, sorted (the order readdir gives is the file system's).
std::vector<std::string> sorted_names(int dirfd) {
    std::vector<std::string> names;
    unique_fd listed(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR* d = listed ? ::fdopendir(listed.get()) : nullptr;
    if (d == nullptr) return names;
    [[maybe_unused]] const int owned_by_dir = listed.release();  // closedir closes it
    while (const dirent* e = ::readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
            names.emplace_back(e->d_name);
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

// Every entry below `root`, depth first, each directory's entries in name order. Directories are
// entered by descriptor, never through a symlink, so any depth of path stays within reach.
void list_tree(int root, Listing& l) {
    struct Pending {
        unique_fd dir;
        std::string prefix;
    };
    std::vector<Pending> stack;
    stack.push_back({unique_fd(::fcntl(root, F_DUPFD_CLOEXEC, 0)), ""});
    while (!stack.empty()) {
        Pending p = std::move(stack.back());
        stack.pop_back();
        std::vector<Pending> subdirs;
        for (const std::string& name : sorted_names(p.dir.get())) {
            std::string rel = p.prefix;
            if (!rel.empty()) rel += '/';
            rel += name;
            describe_entry(p.dir.get(), name, rel, l);
            unique_fd sub(
                ::openat(p.dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (sub) subdirs.push_back({std::move(sub), rel});
        }
        // Reversed onto the stack, so that they are taken in name order.
        for (auto s = subdirs.rbegin(); s != subdirs.rend(); ++s)
            stack.push_back(std::move(*s));
    }
}

// `label` is "." for DIR/<id> itself, or the name printed for OTHER/<id>.
std::string case_state(const Case& c, const std::string& root, const std::string& label) {
    const std::string base = root + "/" + c.id;
    Listing l{label == "." ? "" : label, c.times, {}};
    const unique_fd fd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return label + "=?" + errno_name(errno);
    struct stat st {};
    ::fstat(fd.get(), &st);
    std::string self = label + "=" + describe_stat(st);
    if (c.times) self += " m=" + format_time(st.st_mtim);
    l.entries.push_back(self);
    list_tree(fd.get(), l);
    std::string out;
    for (const std::string& e : l.entries)
        out += (out.empty() ? "" : "; ") + e;
    return out;
}

}  // namespace

int make_fixtures(const Cases& cases, const std::string& dir, const std::string& other) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) fail("stat " + dir);
    const Ids self{st.st_uid, st.st_gid};
    const unique_fd base(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!base) fail("open " + dir);
    int failed = 0;
    for (const Case& c : cases) {
        try {
            make_fixture(base.get(), c, dir, other, self);
        } catch (const std::exception& e) {
            std::cerr << "conformance: fixture of " << c.id << ": " << e.what() << "\n";
            ++failed;
        }
    }
    return failed;
}

void print_state(const Cases& cases, const std::string& dir, const std::string& other, std::ostream& out) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) fail("stat " + dir);
    set_self(st.st_uid, st.st_gid);
    set_bases(dir, other);
    for (const Case& c : cases) {
        std::string line = c.id + " | " + case_state(c, dir, ".");
        if (!other.empty()) {
            struct stat ost {};
            if (::stat((other + "/" + c.id).c_str(), &ost) == 0)
                line += "; " + case_state(c, other, "$OTHER");
        }
        out << line << "\n";
    }
}

}  // namespace fdbroker::conformance
