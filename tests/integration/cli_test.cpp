// The command line (Contract 1): exit statuses, `check` diagnostics, the audit stream, identity.
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>
#include <sstream>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

std::string simple_policy(const TempDir& dir) {
    return "version = 1\n"
           "[profile.default]\n"
           "read = [\"" +
           dir.path() +
           "/pub/**\"]\n"
           "deny = [\"" +
           dir.path() +
           "/pub/private/**\"]\n"
           "\n"
           "[profile.other]\n"
           "read = [\"" +
           dir.path() + "/other\"]\n";
}

// simple_policy with extra settings in its default profile.
std::string simple_policy(const TempDir& dir, const std::string& default_extra) {
    std::string policy = simple_policy(dir);
    policy.insert(policy.find("[profile.default]\n") + 18, default_extra);
    return policy;
}

class Cli : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "pub").c_str(), 0755);
        ::mkdir((dir / "pub/private").c_str(), 0755);
        write_file(dir / "pub/hello", "hello");
        write_file(dir / "pub/private/key", "key");
        write_file(dir / "other", "other");
    }
    TempDir dir;
};

TEST_F(Cli, ExitStatusIsTheWorkersOwn) {
    EXPECT_EQ(run_worker(dir, simple_policy(dir), {{"exit", "0"}}).status, 0);
    EXPECT_EQ(run_worker(dir, simple_policy(dir), {{"exit", "3"}}).status, 3);
    EXPECT_EQ(run_worker(dir, simple_policy(dir), {{"kill-self", std::to_string(SIGTERM)}}).status,
              128 + SIGTERM);
}

TEST_F(Cli, ExitStatusForFailuresBeforeTheWorkerRuns) {
    const Outcome not_found = run_broker(dir, simple_policy(dir), {dir / "no-such-program"});
    EXPECT_EQ(not_found.status, 127);
    EXPECT_NE(not_found.err.find("fdbroker: "), std::string::npos) << not_found.err;
    write_file(dir / "not-executable", "#!/bin/sh\n", 0644);
    EXPECT_EQ(run_broker(dir, simple_policy(dir), {dir / "not-executable"}).status, 126);
    if (is_root()) {  // a program only root can reach: the worker (nobody) cannot run it
        ::mkdir((dir / "private").c_str(), 0700);
        write_file(dir / "private/prog", "#!/bin/sh\n", 0755);
        const Outcome hidden = run_broker(dir, simple_policy(dir), {dir / "private/prog"});
        EXPECT_EQ(hidden.status, 126);
        EXPECT_NE(hidden.err.find("Permission denied"), std::string::npos) << hidden.err;
    }
    EXPECT_EQ(run_broker(dir, "version = 2\n", {worker_bin()}).status, 125);
    EXPECT_EQ(run_broker(dir, simple_policy(dir), {worker_bin()}, {"--profile", "missing"}).status, 125);
    EXPECT_EQ(run_command({fdbroker_bin(), "run", "--", worker_bin()}).status, 125);  // no --policy
}

TEST_F(Cli, TheBrokerIsConfinedBeforeTheProgramStarts) {
    if (!is_root()) GTEST_SKIP() << "a broker that is not root holds no capabilities to drop";
    // The runtime include lets a dynamically linked program start in transparent mode.
    write_file(dir / "policy.toml", simple_policy(dir, "include = [\"runtime\"]\n"));
    for (const bool transparent : {false, true}) {
        std::vector<std::string> argv{fdbroker_bin(), "run", "--policy", dir / "policy.toml"};
        if (transparent) argv.emplace_back("--transparent");
        argv.emplace_back("--");
        // A program built without sanitizers: an instrumented one cannot start as a transparent worker
        // (its runtime reads /proc/self, which transparent mode refuses).
        for (const char* word : {"/bin/sh", "-c", "echo waiting; read line"})
            argv.emplace_back(word);
        Process broker(argv);
        ASSERT_EQ(broker.read_line(), "waiting");
        // The broker confined itself while the worker set itself up, before letting its exec through:
        // by the time the program speaks there is nothing left to wait for.
        EXPECT_EQ(proc_status_field(broker.pid(), "Seccomp"), "2");
        EXPECT_EQ(proc_status_field(broker.pid(), "NoNewPrivs"), "1");
        // chown dac_override dac_read_search fowner kill setgid setuid (bits 0-3, 5-7), and for
        // transparent mode sys_ptrace (bit 19): reading the worker's memory and descriptors.
        const std::string kept = transparent ? "00000000000800ef" : "00000000000000ef";
        EXPECT_EQ(proc_status_field(broker.pid(), "CapPrm"), kept);
        EXPECT_EQ(proc_status_field(broker.pid(), "CapBnd"), kept);
        // Between a transparent worker's calls the thread that served them may still hold the worker's
        // file identity, with sys_ptrace alone effective (worker_identity.hpp).
        const std::string effective = proc_status_field(broker.pid(), "CapEff");
        if (transparent && effective == "0000000000080000") {
            EXPECT_EQ(proc_status_field(broker.pid(), "Uid").substr(0, 6), "0\t0\t0\t");
        } else {
            EXPECT_EQ(effective, kept);
        }
        broker.write("\n");
        EXPECT_EQ(broker.wait().status, 0);
    }
}

TEST_F(Cli, ProfileSelectsTheRules) {
    const Script script{{"read", dir / "pub/hello"}, {"read", dir / "other"}};
    EXPECT_EQ(run_worker(dir, simple_policy(dir), script).lines(),
              (std::vector<std::string>{"ok hello", "EACCES"}));
    EXPECT_EQ(run_worker(dir, simple_policy(dir), script, {"--profile", "other"}).lines(),
              (std::vector<std::string>{"EACCES", "ok other"}));
}

TEST_F(Cli, ProgramArgumentsAreNotTakenAsOptions) {
    // No "--": the program starts at the first word that is not an option.
    write_file(dir / "policy.toml", simple_policy(dir));
    const Outcome o = run_command(
        {fdbroker_bin(), "run", "--policy", dir / "policy.toml", worker_bin(), "read", dir / "pub/hello"});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok hello"}));
}

TEST_F(Cli, AuditWritesOneJsonLinePerDecisionNamingTheRule) {
    const std::string audit = dir / "audit.jsonl";
    const Outcome o =
        run_worker(dir, simple_policy(dir),
                   {{"read", dir / "pub/hello"}, {"read", dir / "pub/private/key"}, {"read", dir / "other"}},
                   {"--audit", audit});
    ASSERT_EQ(o.status, 0) << o.err;
    std::istringstream lines(read_file(audit));
    std::vector<std::string> records;
    for (std::string l; std::getline(lines, l);)
        records.push_back(l);
    ASSERT_EQ(records.size(), 3u);
    const std::string policy_file = dir / "policy.toml";
    EXPECT_NE(records[0].find("\"op\":\"open\""), std::string::npos) << records[0];
    EXPECT_NE(records[0].find("\"decision\":\"allow\""), std::string::npos) << records[0];
    EXPECT_NE(records[0].find("\"rule\":\"" + policy_file + ":3\""), std::string::npos) << records[0];
    EXPECT_NE(records[0].find("\"errno\":0"), std::string::npos) << records[0];
    EXPECT_NE(records[1].find("\"decision\":\"deny\""), std::string::npos) << records[1];
    EXPECT_NE(records[1].find("\"rule\":\"" + policy_file + ":4\""), std::string::npos) << records[1];
    EXPECT_NE(records[1].find("\"errno\":13"), std::string::npos) << records[1];
    EXPECT_NE(records[2].find("\"rule\":null"), std::string::npos) << records[2];
    for (const auto& r : records) {
        EXPECT_TRUE(
            std::regex_search(r, std::regex(R"(^\{"time":"\d{4}-\d\d-\d\dT[0-9:.]+Z","pid":\d+,"uid":\d+,)")))
            << r;
        EXPECT_NE(r.find("\"profile\":\"default\""), std::string::npos);
    }
}

TEST_F(Cli, AuditDashIsStandardErrorForRun) {
    // Standard output is the program's: JSON lines must not interleave with it.
    const Outcome o = run_worker(dir, simple_policy(dir), {{"read", dir / "pub/hello"}}, {"--audit", "-"});
    ASSERT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"ok hello"}));
    EXPECT_NE(o.err.find("\"decision\":\"allow\""), std::string::npos) << o.err;
}

TEST_F(Cli, WorkerRunsAsTheProfileUserWithoutPrivileges) {
    if (!is_root()) GTEST_SKIP() << "switching identity needs a root broker";
    std::string policy = simple_policy(dir);
    EXPECT_EQ(run_worker(dir, policy, {{"uid"}}).lines(), (std::vector<std::string>{"ok 65534 65534"}));
    policy.replace(policy.find("[profile.default]\n"), 18, "[profile.default]\nuser = \"daemon\"\n");
    EXPECT_EQ(run_worker(dir, policy, {{"uid"}}).lines(), (std::vector<std::string>{"ok 1 1"}));
    // The worker holds no capabilities and cannot regain any: the shell reads its own /proc/self/status
    // with built-ins (Landlock lets a worker read its own /proc entry, and exec is off by default).
    write_file(dir / "policy.toml", simple_policy(dir));
    const std::string print_status_lines =
        "while read -r line; do case $line in Cap*|NoNewPrivs*|Seccomp*|Groups*) echo \"$line\";; esac; done "
        "< /proc/self/status";
    const Outcome caps = run_command(
        {fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--", "/bin/sh", "-c", print_status_lines});
    ASSERT_EQ(caps.status, 0) << caps.err;
    EXPECT_NE(caps.out.find("CapPrm:\t0000000000000000"), std::string::npos) << caps.out;
    EXPECT_NE(caps.out.find("CapEff:\t0000000000000000"), std::string::npos) << caps.out;
    EXPECT_NE(caps.out.find("CapBnd:\t0000000000000000"), std::string::npos) << caps.out;
    EXPECT_NE(caps.out.find("CapAmb:\t0000000000000000"), std::string::npos) << caps.out;
    EXPECT_NE(caps.out.find("NoNewPrivs:\t1"), std::string::npos) << caps.out;
    EXPECT_NE(caps.out.find("Seccomp:\t2"), std::string::npos) << caps.out;
    EXPECT_TRUE(std::regex_search(caps.out, std::regex("Groups:[ \t]*\n"))) << caps.out;
}

TEST_F(Cli, WorkerInheritsOnlyStdioAndTheChannel) {
    write_file(dir / "policy.toml", simple_policy(dir));
    const Outcome o =
        run_command({fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--", "/bin/sh", "-c",
                     "for f in /proc/self/fd/*; do echo ${f##*/}; done; echo FD=$FDBROKER_FD"});
    ASSERT_EQ(o.status, 0) << o.err;
    // The glob itself holds one directory fd; beyond that only 0, 1, 2 and the channel 3.
    std::vector<std::string> fds = o.lines();
    ASSERT_FALSE(fds.empty());
    EXPECT_EQ(fds.back(), "FD=3");
    fds.pop_back();
    EXPECT_LE(fds.size(), 5u) << o.out;
    EXPECT_EQ(fds[0], "0");
    EXPECT_EQ(fds[3], "3");
}

TEST_F(Cli, ACWorkerLinkedWithTheSharedLibrary) {
    const Outcome o =
        run_broker(dir, simple_policy(dir, "runtime = [\"" + std::string(shared_library_dir()) + "\"]\n"),
                   {c_worker_bin(), dir / "pub/hello", dir / "pub/private/key"});
    EXPECT_EQ(o.status, 1) << o.err;
    EXPECT_EQ(o.lines(),
              (std::vector<std::string>{dir / "pub/hello" + ": hello",
                                        dir / "pub/private/key" + ": Permission denied (EACCES)"}));
}

TEST(Check, ValidPolicyExitsZero) {
    TempDir dir;
    write_file(dir / "ok.toml", "version = 1\n[profile.default]\nread = [\"/etc/hostname\"]\n");
    const Outcome o = run_command({fdbroker_bin(), "check", dir / "ok.toml"});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.err, "");
}

TEST(Check, EveryMistakeIsReportedWithItsPosition) {
    TempDir dir;
    const std::string file = dir / "bad.toml";
    write_file(file,
               "version = 1\n"
               "[profile.default]\n"
               "reed = [\"/etc/hostname\"]\n"
               "read = [\"etc/hostname\", \"/usr/**x\"]\n"
               "write = \"/tmp/x\"\n");
    const Outcome o = run_command({fdbroker_bin(), "check", file});
    EXPECT_EQ(o.status, 1);
    std::istringstream s(o.err);
    std::vector<std::string> lines;
    for (std::string l; std::getline(s, l);)
        lines.push_back(l);
    ASSERT_EQ(lines.size(), 4u) << o.err;
    EXPECT_TRUE(lines[0].starts_with(file + ":3:1: error: ")) << lines[0];
    EXPECT_TRUE(lines[1].starts_with(file + ":4:")) << lines[1];
    EXPECT_TRUE(lines[2].starts_with(file + ":4:")) << lines[2];
    EXPECT_TRUE(lines[3].starts_with(file + ":5:9: error: ")) << lines[3];
}

TEST(Check, SyntaxErrorsAndDuplicateProfiles) {
    TempDir dir;
    write_file(dir / "dup.toml", "version = 1\n[profile.a]\n[profile.a]\n");
    const Outcome o = run_command({fdbroker_bin(), "check", dir / "dup.toml"});
    EXPECT_EQ(o.status, 1);
    EXPECT_TRUE(o.err.starts_with(dir / "dup.toml" + ":3:")) << o.err;
    EXPECT_EQ(run_command({fdbroker_bin(), "check", dir / "missing.toml"}).status, 1);
}

TEST(CliUsage, HelpAndVersion) {
    EXPECT_EQ(run_command({fdbroker_bin(), "--version"}).out, "fdbroker 0.1.0\n");
    const Outcome help = run_command({fdbroker_bin(), "--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("fdbroker run"), std::string::npos);
    EXPECT_NE(run_command({fdbroker_bin(), "run", "--help"}).out.find("--policy"), std::string::npos);
    EXPECT_NE(run_command({fdbroker_bin(), "check", "--help"}).out.find("FILE:LINE:COL"), std::string::npos);
    EXPECT_EQ(run_command({fdbroker_bin(), "frobnicate"}).status, 2);
    const Outcome serve_help = run_command({fdbroker_bin(), "serve", "--help"});
    EXPECT_EQ(serve_help.status, 0);
    EXPECT_NE(serve_help.out.find("--socket-group"), std::string::npos);
    EXPECT_NE(help.out.find("fdbroker serve"), std::string::npos);
}

TEST(CliUsage, ServeRefusesBadOptionsAndBadPolicies) {
    TempDir dir;
    write_file(dir / "bad.toml", "version = 1\n[profile.p]\nread = [\"relative\"]\n");
    const std::string socket = dir / "s.sock";
    EXPECT_EQ(run_command({fdbroker_bin(), "serve"}).status, 2) << "--policy is required";
    Outcome o = run_command({fdbroker_bin(), "serve", "--policy", dir / "bad.toml", "--socket-mode", "0999"});
    EXPECT_EQ(o.status, 2);
    EXPECT_NE(o.err.find("--socket-mode must be an octal mode"), std::string::npos) << o.err;
    o = run_command({fdbroker_bin(), "serve", "--policy", dir / "bad.toml", "--socket", socket});
    EXPECT_EQ(o.status, 1);
    EXPECT_TRUE(o.err.starts_with("fdbroker: " + dir.path() + "/bad.toml:3:")) << o.err;
    EXPECT_FALSE(exists(socket)) << "nothing is set up for a policy that does not load";
    write_file(dir / "good.toml", "version = 1\n[profile.p]\nclients = { users = [1001] }\n");
    o = run_command({fdbroker_bin(), "serve", "--policy", dir / "good.toml", "--socket", "relative.sock"});
    EXPECT_EQ(o.status, 1);
    EXPECT_NE(o.err.find("give an absolute path or @name"), std::string::npos) << o.err;
    o = run_command(
        {fdbroker_bin(), "serve", "--policy", dir / "bad.toml", "--socket-group", "no-such-group-x"});
    EXPECT_EQ(o.status, 1);
    EXPECT_NE(o.err.find("no group 'no-such-group-x'"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace fdbroker::test
