// The fixtures most calls are tried on, and the builders the table is written with.
#include <fcntl.h>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

std::string Env::abs(std::string_view rel) const {
    return dir_ + "/" + std::string(rel);
}

int Env::dirfd() {
    if (!tried_) {
        tried_ = true;
        dirfd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    return dirfd_.get();
}

Node file(std::string path, mode_t mode, std::string data) {
    return Node{std::move(path), Kind::file, mode, std::move(data), Owner::self, {}};
}

Node dir(std::string path, mode_t mode) {
    return Node{std::move(path), Kind::dir, mode, {}, Owner::self, {}};
}

Node symlink(std::string path, std::string target) {
    return Node{std::move(path), Kind::symlink, 0777, std::move(target), Owner::self, {}};
}

Node fifo(std::string path, mode_t mode) {
    return Node{std::move(path), Kind::fifo, mode, {}, Owner::self, {}};
}

Node owned(Node node, Owner owner) {
    node.owner = owner;
    return node;
}

std::vector<Target> common_targets() {
    return {
        {"file", {file("file")}, "file"},
        {"dir", {dir("dir")}, "dir"},
        {"lnk", {file("file"), symlink("lnk", "file")}, "lnk"},
        {"lnkabs", {file("file"), symlink("lnk", "{case}/file")}, "lnk"},
        {"lnkdir", {dir("dir"), symlink("lnk", "dir")}, "lnk"},
        {"dangling", {symlink("lnk", "missing")}, "lnk"},
        {"loop", {symlink("loop", "loop2"), symlink("loop2", "loop")}, "loop"},
        {"missing", {}, "missing"},
        {"noparent", {}, "nodir/missing"},
        {"notdir", {file("file")}, "file/x"},
        {"fifo", {fifo("fifo")}, "fifo"},
        {"file-slash", {file("file")}, "file/"},
        {"dir-slash", {dir("dir")}, "dir/"},
        {"lnk-slash", {file("file"), symlink("lnk", "file")}, "lnk/"},
        {"lnkdir-slash", {dir("dir"), symlink("lnk", "dir")}, "lnk/"},
        {"dangling-slash", {symlink("lnk", "missing")}, "lnk/"},
        {"locked", {dir("locked", 0), file("locked/f")}, "locked/f"},
        // ".." after a symlink is the parent of where the link leads, not of the link's name.
        {"lnk-dotdot", {dir("a/b"), file("a/f"), file("f", 0600, "top\n"), symlink("lb", "a/b")}, "lb/../f"},
    };
}

std::vector<Target> mode_targets() {
    std::vector<Target> out;
    for (const mode_t mode : {00, 0400, 0600, 0644, 0755}) {
        const std::string name = "mode" + octal(mode);
        out.push_back({name, {file("f", mode)}, "f"});
    }
    for (const mode_t mode : {0600, 0644, 0666}) {
        const std::string name = "root" + octal(mode);
        out.push_back({name, {owned(file("f", mode), Owner::root)}, "f"});
    }
    return out;
}

std::vector<Target> dir_targets() {
    std::vector<Target> out;
    auto add = [&out](const std::string& name, const Node& d) {
        out.push_back({name, {d}, "d"});
        out.push_back({name + "-file", {d, file("d/f")}, "d/f"});
        out.push_back({name + "-new", {d}, "d/new"});
    };
    for (const mode_t mode : {00, 0500, 0700})
        add("dir" + octal(mode), dir("d", mode));
    add("sticky", owned(dir("d", 01777), Owner::root));
    add("rootdir", owned(dir("d", 0755), Owner::root));
    return out;
}

}  // namespace fdbroker::conformance
