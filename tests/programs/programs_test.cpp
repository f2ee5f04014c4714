// Real Debian programs, each run natively as nobody and under `fdbroker run --transparent` as nobody
// with the tight policy an administrator would write for it: `include = ["runtime"]`, read, write and
// create on the work directory, and exactly what else the program reads. Both runs must agree on
// every command's exit status, standard output and standard error, and on every file left behind
// (content, mode, owner, links, and the times the program sets); the brokered run must see no denial
// and fdbroker must log nothing (no refused exec, no call outside the filter). expected_failures.txt
// lists the cases that do not agree yet, with the reason; a listed case that agrees fails, so that
// the list stays true. Each case prints its wall-clock slowdown (brokered / native).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "programs/program_case.hpp"
#include "programs/runs.hpp"
#include "programs/snapshot.hpp"
#include "support/harness.hpp"

namespace fdbroker::test::programs {
namespace {

// expected_failures.txt: "<case name> <reason>" per line; '#' starts a comment.
std::map<std::string, std::string> expected_failures() {
    std::map<std::string, std::string> out;
    std::ifstream in(PROGRAMS_EXPECTED_FAILURES);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const std::size_t space = line.find(' ');
        out[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
    }
    return out;
}

std::string toml_list(const std::vector<std::string>& items, const std::string& work) {
    std::string out = "[";
    for (const std::string& item : items)
        out += (out.size() > 1 ? ", \"" : "\"") + replace_all(item, kWorkDir, work) + "\"";
    return out + "]";
}

// An example policy as shipped, with its paths moved into the work directory.
std::string example_policy(const ProgramCase& c, const std::string& work) {
    std::string text = read_file(std::string(PROGRAMS_EXAMPLES_DIR) + "/" + c.example);
    for (const auto& [from, to] : c.example_paths)
        text = replace_all(text, from, replace_all(to, kWorkDir, work));
    return text;
}

std::string policy_for(const ProgramCase& c, const std::string& work) {
    if (!c.example.empty()) return example_policy(c, work);
    std::vector<std::string> read{std::string(kWorkDir) + "/**"};
    read.insert(read.end(), c.read.begin(), c.read.end());
    std::vector<std::string> write{std::string(kWorkDir) + "/**"};
    write.insert(write.end(), c.write.begin(), c.write.end());
    std::vector<std::string> create{std::string(kWorkDir) + "/**"};
    create.insert(create.end(), c.create.begin(), c.create.end());
    return "version = 1\n[profile.default]\nuser = \"nobody\"\ninclude = [\"runtime\"]\n"
           "read = " +
           toml_list(read, work) + "\nwrite = " + toml_list(write, work) +
           "\ncreate = " + toml_list(create, work) +
           // glibc asks nscd for users and groups first (ls -l, stat, tar): a refused connect would be
           // EACCES where natively no such socket exists (ENOENT). The runtime include leaves it out
           // (nscd resolves host names too: docs/policy.md), so an administrator adds it, as here.
           "\nconnect = [\"unix:/var/run/nscd/socket\"]\n" + (c.exec ? "exec = true\n" : "");
}

class Program : public ::testing::TestWithParam<ProgramCase> {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "the runs are made as nobody, and the broker needs root";
        for (const auto& argv : GetParam().commands)
            if (!argv[0].starts_with(kWorkDir) && ::access(argv[0].c_str(), X_OK) != 0)
                GTEST_SKIP() << argv[0] << " is not installed";
        ::umask(022);
    }

    Side native(const ProgramCase& c) {
        const std::string work = dir / "native";
        Side side;
        for (const auto& argv : c.commands) {
            side.runs.push_back(run_native(expand(argv, work), where(c, work), environment(c, work)));
            side.seconds += side.runs.back().seconds;
        }
        side.files = snapshot(c, work);
        return side;
    }

    // Same length as "native": paths printed by the programs keep their width.
    Side brokered(const ProgramCase& c, std::vector<std::string>& denied) {
        const std::string work = dir / "broker";
        const std::string policy = dir / "policy.toml";
        write_file(policy, policy_for(c, work));
        Side side;
        for (std::size_t i = 0; i < c.commands.size(); ++i) {
            const std::string audit = dir / ("audit-" + std::to_string(i) + ".json");
            side.runs.push_back(run_brokered(expand(c.commands[i], work), where(c, work),
                                             environment(c, work), {policy, c.profile, audit}));
            side.seconds += side.runs.back().seconds;
            for (const std::string& d : denials(audit))
                denied.push_back(d);
        }
        side.files = snapshot(c, work);
        return side;
    }

    static std::string where(const ProgramCase& c, const std::string& work) {
        return c.cwd.empty() ? work : work + "/" + c.cwd;
    }

    static std::vector<std::string> expand(std::vector<std::string> argv, const std::string& work) {
        for (std::string& a : argv)
            a = replace_all(a, kWorkDir, work);
        return argv;
    }

    TempDir dir;
};

void report_slowdown(const std::string& name, const Side& n, const Side& b) {
    char line[160];
    std::snprintf(line, sizeof line, "[slowdown] %s: native %.1f ms, fdbroker %.1f ms, x%.2f", name.c_str(),
                  n.seconds * 1e3, b.seconds * 1e3, n.seconds > 0 ? b.seconds / n.seconds : 0.0);
    std::cout << line << "\n";
    ::testing::Test::RecordProperty("slowdown", line);
}

// AddressSanitizer reserves terabytes of address space: under an example's address_space limit the
// pid namespace's init (a fork of the sanitized fdbroker) cannot even start. Such a run says nothing
// about the example, so a sanitized build skips it.
bool limits_leave_no_room_for_asan(const ProgramCase& c) {
#if defined(__SANITIZE_ADDRESS__)
    if (c.example.empty()) return false;
    return read_file(std::string(PROGRAMS_EXAMPLES_DIR) + "/" + c.example).find("address_space") !=
           std::string::npos;
#else
    static_cast<void>(c);
    return false;
#endif
}

TEST_P(Program, BehavesAsNatively) {
    const ProgramCase& c = GetParam();
    if (limits_leave_no_room_for_asan(c))
        GTEST_SKIP() << "an address_space limit leaves AddressSanitizer no room";
    for (const char* side : {"native", "broker"}) {
        const std::string failed = prepare(c, dir / side);
        ASSERT_TRUE(failed.empty()) << failed;
    }
    const Side n = native(c);
    std::vector<std::string> denied;
    const Side b = brokered(c, denied);
    report_slowdown(c.name, n, b);
    const std::vector<std::string> diff = differences(c, n, b, dir.path(), denied);
    const auto expected = expected_failures();
    const auto listed = expected.find(c.name);
    if (listed == expected.end()) {
        for (const std::string& d : diff)
            ADD_FAILURE() << c.name << ": " << d;
        return;
    }
    EXPECT_FALSE(diff.empty()) << c.name << " is listed in expected_failures.txt (" << listed->second
                               << "), but both runs agree: remove it from the list";
    for (const std::string& d : diff)
        std::cout << "[expected] " << c.name << ": " << d << "\n";
}

}  // namespace

// GoogleTest names a failing parameter with this, instead of the bytes of the struct.
void PrintTo(const ProgramCase& c, std::ostream* os) {
    *os << c.name;
}

namespace {

std::string case_name(const ::testing::TestParamInfo<ProgramCase>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Debian, Program, ::testing::ValuesIn(program_cases()), case_name);

TEST(ProgramTable, EnoughDistinctTightCasesAndKnownExpectedFailures) {
    std::set<std::string> names, programs;
    for (const ProgramCase& c : program_cases()) {
        EXPECT_TRUE(names.insert(c.name).second) << "two cases named " << c.name;
        for (const auto& argv : c.commands)
            programs.insert(argv[0]);
    }
    EXPECT_GE(programs.size(), 25U);
    // Tight policies: nothing granted wholesale, nothing of /proc but what a case names, the default
    // system call preset.
    for (const ProgramCase& c : program_cases()) {
        const std::string policy = policy_for(c, "/w");
        EXPECT_FALSE(contains(policy, "\"/**\"")) << c.name;
        EXPECT_FALSE(contains(policy, "/proc/**")) << c.name;
        EXPECT_FALSE(contains(policy, "syscalls")) << c.name;
    }
    for (const auto& [name, reason] : expected_failures()) {
        EXPECT_TRUE(names.contains(name)) << "expected_failures.txt names an unknown case: " << name;
        EXPECT_FALSE(reason.empty()) << "expected_failures.txt gives no reason for " << name;
    }
}

// The example policies refuse what lies outside their purpose: each row is an example case run again
// with another command, which must fail with the program's own message and leave the work directory
// as the set-up made it.
struct Refusal {
    std::string example_case;
    std::vector<std::string> argv;
    std::string says = "Permission denied";
};

class ExampleRefuses : public ::testing::TestWithParam<Refusal> {};

const ProgramCase* find_case(const std::string& name) {
    for (const ProgramCase& c : program_cases())
        if (c.name == name) return &c;
    return nullptr;
}

TEST_P(ExampleRefuses, WithPermissionDenied) {
    const Refusal& r = GetParam();
    const ProgramCase* c = find_case(r.example_case);
    ASSERT_NE(c, nullptr) << r.example_case;
    if (!is_root()) GTEST_SKIP() << "the broker needs root";
    if (limits_leave_no_room_for_asan(*c))
        GTEST_SKIP() << "an address_space limit leaves AddressSanitizer no room";
    if (::access(r.argv[0].c_str(), X_OK) != 0) GTEST_SKIP() << r.argv[0] << " is not installed";
    ::umask(022);
    TempDir dir;
    const std::string work = dir / "broker";
    const std::string failed = prepare(*c, work);
    ASSERT_TRUE(failed.empty()) << failed;
    const std::vector<std::string> before = snapshot(*c, work);
    const std::string policy = dir / "policy.toml";
    write_file(policy, policy_for(*c, work));
    std::vector<std::string> argv = r.argv;
    for (std::string& a : argv)
        a = replace_all(a, kWorkDir, work);
    const std::string cwd = c->cwd.empty() ? work : work + "/" + c->cwd;
    const CommandRun run =
        run_brokered(argv, cwd, environment(*c, work), {policy, c->profile, dir / "audit"});
    EXPECT_NE(run.status, 0) << run.out << run.err;
    EXPECT_TRUE(contains(run.err, r.says)) << run.err;
    for (const std::string& line : run.log)
        ADD_FAILURE() << "fdbroker logged: " << line;
    EXPECT_EQ(snapshot(*c, work), before) << "the refused command changed the work directory";
}

// GoogleTest names a failing parameter with this (found by argument-dependent lookup).
void PrintTo(const Refusal& r, std::ostream* os) {
    *os << r.example_case << ": " << r.argv[0];
}

std::string refusal_name(const ::testing::TestParamInfo<Refusal>& info) {
    return info.param.example_case + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(
    Examples, ExampleRefuses,
    ::testing::Values(
        // A photo under the deny rule.
        Refusal{"example_imagemagick_thumbnails",
                {"/usr/bin/mogrify-im6.q16", "-path", "@W/photos/thumbs", "-thumbnail", "16x16", "-format",
                 "png", "@W/photos/in/.private/secret.png"}},
        // Thumbnails written anywhere but the thumbnail directory.
        Refusal{"example_imagemagick_thumbnails",
                {"/usr/bin/mogrify-im6.q16", "-path", "@W/photos/in", "-thumbnail", "16x16", "-format", "gif",
                 "@W/photos/in/a.png"},
                // What ImageMagick says natively too, for a directory its user may not write to: it
                // reports the errno of a later call.
                "unable to open image"},
        // A file outside the work tree.
        Refusal{"example_git_worktree", {"/usr/bin/git", "hash-object", "/etc/hostname"}},
        // Exports read from anywhere else.
        Refusal{"example_python_json2csv",
                {"/usr/bin/python3", "-I", "@W/tool/json2csv.py", "/etc", "@W/reports/out"}}),
    refusal_name);

}  // namespace
}  // namespace fdbroker::test::programs
