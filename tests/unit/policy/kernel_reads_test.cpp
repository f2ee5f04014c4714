// reads = "kernel": which profiles the kernel read tier accepts, the Landlock grants it computes, and
// why `fdbroker check` refuses the others.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "policy/kernel_reads.hpp"
#include "policy/policy.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::policy {
namespace {

using Lines = std::vector<std::string>;
using test::policy_text::errors;
using test::policy_text::load;
using test::policy_text::parse_ok;

constexpr std::string_view kHead = "version = 1\n[profile.p]\nreads = \"kernel\"\nruntime_builtin = false\n";

std::string profile(std::string_view body) {
    return std::string(kHead) + std::string(body);
}

std::vector<KernelRead> grants(std::string_view text) {
    const auto policy = load(text);
    if (!policy || policy->profile("p") == nullptr) return {};
    return policy->profile("p")->confinement().kernel_reads;
}

// A directory of its own for what the loader looks at on disk.
class Scratch {
  public:
    Scratch() {
        std::string pattern = ::testing::TempDir() + "fdbroker-kreads-XXXXXX";
        if (::mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
    }
    ~Scratch() {
        if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    [[nodiscard]] const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
};

TEST(KernelReads, BrokerIsTheDefaultAndComputesNothing) {
    const auto policy = load("version = 1\n[profile.p]\nread = [\"/srv/**\"]\n");
    ASSERT_TRUE(policy);
    EXPECT_EQ(policy->profile("p")->confinement().reads, ReadTier::broker);
    EXPECT_TRUE(policy->profile("p")->confinement().kernel_reads.empty());
}

TEST(KernelReads, LiteralFilesAndTreesBecomeLandlockGrants) {
    EXPECT_EQ(grants(profile("read = [\"/srv/data/**\", \"/srv/one.txt\", \"/srv/data/**\"]\n")),
              (std::vector<KernelRead>{{"/srv/data", true}, {"/srv/one.txt", false}}));
}

TEST(KernelReads, TheRuntimeIncludeGrantsItsTreesButNotTheRoot) {
    const std::vector<KernelRead> set = grants(
        "version = 1\n[profile.p]\nreads = \"kernel\"\ninclude = [\"runtime\"]\nread = [\"/srv/**\"]\n");
    ASSERT_FALSE(set.empty());
    auto has = [&set](const std::string& path, bool tree) {
        return std::find(set.begin(), set.end(), KernelRead{path, tree}) != set.end();
    };
    EXPECT_TRUE(has("/usr", true));
    EXPECT_TRUE(has("/etc/passwd", true));
    EXPECT_TRUE(has("/srv", true));
    // "/" exactly is a directory the broker lets the worker list, which Landlock cannot grant alone.
    EXPECT_FALSE(has("/", true));
    EXPECT_FALSE(has("/", false));
}

TEST(KernelReads, WritesAndCreatesDoNotMatter) {
    EXPECT_EQ(grants(profile("read = [\"/srv/**\"]\nwrite = [\"/srv/*.log\"]\ncreate = [\"/tmp/*/x\"]\n")),
              (std::vector<KernelRead>{{"/srv", true}}));
}

TEST(KernelReads, RefusesWildcardsLandlockCannotExpress) {
    const std::string tail = ", or keep reads = \"broker\"";
    EXPECT_EQ(
        errors(profile("read = [\"/srv/*.txt\", \"/srv/*/data/**\", \"/srv/a?\"]\n")),
        (Lines{"p.toml:5:9: error: read rule '/srv/*.txt' cannot be enforced by the kernel: Landlock "
               "grants only a path named exactly or a whole tree 'DIR/**' with no wildcard in DIR" +
                   tail,
               "p.toml:5:23: error: read rule '/srv/*/data/**' cannot be enforced by the kernel: Landlock "
               "grants only a path named exactly or a whole tree 'DIR/**' with no wildcard in DIR" +
                   tail,
               "p.toml:5:41: error: read rule '/srv/a?' cannot be enforced by the kernel: Landlock "
               "grants only a path named exactly or a whole tree 'DIR/**' with no wildcard in DIR" +
                   tail}));
    // "**" anywhere but last.
    EXPECT_EQ(errors(profile("read = [\"/srv/**/x\"]\n")).size(), 1U);
}

TEST(KernelReads, RefusesTreesInDevProcAndSys) {
    for (const char* tree : {"/dev/**", "/dev/input/**", "/proc/**", "/proc/1/**", "/sys/**", "/**"}) {
        EXPECT_EQ(
            errors(profile("read = [\"" + std::string(tree) + "\"]\n")),
            Lines{"p.toml:5:9: error: read rule '" + std::string(tree) +
                  "' is a tree in /dev, /proc or /sys (or holds them), which the kernel tier does not "
                  "grant: the broker opens devices only when a rule names them, and /proc reaches other "
                  "processes; name the files exactly, or keep reads = \"broker\""});
    }
    // Named exactly, a device or a /proc file is what the broker grants too.
    EXPECT_EQ(grants(profile("read = [\"/dev/null\", \"/proc/cpuinfo\", \"/devices/**\"]\n")),
              (std::vector<KernelRead>{{"/dev/null", false}, {"/proc/cpuinfo", false}, {"/devices", true}}));
}

TEST(KernelReads, RefusesADenyThatReachesIntoWhatIsRead) {
    const std::string message =
        " grants, which the kernel cannot: Landlock has no exceptions, or keep reads = \"broker\"";
    EXPECT_EQ(
        errors(profile("read = [\"/srv/**\"]\ndeny = [\"/srv/secret/**\"]\n")),
        Lines{"p.toml:6:9: error: deny rule '/srv/secret/**' takes back part of what read rule '/srv/**'" +
              message});
    EXPECT_EQ(
        errors(profile("read = [\"/srv/a/**\"]\ndeny = [\"/srv/*/key\"]\n")),
        Lines{"p.toml:6:9: error: deny rule '/srv/*/key' takes back part of what read rule '/srv/a/**'" +
              message});
    EXPECT_EQ(errors(profile("read = [\"/srv/a/b/**\"]\ndeny = [\"/**\"]\n")),
              Lines{"p.toml:6:9: error: deny rule '/**' takes back part of what read rule '/srv/a/b/**'" +
                    message});
    EXPECT_EQ(errors(profile("read = [\"/srv/one\"]\ndeny = [\"/srv/o*\"]\n")),
              Lines{"p.toml:6:9: error: deny rule '/srv/o*' takes back part of what read rule '/srv/one'" +
                    message});
    // Denies elsewhere, or above a tree only, are fine.
    EXPECT_EQ(grants(profile(
                  "read = [\"/srv/a/**\", \"/srv/one\"]\ndeny = [\"/srv/b/**\", \"/srv\", \"/etc/*\"]\n")),
              (std::vector<KernelRead>{{"/srv/a", true}, {"/srv/one", false}}));
}

TEST(KernelReads, RefusesALiteralDirectoryOrSymbolicLink) {
    const Scratch scratch;
    ASSERT_FALSE(scratch.dir().empty());
    const std::string link = scratch.dir() + "/link";
    ASSERT_EQ(::symlink("/etc/hostname", link.c_str()), 0);
    EXPECT_EQ(
        errors(profile("read = [\"" + scratch.dir() + "\"]\n")),
        Lines{"p.toml:5:9: error: read rule '" + scratch.dir() +
              "' names a directory, which the kernel cannot let the worker list without reading what lies "
              "beneath: write '" +
              scratch.dir() + "/**', or keep reads = \"broker\""});
    EXPECT_EQ(errors(profile("read = [\"" + link + "\"]\n")),
              Lines{"p.toml:5:9: error: read rule '" + link +
                    "' names a symbolic link, and the kernel judges the file it leads to: name that file "
                    "instead, or keep reads = \"broker\""});
    // Absent when the policy loads: granted if it is a file when a worker starts.
    EXPECT_EQ(grants(profile("read = [\"" + scratch.dir() + "/later\"]\n")),
              (std::vector<KernelRead>{{scratch.dir() + "/later", false}}));
}

TEST(KernelReads, TheBuiltInRuntimeMustBeGrantedToo) {
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nreads = \"kernel\"\nread = [\"/srv/**\"]\n"),
        Lines{"p.toml:3:9: error: reads = \"kernel\" needs include = [\"runtime\"] (or runtime_builtin = "
              "false): the worker reads its built-in runtime paths by itself, and the kernel tier must "
              "grant nothing the broker would refuse"});
    EXPECT_EQ(
        errors(profile("runtime = [\"/opt/app\"]\nread = [\"/opt/app/lib/**\"]\n")),
        Lines{"p.toml:3:9: error: runtime path '/opt/app' is readable by the worker by itself; with reads = "
              "\"kernel\" the profile must grant it too: read = ['/opt/app/**']"});
    EXPECT_EQ(grants(profile("runtime = [\"/opt/app/lib\"]\nread = [\"/opt/app/**\"]\n")),
              (std::vector<KernelRead>{{"/opt/app", true}}));
}

TEST(KernelReads, TheRuntimeIncludeNeedsAWorkerUserOtherThanRoot) {
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nuser = 0\nreads = \"kernel\"\ninclude = [\"runtime\"]\n"),
        Lines{"p.toml:4:9: error: reads = \"kernel\" with include = [\"runtime\"] needs a worker user other "
              "than root and other than the owner of '/usr/share/polkit-1/rules.d': only the user's own "
              "permissions keep it from the worker in the kernel tier"});
}

TEST(KernelReads, TheRuntimeIncludeNeedsAWorkerUserThatCannotReadWhatItDenies) {
    struct ::stat st {};
    if (::stat("/usr/share/polkit-1/rules.d", &st) != 0)
        GTEST_SKIP() << "no /usr/share/polkit-1/rules.d here";
    const std::string text = "version = 1\n[profile.p]\nuser = " + std::to_string(st.st_uid) +
                             "\ngroup = 0\nreads = \"kernel\"\ninclude = [\"runtime\"]\n";
    const Lines problems = errors(text);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_TRUE(problems[0].find("other than the owner of '/usr/share/polkit-1/rules.d'") !=
                std::string::npos)
        << problems[0];
}

TEST(KernelReads, BadValue) {
    EXPECT_EQ(errors("version = 1\n[profile.p]\nreads = \"fast\"\n"),
              Lines{"p.toml:3:9: error: 'reads' must be \"broker\" or \"kernel\""});
}

// stat = "kernel": the second opt-in, on top of reads = "kernel", and only where the profile hides
// nothing from stat.
TEST(KernelStat, BrokerIsTheDefault) {
    const auto policy = load(profile("read = [\"/srv/**\"]\n"));
    ASSERT_TRUE(policy);
    EXPECT_EQ(policy->profile("p")->confinement().stat, StatTier::broker);
}

TEST(KernelStat, AcceptedBesideKernelReads) {
    const auto policy = load(profile("stat = \"kernel\"\nread = [\"/srv/**\"]\n"));
    ASSERT_TRUE(policy);
    EXPECT_EQ(policy->profile("p")->confinement().stat, StatTier::kernel);
    // The runtime include's own deny keeps to the worker user's permissions: accepted.
    EXPECT_TRUE(
        load("version = 1\n[profile.p]\nreads = \"kernel\"\nstat = \"kernel\"\ninclude = [\"runtime\"]\n"));
}

TEST(KernelStat, NeedsKernelReads) {
    EXPECT_EQ(
        errors("version = 1\n[profile.p]\nstat = \"kernel\"\n"),
        Lines{"p.toml:3:8: error: stat = \"kernel\" needs reads = \"kernel\": it widens what the kernel "
              "tier already reveals (which names exist) to the metadata of anything the worker's user "
              "can look up"});
}

TEST(KernelStat, RefusesWhatPromisesToHidePaths) {
    EXPECT_EQ(
        errors(profile("stat = \"kernel\"\nread = [\"/srv/**\"]\ndeny = [\"/etc/shadow\"]\n")),
        Lines{"p.toml:7:9: error: deny rule '/etc/shadow' does not hide its paths from stat under stat = "
              "\"kernel\", where the kernel answers for any path the worker's user can look up: remove "
              "it, or keep stat = \"broker\""});
    EXPECT_EQ(
        errors(profile("stat = \"kernel\"\ndenied_paths = \"absent\"\n")),
        Lines{"p.toml:5:8: error: stat = \"kernel\" cannot keep denied_paths = \"absent\": the kernel's "
              "stat shows every path the worker's user can look up as it is"});
}

TEST(KernelStat, BadValue) {
    EXPECT_EQ(errors(profile("stat = \"fast\"\n")),
              Lines{"p.toml:5:8: error: 'stat' must be \"broker\" or \"kernel\""});
}

TEST(KernelReads, MayMatchAtOrBeneath) {
    EXPECT_TRUE(may_match_at_or_beneath(parse_ok("/srv/**"), "/srv"));
    EXPECT_TRUE(may_match_at_or_beneath(parse_ok("/srv/**"), "/srv/a/b"));
    EXPECT_TRUE(may_match_at_or_beneath(parse_ok("/srv/a/key"), "/srv"));
    EXPECT_TRUE(may_match_at_or_beneath(parse_ok("/s*/a"), "/srv/a"));
    EXPECT_TRUE(may_match_at_or_beneath(parse_ok("/**"), "/"));
    EXPECT_FALSE(may_match_at_or_beneath(parse_ok("/srv"), "/srv/a"));
    EXPECT_FALSE(may_match_at_or_beneath(parse_ok("/srv/b/**"), "/srv/a"));
    EXPECT_FALSE(may_match_at_or_beneath(parse_ok("/etc/*"), "/srv/a"));
}

}  // namespace
}  // namespace fdbroker::policy
