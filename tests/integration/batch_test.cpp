// fdbroker_open_many end to end: the real `fdbroker run`, a real worker, real files. Each entry of a
// batch is decided, performed and audited as a lone fdbroker_open would be.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

class Batch : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir((dir / "ro").c_str(), 0755);
        ::mkdir((dir / "ro/secret").c_str(), 0755);
        ::mkdir((dir / "rw").c_str(), 0755);
        write_file(dir / "ro/file", "read-only content");
        write_file(dir / "ro/secret/key", "secret");
        write_file(dir / "outside", "outside");
    }
    std::string policy(const std::string& extra = {}) const {
        const std::string& d = dir.path();
        return "version = 1\n[profile.default]\nread = [\"" + d + "/ro/**\"]\nwrite = [\"" + d +
               "/rw/**\"]\ncreate = [\"" + d + "/rw/**\"]\ndeny = [\"" + d + "/ro/secret/**\"]\n" + extra;
    }
    std::vector<std::string> run(const Script& script, const std::vector<std::string>& extra = {},
                                 const std::string& policy_extra = {}) {
        const Outcome o = run_worker(dir, policy(policy_extra), script, extra);
        EXPECT_EQ(o.status, 0) << o.err;
        return o.lines();
    }
    // The mix every batch test starts from: allowed, denied by a deny rule, missing, outside every
    // rule (existing or not), created, and a write where only reading is granted.
    std::vector<std::vector<std::string>> mix() const {
        return {{dir / "ro/file", "rdonly"},    {dir / "ro/secret/key", "rdonly"},
                {dir / "ro/missing", "rdonly"}, {dir / "outside", "rdonly"},
                {dir / "nowhere", "rdonly"},    {dir / "rw/new", "wronly|creat"},
                {dir / "ro/file", "wronly"},    {dir / "ro/secret/none", "rdonly"}};
    }
    TempDir dir;
};

TEST_F(Batch, EachEntryGetsWhatALoneOpenGets) {
    std::vector<std::string> batch{"batch"};
    Script singles;
    for (const auto& entry : mix()) {
        batch.insert(batch.end(), entry.begin(), entry.end());
        singles.push_back({"open", entry[0], entry[1]});
    }
    const std::vector<std::string> expected = {
        "ok read-only content", "EACCES", "ENOENT", "EACCES", "EACCES", "ok", "EACCES", "EACCES"};
    EXPECT_EQ(run({batch}), expected);
    EXPECT_TRUE(exists(dir / "rw/new"));
    ::unlink((dir / "rw/new").c_str());
    // The same opens one at a time: the same answers ("ok" alone: `open` prints no content).
    std::vector<std::string> lone = run(singles);
    ASSERT_EQ(lone.size(), expected.size());
    lone[0] = "ok read-only content";
    EXPECT_EQ(lone, expected);
}

TEST_F(Batch, EveryEntryIsAudited) {
    std::vector<std::string> batch{"batch"};
    for (const auto& entry : mix())
        batch.insert(batch.end(), entry.begin(), entry.end());
    const std::string audit = dir / "audit.jsonl";
    run({batch}, {"--audit", audit});
    const std::string stream = read_file(audit);
    EXPECT_EQ(count(stream, "\"op\":\"open\""), mix().size()) << stream;
    EXPECT_EQ(count(stream, "\"path\":\"" + dir / "ro/secret/key\""), 1u) << stream;
    EXPECT_EQ(count(stream, "\"path\":\"" + dir / "nowhere\""), 1u) << stream;
}

TEST_F(Batch, DescriptorsAreCloseOnExecOnlyWhenAsked) {
    EXPECT_EQ(run({{"batch-cloexec", dir / "ro/file"}}), (std::vector<std::string>{"cloexec=1 cloexec=0"}));
}

TEST_F(Batch, TheLargestBatchAndOneTooMany) {
    EXPECT_EQ(run({{"batch-same", dir / "ro/file", "64"},
                   {"batch-too-many"},
                   {"batch-same", dir / "ro/file", "1"}}),
              (std::vector<std::string>{"ok opened=64 failed=0 (-)", "EINVAL", "ok opened=1 failed=0 (-)"}));
}

TEST_F(Batch, MalformedBatchesEndTheirChannelOnly) {
    EXPECT_EQ(
        run({{"raw-batch", "count-mismatch"},
             {"raw-batch", "zero"},
             {"raw-batch", "over-max"},
             {"raw-batch", "truncated-entry"},
             {"raw-batch", "long-length"},
             {"batch", dir / "ro/file", "rdonly"}}),
        (std::vector<std::string>{"closed", "closed", "closed", "closed", "closed", "ok read-only content"}));
}

TEST_F(Batch, AnotherProcessIsUnaffectedByMalformedBatches) {
    EXPECT_EQ(run({{"raw-batch-while-busy", dir / "ro/file", "50"}}),
              (std::vector<std::string>{"child ok failures=0", "parent closed=20"}));
}

TEST_F(Batch, EveryDescriptorCountsAgainstTheQuota) {
    // A channel may have 4 descriptors in flight: a batch gets 4, the rest fail as open(2) past its
    // limit does, and once they are received the next batch gets 4 again.
    EXPECT_EQ(run({{"batch-same", dir / "ro/file", "10"}, {"batch-same", dir / "ro/file", "10"}}, {},
                  "quota = { descriptors = 4 }\n"),
              (std::vector<std::string>{"ok opened=4 failed=6 (EMFILE)", "ok opened=4 failed=6 (EMFILE)"}));
}

}  // namespace
}  // namespace fdbroker::test
