// `fdbroker explain`: the real binary on one request, and on the audit stream of a real run.
#include <gtest/gtest.h>

#include <string>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

class Explain : public ::testing::Test {
  protected:
    void SetUp() override {
        write_file(policy,
                   "version = 1\n"
                   "[profile.default]\n"
                   "read = [\"" +
                       dir.path() +
                       "/pub/**\"]\n"
                       "deny = [\"" +
                       dir.path() +
                       "/pub/private/**\"]\n"
                       "connect = [\"tcp:10.0.0.0/8:5432\"]\n"
                       "[profile.other]\n"
                       "write = [\"" +
                       dir.path() + "/out/*\"]\n");
    }
    Outcome explain(std::vector<std::string> words) {
        words.insert(words.begin(), {fdbroker_bin(), "explain", "--policy", policy});
        return run_command(words);
    }
    TempDir dir;
    std::string policy = dir / "policy.toml";
};

TEST_F(Explain, AnAllowedRequestExitsZeroAndNamesItsRule) {
    const Outcome o = explain({"open", dir / "pub/a/../img.png", "r"});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_TRUE(contains(o.out, ": allowed")) << o.out;
    EXPECT_TRUE(contains(o.out, policy + ":3:9 read \"" + dir / "pub/**\"   <- decides")) << o.out;
    EXPECT_TRUE(contains(o.out, "judged as " + dir / "pub/img.png")) << "lexically normalised: " << o.out;
    EXPECT_FALSE(exists(dir / "pub")) << "nothing needs to exist";
}

TEST_F(Explain, ADeniedRequestExitsOneAndSaysWhy) {
    Outcome o = explain({"open", dir / "pub/private/key", "r"});
    EXPECT_EQ(o.status, 1) << o.err;
    EXPECT_TRUE(contains(o.out, "denied (EACCES)")) << o.out;
    EXPECT_TRUE(contains(o.out, policy + ":4:9 deny \"" + dir / "pub/private/**\"   <- decides")) << o.out;
    EXPECT_TRUE(contains(o.out, "a deny beats every grant")) << o.out;

    o = explain({"open", dir / "pub/x", "rw"});
    EXPECT_EQ(o.status, 1);
    EXPECT_TRUE(contains(o.out, "no matching rule grants write: denied by default")) << o.out;
    EXPECT_TRUE(contains(o.out, "seccomp filter")) << "the enforcing layers: " << o.out;

    o = explain({"--profile", "other", "open", dir / "out/x", "w"});
    EXPECT_EQ(o.status, 0) << o.out << o.err;
}

TEST_F(Explain, SocketsAndJson) {
    Outcome o = explain({"--json", "connect", "tcp:10.1.2.3:5432"});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_TRUE(contains(o.out, "\"decision\":\"allow\"")) << o.out;
    EXPECT_TRUE(contains(o.out, "\"rule\":{\"at\":\"" + policy + ":5:12\",\"kind\":\"connect\"")) << o.out;
    o = explain({"--json", "listen", "tcp:10.1.2.3:5432"});
    EXPECT_EQ(o.status, 1);
    EXPECT_TRUE(contains(o.out, "\"decision\":\"deny\",\"errno\":13")) << o.out;
}

TEST_F(Explain, MistakesExitTwo) {
    EXPECT_EQ(explain({"open", "relative/path"}).status, 2);
    EXPECT_EQ(explain({"frobnicate", "/x"}).status, 2);
    EXPECT_EQ(explain({}).status, 2);
    const Outcome o = explain({"--profile", "nope", "stat", "/x"});
    EXPECT_EQ(o.status, 2);
    EXPECT_TRUE(contains(o.err, "it has: default, other")) << o.err;
    write_file(dir / "bad.toml", "version = 1\n[profile.p]\nreed = []\n");
    const Outcome bad = run_command({fdbroker_bin(), "explain", "--policy", dir / "bad.toml", "stat", "/x"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_TRUE(contains(bad.err, "bad.toml:3:1: error: unknown key 'reed'")) << bad.err;
    EXPECT_TRUE(contains(run_command({fdbroker_bin(), "explain", "--help"}).out, "OP TARGET"));
    EXPECT_TRUE(contains(run_command({fdbroker_bin(), "--help"}).out, "fdbroker explain"));
    EXPECT_TRUE(contains(run_command({fdbroker_bin(), "--help"}).out, "fdbroker doctor"));
}

TEST_F(Explain, AuditSummarisesTheDenialsOfARealRun) {
    ::mkdir((dir / "pub").c_str(), 0755);
    write_file(dir / "pub/hello", "hello\n");
    const std::string audit = dir / "audit.jsonl";
    const Outcome run = run_worker(dir, read_file(policy),
                                   {{"read", dir / "pub/hello"},
                                    {"read", dir / "data/a"},
                                    {"read", dir / "data/b"},
                                    {"read", dir / "data/c"},
                                    {"read", dir / "pub/private/k"}},
                                   {"--audit", audit});
    ASSERT_EQ(run.status, 0) << run.err;
    EXPECT_TRUE(contains(read_file(audit), "\"need\":\"read\"")) << read_file(audit);
    const Outcome o = run_command({fdbroker_bin(), "explain", "--policy", policy, "--audit", audit});
    EXPECT_EQ(o.status, 1) << "denials remain: " << o.err;
    EXPECT_TRUE(contains(o.out, "4 denials")) << o.out;
    EXPECT_TRUE(contains(o.out, "read = [\"" + dir / "data/*\"]")) << o.out;
    EXPECT_TRUE(contains(o.out, "add it to the 'read' list of [profile.default] (" + policy + ":3)"))
        << o.out;
    EXPECT_TRUE(contains(o.out, "refused by " + policy + ":4:9 deny")) << o.out;
    const Outcome json =
        run_command({fdbroker_bin(), "explain", "--policy", policy, "--audit", audit, "--json"});
    EXPECT_TRUE(contains(json.out, "\"suggestion\":\"read = [\\\"" + dir / "data/*\\\"]\"")) << json.out;
}

}  // namespace
}  // namespace fdbroker::test
