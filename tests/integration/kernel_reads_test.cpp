// reads = "kernel" in transparent mode: read-only opens the kernel judges (Landlock), everything else
// through the broker; and the property that makes it sound: on any file tree, under any policy the key
// accepts, the kernel grants exactly the files the broker grants.
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

std::string profile(const std::string& reads, const std::string& rules) {
    return "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nreads = \"" + reads + "\"\n" + rules;
}

class TransparentKernelReads : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
        ::mkdir((dir / "pub").c_str(), 0755);
        ::mkdir((dir / "prv").c_str(), 0755);
        ::mkdir((dir / "out").c_str(), 0777);
        write_file(dir / "pub/hello", "hello\n");
        write_file(dir / "one", "one\n");
        write_file(dir / "prv/hello", "private\n");
        give_to_nobody(dir / "out");
    }

    std::string rules() const {
        return "read = [\"" + dir / "pub/**" + "\", \"" + dir / "one" + "\", \"" + dir / "out/**" +
               "\"]\nwrite = [\"" + dir / "out/**" + "\"]\ncreate = [\"" + dir / "out/**" + "\"]\n";
    }

    Outcome run(const std::vector<std::string>& program, const std::vector<std::string>& extra = {}) {
        std::vector<std::string> options{"--transparent"};
        options.insert(options.end(), extra.begin(), extra.end());
        return run_broker(dir, profile("kernel", rules()), program, options);
    }

    TempDir dir;
};

TEST_F(TransparentKernelReads, GrantedReadsNeverReachTheBroker) {
    const std::string audit = dir / "audit.jsonl";
    const Outcome r =
        run({staged(TRANSPARENT_WORKER), "opens", dir / "pub/hello", dir / "one"}, {"--audit", audit});
    ASSERT_EQ(r.status, 0) << r.err;
    const std::vector<std::string> lines = r.lines();
    ASSERT_EQ(lines.size(), 2U) << r.out;
    EXPECT_EQ(lines[0].rfind("ok ", 0), 0U) << r.out;
    EXPECT_EQ(lines[1].rfind("ok ", 0), 0U) << r.out;
    const std::string log = read_file(audit);
    // One record says the worker's reads are the kernel's; none names the files it read.
    EXPECT_TRUE(contains(log, "\"op\":\"kernel_reads\"")) << log;
    EXPECT_FALSE(contains(log, dir / "pub/hello")) << log;
    EXPECT_FALSE(contains(log, dir / "one")) << log;
    // The same under reads = "broker": audited, which is what the record above stands in for.
    const Outcome brokered =
        run_broker(dir, profile("broker", rules()), {staged(TRANSPARENT_WORKER), "opens", dir / "pub/hello"},
                   {"--transparent", "--audit", dir / "broker.jsonl"});
    ASSERT_EQ(brokered.status, 0) << brokered.err;
    EXPECT_TRUE(contains(read_file(dir / "broker.jsonl"), dir / "pub/hello"));
}

TEST_F(TransparentKernelReads, ExistingFilesOutsideTheReadSetAreRefused) {
    const Outcome r =
        run({staged(TRANSPARENT_WORKER), "opens", dir / "prv/hello", "/etc/shadow", dir / "pub"});
    ASSERT_EQ(r.status, 0) << r.err;
    // A directory of a tree: granted (Landlock's READ_DIR, the broker's tree rule).
    EXPECT_EQ(r.lines().size(), 3U);
    EXPECT_EQ(r.lines().at(0), "err EACCES");
    EXPECT_EQ(r.lines().at(1), "err EACCES");
    EXPECT_EQ(r.lines().at(2).rfind("ok ", 0), 0U) << r.out;
    // cat's own error message, as natively.
    const Outcome cat = run({"/bin/cat", dir / "prv/hello"});
    EXPECT_EQ(cat.status, 1);
    EXPECT_EQ(cat.err, "/bin/cat: " + dir / "prv/hello" + ": Permission denied\n");
}

TEST_F(TransparentKernelReads, TheKernelRevealsWhichNamesExist) {
    // The price of the tier (docs/policy.md): the kernel looks a name up before Landlock decides.
    const Outcome r = run({staged(TRANSPARENT_WORKER), "opens", dir / "prv/hello", dir / "prv/missing"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.lines(), (std::vector<std::string>{"err EACCES", "err ENOENT"}));
    // The broker says EACCES for both.
    const Outcome brokered = run_broker(
        dir, profile("broker", rules()),
        {staged(TRANSPARENT_WORKER), "opens", dir / "prv/hello", dir / "prv/missing"}, {"--transparent"});
    EXPECT_EQ(brokered.lines(), (std::vector<std::string>{"err EACCES", "err EACCES"})) << brokered.err;
}

TEST_F(TransparentKernelReads, OnlyTheWorkerItselfReadsItsOwnProcEntries) {
    // A child of the worker has a pid of its own, whose /proc entries the kernel tier does not grant;
    // the worker's own process (which the shell then execs into) reads its own (docs/policy.md).
    const Outcome r =
        run_broker(dir, profile("kernel", rules() + "exec = true\n"),
                   {"/bin/sh", "-c",
                    "if /bin/cat /proc/self/status >/dev/null 2>&1; then echo child-read; else echo "
                    "child-refused; fi; exec /bin/cat /proc/self/status"},
                   {"--transparent"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.lines().at(0), "child-refused") << r.out;
    EXPECT_TRUE(contains(r.out, "Name:\tcat")) << r.out;
}

TEST_F(TransparentKernelReads, WritesAndCreationsStillGoThroughTheBroker) {
    const std::string audit = dir / "audit.jsonl";
    EXPECT_EQ(run({"/bin/cp", dir / "pub/hello", dir / "out/copy"}, {"--audit", audit}).status, 0);
    EXPECT_EQ(read_file(dir / "out/copy"), "hello\n");
    const Outcome refused = run({"/bin/cp", dir / "pub/hello", dir / "prv/copy"}, {"--audit", audit});
    EXPECT_NE(refused.status, 0);
    EXPECT_FALSE(exists(dir / "prv/copy"));
    const std::string log = read_file(audit);
    EXPECT_TRUE(contains(log, "\"path\":\"" + dir / "out/copy" + "\",\"flags\"")) << log;
    EXPECT_TRUE(contains(log, "\"path\":\"" + dir / "prv/copy" + "\"")) << log;
    // cp's stat of its source is the broker's; its read-only open is not.
    EXPECT_FALSE(contains(log, "\"op\":\"open\",\"path\":\"" + dir / "pub/hello")) << log;
    // Opening read-write reaches the broker too, which refuses it where only reading is granted.
    EXPECT_NE(run({"/bin/sh", "-c", "exec 3<>" + dir / "pub/hello"}).status, 0);
}

TEST_F(TransparentKernelReads, TruncatingStaysRefusedWhateverTheFilterLetsThrough) {
    // A file of the read set that the worker's user could truncate natively.
    write_file(dir / "pub/victim", "keep\n");
    give_to_nobody(dir / "pub/victim");
    const std::vector<std::string> truncate{staged(TRANSPARENT_WORKER), "truncate", dir / "pub/victim"};
    // The filter keeps truncate(2) and O_TRUNC from the kernel: the broker refuses them (only reading
    // is granted), and Landlock may grant truncating beside reading, which lets its check of every
    // open stop at the rule that grants it.
    const Outcome brokered = run(truncate);
    ASSERT_EQ(brokered.status, 0) << brokered.err;
    EXPECT_EQ(brokered.lines(), (std::vector<std::string>{"err EACCES", "err EACCES"}));
    if (::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION) < 3)
        GTEST_SKIP() << "Landlock restricts truncating from ABI 3 (Linux 6.2) on; this kernel's is older";
    // A library-mode profile that lets both calls through to the kernel: there Landlock refuses them,
    // as it grants truncating nowhere when the filter does not keep it out.
    const std::string allow = "syscalls = { allow = [\"truncate\", \"openat\"] }\n";
    const Outcome kernel = run_broker(dir, profile("kernel", rules() + allow), truncate);
    ASSERT_EQ(kernel.status, 0) << kernel.err;
    EXPECT_EQ(kernel.lines(), (std::vector<std::string>{"err EACCES", "err EACCES"})) << kernel.err;
    EXPECT_EQ(read_file(dir / "pub/victim"), "keep\n");
}

TEST_F(TransparentKernelReads, StatKernelAnswersForWhatTheUserCanLookUp) {
    ::mkdir((dir / "locked").c_str(), 0700);  // root's: nobody cannot look inside
    write_file(dir / "locked/file", "x\n");
    const std::string audit = dir / "audit.jsonl";
    const std::vector<std::string> program{"/usr/bin/stat", "-c", "%s", dir / "prv/hello"};
    // Under reads = "kernel" alone the broker judges the stat: outside every rule, refused.
    const Outcome brokered = run(program, {"--audit", audit});
    EXPECT_EQ(brokered.status, 1) << brokered.out;
    EXPECT_TRUE(contains(brokered.err, "Permission denied")) << brokered.err;
    EXPECT_TRUE(contains(read_file(audit), dir / "prv/hello"));
    // stat = "kernel": the kernel answers, as it would natively, and nothing is recorded but the tier.
    const std::string stat_audit = dir / "stat.jsonl";
    const std::string kernel_stat = profile("kernel", "stat = \"kernel\"\n" + rules());
    const Outcome r = run_broker(dir, kernel_stat, program, {"--transparent", "--audit", stat_audit});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "8\n");
    const std::string log = read_file(stat_audit);
    EXPECT_TRUE(contains(log, "\"op\":\"kernel_stat\"")) << log;
    EXPECT_FALSE(contains(log, dir / "prv/hello")) << log;
    // What the worker's user cannot look up natively stays out of reach; contents stay refused.
    const Outcome locked =
        run_broker(dir, kernel_stat, {"/usr/bin/stat", "-c", "%s", dir / "locked/file"}, {"--transparent"});
    EXPECT_EQ(locked.status, 1);
    EXPECT_TRUE(contains(locked.err, "Permission denied")) << locked.err;
    const Outcome cat = run_broker(dir, kernel_stat, {"/bin/cat", dir / "prv/hello"}, {"--transparent"});
    EXPECT_EQ(cat.status, 1);
    EXPECT_EQ(cat.out, "");
}

TEST_F(TransparentKernelReads, CheckSaysWhyAProfileCannotUseIt) {
    write_file(dir / "p.toml", profile("kernel", "read = [\"" + dir / "pub/*.txt" + "\"]\n"));
    const Outcome r = run_command({fdbroker_bin(), "check", dir / "p.toml"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, dir / "p.toml" + ":5:9: error: read rule '" + dir / "pub/*.txt" +
                                    "' cannot be enforced by the kernel"))
        << r.err;
    write_file(dir / "q.toml", profile("kernel", rules()));
    const Outcome ok = run_command({fdbroker_bin(), "check", dir / "q.toml"});
    EXPECT_EQ(ok.status, 0) << ok.err;
}

TEST_F(TransparentKernelReads, AGrantAbsentAtStartIsLogged) {
    const std::string missing = dir / "later";
    const Outcome r = run_broker(dir, profile("kernel", "read = [\"" + missing + "\"]\n"),
                                 {staged(TRANSPARENT_WORKER), "opens", dir / "one"}, {"--transparent"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "grants nothing for '" + missing + "'")) << r.err;
}

TEST_F(TransparentKernelReads, AGrantThroughASymlinkGrantsNothing) {
    // The broker judges the names a path goes through, Landlock only the file reached: a tree named
    // through a symbolic link (to a directory the policy does not grant) must bind to nothing, or the
    // kernel would grant what the broker refuses.
    ASSERT_EQ(::symlink((dir / "prv").c_str(), (dir / "link").c_str()), 0);
    const std::string rules = "read = [\"" + dir / "link/**" + "\"]\n";
    for (const char* reads : {"broker", "kernel"}) {
        const Outcome r = run_broker(
            dir, profile(reads, rules),
            {staged(TRANSPARENT_WORKER), "opens", dir / "link/hello", dir / "prv/hello"}, {"--transparent"});
        EXPECT_EQ(r.lines(), (std::vector<std::string>{"err EACCES", "err EACCES"})) << reads << "\n"
                                                                                     << r.out << r.err;
    }
}

TEST_F(TransparentKernelReads, LibraryModeOpensReadOnlyDirectlyAndAsksTheBrokerWhenRefused) {
    const Script script{{"open", dir / "pub/hello", "rdonly"},
                        {"cloexec", dir / "one", "without"},
                        {"open", dir / "prv/hello", "rdonly"}};
    const std::string audit = dir / "audit.jsonl";
    const Outcome r = run_worker(dir, profile("kernel", rules()), script, {"--audit", audit});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.lines(), (std::vector<std::string>{"ok", "ok cloexec=0", "EACCES"})) << r.err;
    const std::string log = read_file(audit);
    // The kernel granted the first two: only the refusal, answered by the broker, is audited.
    EXPECT_FALSE(contains(log, dir / "pub/hello")) << log;
    EXPECT_FALSE(contains(log, dir / "one")) << log;
    EXPECT_TRUE(contains(log, "\"op\":\"open\",\"path\":\"" + dir / "prv/hello" + "\",\"decision\":\"deny\""))
        << log;
    // Under reads = "broker" the same opens are the broker's, and audited.
    const Outcome brokered =
        run_worker(dir, profile("broker", rules()), script, {"--audit", dir / "b.jsonl"});
    EXPECT_EQ(brokered.lines(), r.lines()) << brokered.err;
    EXPECT_TRUE(contains(read_file(dir / "b.jsonl"), dir / "pub/hello"));
}

TEST_F(TransparentKernelReads, LibraryModeBatchesAskTheBrokerOnlyForWhatTheKernelRefuses) {
    const std::string audit = dir / "audit.jsonl";
    const Script script{{"batch", dir / "pub/hello", "rdonly", dir / "prv/hello", "rdonly", dir / "one",
                         "rdonly", dir / "out/new", "wronly|creat"}};
    const Outcome r = run_worker(dir, profile("kernel", rules()), script, {"--audit", audit});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.lines(), (std::vector<std::string>{"ok hello", "EACCES", "ok one", "ok"})) << r.err;
    const std::string log = read_file(audit);
    // The kernel opened the two readable entries; the refusal and the creation were the broker's.
    EXPECT_FALSE(contains(log, dir / "pub/hello")) << log;
    EXPECT_FALSE(contains(log, "\"path\":\"" + dir / "one\"")) << log;
    EXPECT_TRUE(contains(log, "\"path\":\"" + dir / "prv/hello\",\"decision\":\"deny\"")) << log;
    EXPECT_TRUE(contains(log, dir / "out/new")) << log;
    // A batch the kernel opens whole never reaches the broker: nothing at all is audited for it.
    const std::string quiet = dir / "quiet.jsonl";
    const Outcome all =
        run_worker(dir, profile("kernel", rules()),
                   {{"batch", dir / "pub/hello", "rdonly", dir / "one", "rdonly"}}, {"--audit", quiet});
    EXPECT_EQ(all.lines(), (std::vector<std::string>{"ok hello", "ok one"})) << all.err;
    EXPECT_FALSE(contains(read_file(quiet), "\"op\":\"open")) << read_file(quiet);
}

// --- equivalence --------------------------------------------------------------------------------

std::string under(const std::string& top, const std::string& name) {
    std::string path = top;
    path += '/';
    path += name;
    return path;
}

// One random file tree in a directory, with the names of its parts.
struct Tree {
    std::vector<std::string> dirs;   // relative, "" is the top
    std::vector<std::string> files;  // relative
    std::vector<std::string> names;  // every name made (files, directories, links), relative
};

class Generator {
  public:
    explicit Generator(unsigned seed) : random_(seed) {}

    std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_); }
    bool chance(int percent) { return static_cast<int>(below(100)) < percent; }
    template <class T>
    const T& pick(const std::vector<T>& v) {
        return v[below(v.size())];
    }

    Tree make_tree(const std::string& top) {
        Tree tree;
        tree.dirs = {""};
        for (int i = 0; i < 6; ++i) {
            const std::string parent = pick(tree.dirs);
            const std::string d = (parent.empty() ? "" : parent + "/") + "d" + std::to_string(i);
            ::mkdir(under(top, d).c_str(), 0755);
            tree.dirs.push_back(d);
            tree.names.push_back(d);
        }
        for (int i = 0; i < 10; ++i) {
            const std::string parent = pick(tree.dirs);
            const std::string f = (parent.empty() ? "" : parent + "/") + "f" + std::to_string(i);
            // One file in ten only root may read: the worker's own permissions apply in both tiers.
            write_file(under(top, f), f, i == 7 ? 0600 : 0644);
            tree.files.push_back(f);
            tree.names.push_back(f);
        }
        add_links(top, tree);
        // A rename: a file takes another's name, and a directory moves.
        const std::string from = pick(tree.files);
        const std::string to = pick(tree.files);
        if (from != to && ::rename(under(top, from).c_str(), under(top, to).c_str()) == 0)
            std::erase(tree.files, from);
        const std::string d = tree.dirs[1 + below(tree.dirs.size() - 1)];
        const std::string moved = "moved" + std::to_string(below(1000));
        if (::rename(under(top, d).c_str(), under(top, moved).c_str()) == 0) tree.names.push_back(moved);
        return tree;
    }

    void add_links(const std::string& top, Tree& tree) {
        for (int i = 0; i < 8; ++i) {
            const std::string parent = pick(tree.dirs);
            const std::string link = (parent.empty() ? "" : parent + "/") + "l" + std::to_string(i);
            std::string target;
            switch (below(4)) {
                case 0:  // absolute, into the tree
                    target = under(top, pick(chance(50) ? tree.files : tree.dirs));
                    break;
                case 1: {  // relative, through ".."
                    std::string up;
                    for (std::size_t n =
                             std::count(parent.begin(), parent.end(), '/') + (parent.empty() ? 0 : 1);
                         n > 0; --n)
                        up += "../";
                    target = up + pick(chance(50) ? tree.files : tree.dirs);
                    if (target.empty()) target = ".";
                    break;
                }
                case 2:  // out of the tree
                    target = chance(50) ? "/etc/passwd" : "/etc/shadow";
                    break;
                default:  // nowhere
                    target = "missing" + std::to_string(i);
            }
            if (::symlink(target.c_str(), under(top, link).c_str()) == 0) tree.names.push_back(link);
        }
        for (int i = 0; i < 3; ++i) {
            const std::string parent = pick(tree.dirs);
            const std::string hard = (parent.empty() ? "" : parent + "/") + "h" + std::to_string(i);
            if (::link(under(top, pick(tree.files)).c_str(), under(top, hard).c_str()) == 0)
                tree.names.push_back(hard);
        }
    }

    // Read rules the key accepts: literal files (some absent) and trees.
    std::string rules(const std::string& top, const Tree& tree) {
        std::string read;
        const std::size_t count = 1 + below(4);
        for (std::size_t i = 0; i < count; ++i) {
            std::string rule;
            if (chance(50)) {
                const std::string d = pick(tree.dirs);
                rule = d.empty() ? top : under(top, d);
                rule += "/**";
            } else {
                const std::string name = chance(80) ? pick(tree.files) : "absent" + std::to_string(i);
                rule = under(top, name);
            }
            read += (read.empty() ? "\"" : ", \"") + rule + "\"";
        }
        return "read = [" + read + "]\n";
    }

    std::string path(const std::string& top, const Tree& tree) {
        std::string p = top;
        const std::size_t depth = 1 + below(4);
        for (std::size_t i = 0; i < depth; ++i) {
            const std::size_t kind = below(10);
            if (kind == 0)
                p += "/..";
            else if (kind == 1)
                p += "/nothing";
            else
                p += "/" + pick(tree.names);
        }
        return p;
    }

  private:
    std::mt19937 random_;
};

unsigned base_seed() {
    const char* env = std::getenv("FDBROKER_KREADS_SEED");
    return env != nullptr ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20261130U;
}

std::vector<std::string> open_all(const TempDir& dir, const std::string& policy,
                                  const std::vector<std::string>& paths) {
    std::vector<std::string> argv{staged(TRANSPARENT_WORKER), "opens"};
    argv.insert(argv.end(), paths.begin(), paths.end());
    const Outcome r = run_broker(dir, policy, argv, {"--transparent"});
    EXPECT_EQ(r.status, 0) << r.err;
    return r.lines();
}

std::string real_path(const std::string& path) {
    char buffer[PATH_MAX];
    return ::realpath(path.c_str(), buffer) != nullptr ? std::string(buffer) : std::string();
}

TEST(KernelReadsEquivalence, TheKernelGrantsExactlyTheFilesTheBrokerGrants) {
    if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    const unsigned seed = base_seed();
    // Both verdicts must occur, or the rounds proved nothing.
    std::size_t granted = 0;
    std::size_t refused = 0;
    for (unsigned round = 0; round < 30; ++round) {
        SCOPED_TRACE("reproduce with FDBROKER_KREADS_SEED=" + std::to_string(seed) + " (round " +
                     std::to_string(round) + ")");
        Generator generate(seed + round);
        TempDir dir;
        const std::string top = dir / "t";
        ::mkdir(top.c_str(), 0755);
        const Tree tree = generate.make_tree(top);
        const std::string rules = generate.rules(top, tree);
        std::vector<std::string> paths;
        paths.reserve(2 * (100 + tree.names.size()));
        for (int i = 0; i < 100; ++i)
            paths.push_back(generate.path(top, tree));
        // Every name of every file, and each path's real path: the broker's verdict on the files.
        for (const std::string& name : tree.names)
            paths.push_back(under(top, name));
        const std::size_t named = paths.size();
        for (std::size_t i = 0; i < named; ++i)
            if (std::string real = real_path(paths[i]); !real.empty()) paths.push_back(real);

        const std::vector<std::string> broker = open_all(dir, profile("broker", rules), paths);
        const std::vector<std::string> kernel = open_all(dir, profile("kernel", rules), paths);
        ASSERT_EQ(broker.size(), paths.size()) << rules;
        ASSERT_EQ(kernel.size(), paths.size()) << rules;
        std::set<std::string> broker_files;
        for (const std::string& line : broker)
            if (line.rfind("ok ", 0) == 0) broker_files.insert(line);
        for (std::size_t i = 0; i < paths.size(); ++i) {
            // The runtime include's "/" exactly, a directory, is the one grant the kernel tier leaves out
            // (docs/policy.md): a plain read-only open of "/" is refused there.
            if (real_path(paths[i]) == "/") continue;
            const bool broker_ok = broker[i].rfind("ok ", 0) == 0;
            const bool kernel_ok = kernel[i].rfind("ok ", 0) == 0;
            ++(kernel_ok ? granted : refused);
            if (broker_ok) {
                EXPECT_EQ(kernel[i], broker[i]) << "the broker grants " << paths[i] << ", the kernel not\n"
                                                << rules;
            }
            if (kernel_ok) {
                EXPECT_TRUE(broker_files.contains(kernel[i]))
                    << "the kernel grants " << paths[i] << " (" << real_path(paths[i])
                    << "), a file the broker grants by no name\n"
                    << rules;
            }
        }
        if (::testing::Test::HasFailure()) break;
    }
    EXPECT_GT(granted, 100U);
    EXPECT_GT(refused, 100U);
}

}  // namespace
}  // namespace fdbroker::test
