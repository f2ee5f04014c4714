// `fdbroker learn` on the real programs of programs_test: each case's commands are learned one after
// the other into one policy (`learn --append`) on a copy of its set-up, then run under that policy
// with `fdbroker run --transparent` on a fresh copy at the same place, and compared with a native run
// exactly as programs_test compares its own (status, output, files left behind, no denial, nothing
// logged). The learned policy must pass `fdbroker check`, grant write and create only beneath the work
// directory (and the devices the runtime include names), and no pattern broader than a directory the
// program touched: no "/**", no top-level directory as a whole.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "programs/program_case.hpp"
#include "programs/runs.hpp"
#include "programs/snapshot.hpp"
#include "support/harness.hpp"

namespace fdbroker::test::programs {
namespace {

// The rules `include = ["runtime"]` adds, by pattern: they are not the learned ones.
std::vector<std::string> runtime_patterns() {
    const auto loaded =
        policy::Policy::load_string("version = 1\n[profile.r]\ninclude = [\"runtime\"]\n", "r");
    std::vector<std::string> out;
    for (const policy::Rule& rule : loaded.policy->profiles().front().rules())
        out.push_back(rule.pattern.text());
    return out;
}

bool beneath(const std::string& path, const std::string& dir) {
    return path == dir || path.starts_with(dir + "/");
}

// What is wrong with a learned profile: a write or create outside `work`, or a pattern too broad.
std::vector<std::string> too_broad(const policy::Profile& profile, const std::string& work) {
    static const std::vector<std::string> runtime = runtime_patterns();
    std::vector<std::string> out;
    for (const policy::Rule& rule : profile.rules()) {
        const std::string& text = rule.pattern.text();
        if (std::find(runtime.begin(), runtime.end(), text) != runtime.end()) continue;
        const std::string kind(policy::kind_name(rule.kind));
        const bool writes = rule.kind == policy::RuleKind::write || rule.kind == policy::RuleKind::create;
        if (writes && !beneath(text, work))
            out.push_back(std::string(kind).append(" outside the work directory: ").append(text));
        if (rule.pattern.literal()) continue;
        // Only DIR/** is ever learned, DIR a directory the program touched beneath a top-level one.
        const std::string dir = text.ends_with("/**") ? text.substr(0, text.size() - 3) : "";
        const bool top_level = dir.empty() || dir.find('/', 1) == std::string::npos;
        if (top_level && dir != "/tmp") out.push_back(std::string(kind).append(" too broad: ").append(text));
    }
    return out;
}

class Learned : public ::testing::TestWithParam<ProgramCase> {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "the runs are made as nobody, and the broker needs root";
        for (const auto& argv : GetParam().commands)
            if (!argv[0].starts_with(kWorkDir) && ::access(argv[0].c_str(), X_OK) != 0)
                GTEST_SKIP() << argv[0] << " is not installed";
        ::umask(022);
    }

    std::string where(const std::string& work) const {
        return GetParam().cwd.empty() ? work : work + "/" + GetParam().cwd;
    }

    std::vector<std::string> expand(std::vector<std::string> argv, const std::string& work) const {
        for (std::string& a : argv)
            a = replace_all(a, kWorkDir, work);
        return argv;
    }

    Side run_side(const std::string& work, const std::string& policy, std::vector<std::string>* denied) {
        const ProgramCase& c = GetParam();
        Side side;
        for (std::size_t i = 0; i < c.commands.size(); ++i) {
            const auto argv = expand(c.commands[i], work);
            if (policy.empty()) {
                side.runs.push_back(run_native(argv, where(work), environment(c, work)));
                continue;
            }
            const std::string audit = dir / ("audit-" + std::to_string(i) + ".json");
            side.runs.push_back(run_brokered(argv, where(work), environment(c, work), {policy, "", audit}));
            for (const std::string& d : denials(audit))
                denied->push_back(d);
        }
        side.files = snapshot(c, work);
        return side;
    }

    TempDir dir;
};

TEST_P(Learned, PolicyRunsAsNatively) {
    const ProgramCase& c = GetParam();
    const std::string native = dir / "native";
    const std::string work = dir / "broker";
    const std::string policy = dir / "learned.toml";
    for (const std::string& side : {native, work}) {
        const std::string failed = prepare(c, side);
        ASSERT_TRUE(failed.empty()) << failed;
    }
    for (const auto& argv : c.commands) {
        const CommandRun learning =
            run_learning(expand(argv, work), where(work), environment(c, work), policy);
        ASSERT_NE(learning.status, 125) << "fdbroker learn failed: " << learning.err;
    }
    // A fresh copy where the learning run was: the policy names its paths.
    std::filesystem::remove_all(work);
    const std::string failed = prepare(c, work);
    ASSERT_TRUE(failed.empty()) << failed;

    const policy::LoadResult learned = policy::Policy::load_file(policy);
    ASSERT_TRUE(learned.policy) << (learned.errors.empty() ? "" : learned.errors.front().str()) << "\n"
                                << read_file(policy);
    const policy::Profile* profile = learned.policy->profile("default");
    ASSERT_NE(profile, nullptr);
    for (const std::string& problem : too_broad(*profile, work))
        ADD_FAILURE() << c.name << ": " << problem << "\n" << read_file(policy);

    const Side n = run_side(native, "", nullptr);
    std::vector<std::string> denied;
    const Side b = run_side(work, policy, &denied);
    const std::vector<std::string> diff = differences(c, n, b, dir.path(), denied);
    for (const std::string& d : diff)
        ADD_FAILURE() << c.name << ": " << d;
    if (!diff.empty()) std::cout << "learned policy of " << c.name << ":\n" << read_file(policy);
}

// Library mode: fdcat asks the broker for each file. What it was refused and could read as nobody is
// learned; what nobody may not read (/etc/shadow) is not, although the broker, as root, could open it.
TEST(LearnLibraryMode, LearnsWhatTheWorkerAskedAndItsUserMayDo) {
    if (!is_root()) GTEST_SKIP() << "the worker runs as nobody, and the broker needs root";
    TempDir dir;
    const std::string base = dir / "base.toml";
    const std::string learned = dir / "learned.toml";
    write_file(base,
               std::string("version = 1\n[profile.default]\nruntime = [\"") + shared_library_dir() + "\"]\n");
    const Outcome learning = run_command({fdbroker_bin(), "learn", "--policy", base, "-o", learned, "--",
                                          staged(FDCAT_BIN), "/etc/hostname", "/etc/shadow"});
    EXPECT_EQ(learning.status, 1) << learning.err;  // /etc/shadow: refused to nobody itself
    EXPECT_TRUE(contains(learning.err, "+    \"/etc/hostname\",  # 1 call: open /etc/hostname (read)"))
        << learning.err;
    const policy::LoadResult loaded = policy::Policy::load_file(learned);
    ASSERT_TRUE(loaded.policy) << read_file(learned);
    const policy::Profile& profile = *loaded.policy->profile("default");
    EXPECT_TRUE(profile.decide("/etc/hostname", policy::need_read).allowed);
    EXPECT_FALSE(profile.decide("/etc/shadow", policy::need_read).allowed);
    EXPECT_TRUE(contains(read_file(learned), std::string("runtime = [\"") + shared_library_dir()));

    const Outcome run =
        run_command({fdbroker_bin(), "run", "--policy", learned, "--", staged(FDCAT_BIN), "/etc/hostname"});
    EXPECT_EQ(run.status, 0) << run.err;
    EXPECT_EQ(run.out, "/etc/hostname: " + read_file("/etc/hostname"));
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

INSTANTIATE_TEST_SUITE_P(Debian, Learned, ::testing::ValuesIn(program_cases()), case_name);

}  // namespace

}  // namespace fdbroker::test::programs
