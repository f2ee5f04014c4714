// Every case of the conformance runner, run natively as nobody and under `fdbroker run --transparent`
// as nobody, with a policy that grants read, write and create on the run's directory: both runs must
// agree on every call's result and on every file it leaves, but for the deliberate differences that
// differences.txt lists with their reasons.
//
// FDBROKER_CONFORMANCE_REPORT=FILE writes every case's comparison and the summary to FILE.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

// A case's two lines: the call's result, and the files afterwards.
struct Record {
    std::string result;
    std::string files;
};

using Records = std::map<std::string, Record>;

// "id | text" lines, in the runner's order.
std::vector<std::pair<std::string, std::string>> parse(const std::string& out) {
    std::vector<std::pair<std::string, std::string>> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        const std::size_t bar = line.find(" | ");
        if (bar != std::string::npos) lines.emplace_back(line.substr(0, bar), line.substr(bar + 3));
    }
    return lines;
}

// The entries of a files line that the other side lacks.
std::string only_in(const std::string& mine, const std::string& theirs) {
    auto split = [](const std::string& text) {
        std::set<std::string> parts;
        std::size_t start = 0;
        for (std::size_t end = text.find("; ");; end = text.find("; ", start)) {
            parts.insert(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
            if (end == std::string::npos) break;
            start = end + 2;
        }
        return parts;
    };
    const std::set<std::string> other = split(theirs);
    std::string out;
    for (const std::string& part : split(mine))
        if (!other.contains(part)) out += (out.empty() ? "" : "; ") + part;
    return out;
}

std::string describe_difference(const Record& native, const Record& brokered) {
    std::string out;
    if (native.result != brokered.result)
        out = "result: native `" + native.result + "` vs brokered `" + brokered.result + "`";
    if (native.files != brokered.files) {
        out += out.empty() ? "" : "; ";
        out += "files: native `" + only_in(native.files, brokered.files) + "` vs brokered `" +
               only_in(brokered.files, native.files) + "`";
    }
    return out;
}

// differences.txt: "<case id> <reason>" per line; '#' starts a comment.
std::map<std::string, std::string> deliberate_differences() {
    std::map<std::string, std::string> out;
    std::ifstream in(CONFORMANCE_DIFFERENCES);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const std::size_t space = line.find(' ');
        out[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
    }
    return out;
}

std::vector<std::string> case_ids() {
    const Outcome list = run_command({staged(CONFORMANCE_RUNNER), "list"});
    std::vector<std::string> ids;
    std::istringstream in(list.out);
    for (std::string id; std::getline(in, id);)
        ids.push_back(id);
    return ids;
}

class Conformance : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "the runs are made as nobody, and the broker needs root";
        const passwd* pw = ::getpwnam("nobody");
        if (pw == nullptr) GTEST_SKIP() << "no user nobody on this system";
        nobody_ = pw->pw_uid;
        nogroup_ = pw->pw_gid;
        make_other_file_system();
    }

    void TearDown() override {
        std::error_code ec;
        if (!other_.empty()) std::filesystem::remove_all(other_, ec);
    }

    // /dev/shm, when it is another file system than /tmp: where the EXDEV cases rename and link to.
    void make_other_file_system() {
        struct stat shm {
        }, tmp{};
        if (::stat("/dev/shm", &shm) != 0 || ::stat(dir.path().c_str(), &tmp) != 0 ||
            shm.st_dev == tmp.st_dev)
            return;
        char name[] = "/dev/shm/fdbroker-conformance-XXXXXX";
        if (::mkdtemp(name) == nullptr) return;
        ::chmod(name, 0755);
        other_ = name;
    }

    // DIR/NAME (and its twin on the other file system), owned by nobody, with every case's fixture.
    std::pair<std::string, std::string> prepare(const std::string& name) {
        const std::string run_dir = dir / name;
        const std::string other_dir = other_.empty() ? "" : other_ + "/" + name;
        for (const std::string& d : {run_dir, other_dir}) {
            if (d.empty()) continue;
            EXPECT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
            EXPECT_EQ(::chown(d.c_str(), nobody_, nogroup_), 0) << d;
        }
        const Outcome setup =
            run_command(with_other({staged(CONFORMANCE_RUNNER), "setup", run_dir}, other_dir));
        EXPECT_EQ(setup.status, 0) << setup.err;
        return {run_dir, other_dir};
    }

    static std::vector<std::string> with_other(std::vector<std::string> argv, const std::string& other) {
        if (!other.empty()) argv.insert(argv.end(), {"--other", other});
        return argv;
    }

    // The state of the files, read natively as root, joined to the run's results by case id.
    static Records join(const std::string& run_out, const std::string& run_dir,
                        const std::string& other_dir) {
        Records records;
        for (auto& [id, text] : parse(run_out))
            records[id].result = text;
        const Outcome state =
            run_command(with_other({staged(CONFORMANCE_RUNNER), "state", run_dir}, other_dir));
        EXPECT_EQ(state.status, 0) << state.err;
        for (auto& [id, text] : parse(state.out))
            records[id].files = text;
        return records;
    }

    // Both directories are made before either run, so that each run sees the same scratch directory.
    using Dirs = std::pair<std::string, std::string>;

    static Records native(const Dirs& dirs) {
        const auto& [run_dir, other_dir] = dirs;
        const Outcome run = run_command(
            with_other({staged(CONFORMANCE_RUNNER), "run", run_dir, "--user", "nobody"}, other_dir));
        EXPECT_EQ(run.status, 0) << run.err;
        return join(run.out, run_dir, other_dir);
    }

    Records brokered(const Dirs& dirs) {
        const auto& [run_dir, other_dir] = dirs;
        std::string granted = "\"" + run_dir + "\", \"" + run_dir + "/**\"";
        if (!other_dir.empty()) granted += ", \"" + other_dir + "\", \"" + other_dir + "/**\"";
        const std::string policy =
            "version = 1\n[profile.default]\nuser = \"nobody\"\ninclude = [\"runtime\"]\n"
            "read = [" +
            granted + "]\nwrite = [" + granted + "]\ncreate = [" + granted + "]\n";
        const Outcome run =
            run_broker(dir, policy, with_other({staged(CONFORMANCE_RUNNER), "run", run_dir}, other_dir),
                       {"--transparent"});
        EXPECT_EQ(run.status, 0) << run.err;
        broker_log_ = run.err;
        return join(run.out, run_dir, other_dir);
    }

    TempDir dir;
    std::string other_;
    std::string broker_log_;
    uid_t nobody_ = 0;
    gid_t nogroup_ = 0;
};

struct Tally {
    std::size_t agree = 0, deliberate = 0, differ = 0;
    std::ostringstream report;
};

void compare(const std::vector<std::string>& ids, const Records& native, const Records& brokered, Tally& t) {
    const std::map<std::string, std::string> expected = deliberate_differences();
    for (const std::string& id : ids) {
        const auto n = native.find(id), b = brokered.find(id);
        const Record missing{"(no line)", "(no line)"};
        const Record& nr = n == native.end() ? missing : n->second;
        const Record& br = b == brokered.end() ? missing : b->second;
        const bool same = nr.result == br.result && nr.files == br.files;
        const auto listed = expected.find(id);
        if (same && listed == expected.end()) {
            ++t.agree;
            t.report << "agree   " << id << "\n";
        } else if (same) {
            ++t.agree;
            ADD_FAILURE() << id << ": listed in differences.txt, but both runs agree";
        } else if (listed != expected.end()) {
            ++t.deliberate;
            t.report << "listed  " << id << ": " << describe_difference(nr, br) << "\n";
        } else {
            ++t.differ;
            const std::string d = describe_difference(nr, br);
            t.report << "DIFFER  " << id << ": " << d << "\n";
            ADD_FAILURE() << id << ": " << d;
        }
    }
}

void write_report(const Tally& t, const std::string& summary) {
    const char* path = std::getenv("FDBROKER_CONFORMANCE_REPORT");
    if (path == nullptr || *path == '\0') return;
    std::ofstream out(path);
    out << t.report.str() << summary << "\n";
}

TEST_F(Conformance, NativeAndBrokeredAgree) {
    const std::vector<std::string> ids = case_ids();
    ASSERT_FALSE(ids.empty());
    const Dirs native_dirs = prepare("native"), brokered_dirs = prepare("brokered");
    const Records n = native(native_dirs);
    const Records b = brokered(brokered_dirs);
    Tally t;
    compare(ids, n, b, t);
    const std::string summary = std::to_string(t.agree) + " of " + std::to_string(ids.size()) +
                                " cases agree (" + std::to_string(t.deliberate) + " differ deliberately, " +
                                std::to_string(t.differ) + " differ)";
    std::cout << summary << "\n";
    RecordProperty("summary", summary);
    write_report(t, summary);
    if (t.differ > 0 && !broker_log_.empty()) std::cout << "fdbroker's log:\n" << broker_log_;
}

// Two native runs in different directories: whatever differs between them is the suite's fault.
TEST_F(Conformance, NativeRunsAreDeterministic) {
    const std::vector<std::string> ids = case_ids();
    const Dirs first_dirs = prepare("first"), second_dirs = prepare("second");
    const Records first = native(first_dirs);
    const Records second = native(second_dirs);
    for (const std::string& id : ids) {
        const auto a = first.find(id), b = second.find(id);
        ASSERT_TRUE(a != first.end() && b != second.end()) << id << " missing from a native run";
        if (a->second.result != b->second.result || a->second.files != b->second.files)
            ADD_FAILURE() << id << ": " << describe_difference(a->second, b->second);
    }
}

TEST(ConformanceTable, EnoughDistinctCasesAndKnownDeliberateDifferences) {
    const std::vector<std::string> ids = case_ids();
    EXPECT_GE(ids.size(), 500U);
    const std::set<std::string> unique(ids.begin(), ids.end());
    EXPECT_EQ(unique.size(), ids.size());
    for (const auto& [id, reason] : deliberate_differences()) {
        EXPECT_TRUE(unique.contains(id)) << "differences.txt names an unknown case: " << id;
        EXPECT_FALSE(reason.empty()) << "differences.txt gives no reason for " << id;
    }
}

}  // namespace
}  // namespace fdbroker::test
