// The conformance suite's vocabulary: a case is a fixture (nodes made before the call, natively, as
// root), one call made through raw system calls, and the outcome printed so that two runs compare
// textually.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fdbroker/unique_fd.hpp"

namespace fdbroker::conformance {

enum class Kind { file, dir, symlink, fifo, socket, hardlink, other_fs };

// "self" is the user who owns the run's directory (the worker's user); "mine_root_group" is that user
// with root's group, for the rules on groups the user is not in.
enum class Owner { self, root, mine_root_group };

// One thing in a case's directory. Parents that no node names are made 0755 and owned by self.
struct Node {
    std::string path;  // relative to the case's directory
    Kind kind = Kind::file;
    mode_t mode = 0644;
    // file: its content; symlink: its target, where "{case}" stands for the case's directory;
    // hardlink: the node it links to; other_fs: unused (the node is a symlink to a directory made
    // for the case on another file system, or a dangling one when there is none).
    std::string data;
    Owner owner = Owner::self;
    std::vector<std::pair<std::string, std::string>> xattrs;  // set with lsetxattr
};

// What a call returned. `detail` is what it reported besides (a stat buffer, a link's text, the
// descriptor's file and flags), already in printable form.
struct Result {
    long ret = 0;
    int err = 0;
    bool fd = false;  // a descriptor: printed as "fd", its file described in detail
    std::string detail;
    // A length of the text in detail (a link's): printed as "len", since the text can hold the run's
    // directory, whose name differs from run to run.
    bool length = false;
};

// What a case's call sees. The process's working directory is the case's directory.
class Env {
  public:
    Env(std::string case_dir, std::string other_dir)
        : dir_(std::move(case_dir)), other_(std::move(other_dir)) {}
    // The absolute name of `rel` in the case's directory.
    [[nodiscard]] std::string abs(std::string_view rel) const;
    [[nodiscard]] const std::string& dir() const { return dir_; }
    // The case's directory on another file system ("" when there is none).
    [[nodiscard]] const std::string& other() const { return other_; }
    // The case's directory, opened (O_RDONLY | O_DIRECTORY) on first use; -1 if that failed.
    int dirfd();

  private:
    std::string dir_;
    std::string other_;
    unique_fd dirfd_;
    bool tried_ = false;
};

using Call = std::function<Result(Env&)>;

struct Case {
    std::string id;  // <call>.<what>...; the part before the first '.' names the call
    std::vector<Node> nodes;
    Call call;
    bool times = false;  // fixture times are set to kFixtureTime, and atime/mtime are printed
};

using Cases = std::vector<Case>;

// The time every node of a `times` case starts with.
constexpr long kFixtureTime = 1'000'000'000;

// The table, in a fixed order (cases_*.cpp).
const Cases& all_cases();
void add_open_cases(Cases& out);
void add_stat_cases(Cases& out);
void add_access_cases(Cases& out);
void add_name_cases(Cases& out);
void add_rename_cases(Cases& out);
void add_link_cases(Cases& out);
void add_metadata_cases(Cases& out);
void add_time_cases(Cases& out);
void add_xattr_cases(Cases& out);
void add_path_cases(Cases& out);
void add_long_name_cases(Cases& out);
void add_proc_cases(Cases& out);

// Helpers for the calls (describe.cpp).
Result sys(long ret);    // a plain result: ret, and errno when it failed
Result opened(long fd);  // an open's result: the descriptor is described, then closed
Result stat_result(long ret, const struct stat& st);
std::string describe_stat(const struct stat& st);
std::string describe_fd(int fd);
std::string errno_name(int err);
std::string octal(unsigned value);
// Opens `path` for a call on the descriptor; the Result says why when that failed.
Result with_fd(const std::string& path, int flags, const std::function<Result(int)>& call);

// Building blocks for the table.
Node file(std::string path, mode_t mode = 0644, std::string data = "hello\n");
Node dir(std::string path, mode_t mode = 0755);
Node symlink(std::string path, std::string target);
Node fifo(std::string path, mode_t mode = 0644);
Node owned(Node node, Owner owner);

// A named fixture and the path a call is aimed at.
struct Target {
    std::string name;
    std::vector<Node> nodes;
    std::string path;
};

// The common targets: file, dir, symlinks (to a file, to a directory, dangling, looping), missing
// names, a FIFO, trailing slashes, and the paths through a non-directory or an unsearchable one.
std::vector<Target> common_targets();
// Regular files owned by self in each of the modes 0, 0400, 0600, 0644, 0755, and by root.
std::vector<Target> mode_targets();
// Directories in the modes 0, 0500, 0700, 0755 and root's sticky 01777.
std::vector<Target> dir_targets();

}  // namespace fdbroker::conformance
