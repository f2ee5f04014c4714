#include "programs/snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>

#include "programs/runs.hpp"
#include "support/harness.hpp"

namespace fdbroker::test::programs {

namespace {

namespace fs = std::filesystem;

// FNV-1a: enough to tell two contents apart in a test, and needs no library.
std::string digest(const std::string& data) {
    std::uint64_t h = 1469598103934665603ULL;
    for (const char ch : data) {
        h ^= static_cast<unsigned char>(ch);
        h *= 1099511628211ULL;
    }
    std::array<char, 17> hex{};
    std::snprintf(hex.data(), hex.size(), "%016llx", static_cast<unsigned long long>(h));
    return hex.data();
}

std::string type_of(mode_t mode) {
    if (S_ISREG(mode)) return "file";
    if (S_ISDIR(mode)) return "dir";
    if (S_ISLNK(mode)) return "link";
    if (S_ISFIFO(mode)) return "fifo";
    if (S_ISSOCK(mode)) return "socket";
    return "other";
}

std::string owner_of(const struct stat& st) {
    auto name = [](unsigned id) { return id == 65534 ? std::string("nobody") : std::to_string(id); };
    return name(st.st_uid) + ":" + name(st.st_gid);
}

bool listed(const std::vector<std::string>& list, const std::string& rel) {
    return std::find(list.begin(), list.end(), rel) != list.end();
}

std::string describe(const ProgramCase& c, const std::string& work, const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return "(vanished)";
    const std::string rel = path.lexically_relative(work).string();
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    std::string line = rel + " " + type_of(st.st_mode) + " " + mode + " " + owner_of(st);
    const bool content = !listed(c.volatile_content, rel);
    if (S_ISREG(st.st_mode) && content) {
        const std::string data = replace_all(read_file(path), work, kWorkDir);
        line += " links=" + std::to_string(st.st_nlink) + " size=" + std::to_string(data.size()) + " " +
                digest(data);
    }
    if (S_ISLNK(st.st_mode)) line += " -> " + replace_all(fs::read_symlink(path).string(), work, kWorkDir);
    if (listed(c.times, rel))
        line += " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    return line;
}

void set_times(const std::string& path) {
    const struct timespec t[2] = {{kSetupTime, 0}, {kSetupTime, 0}};
    ::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW);
}

}  // namespace

std::string prepare(const ProgramCase& c, const std::string& work) {
    ::mkdir(work.c_str(), 0755);
    if (!c.setup.empty()) {
        const std::string script =
            replace_all(replace_all(c.setup, kWorkDir, work), kExamplesDir, PROGRAMS_EXAMPLES_DIR);
        const Outcome o = run_command({"/usr/bin/env", "-i", "-C", work, "PATH=/usr/bin:/bin", "LANG=C",
                                       "TZ=UTC", "/bin/sh", "-euc", script});
        if (o.status != 0) return "set-up failed (" + std::to_string(o.status) + "): " + o.err;
    }
    give_to_nobody(work);
    std::error_code ec;
    for (const auto& entry : fs::recursive_directory_iterator(work, ec))
        set_times(entry.path());
    set_times(work);
    return {};
}

std::vector<std::string> snapshot(const ProgramCase& c, const std::string& work) {
    std::vector<std::string> lines;
    std::error_code ec;
    for (const auto& entry : fs::recursive_directory_iterator(work, ec))
        lines.push_back(describe(c, work, entry.path()));
    std::sort(lines.begin(), lines.end());
    return lines;
}

std::string only_in(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    const std::set<std::string> other(b.begin(), b.end());
    std::string out;
    for (const std::string& line : a)
        if (!other.contains(line)) out += (out.empty() ? "" : "; ") + line;
    return out;
}

}  // namespace fdbroker::test::programs
