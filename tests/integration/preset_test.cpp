// The default system call preset end to end: a harmless call the preset does not allow fails with its
// errno and one log line per call, never death, in library and transparent mode; and every refusal,
// the filter's quiet ones included, reaches the audit stream with the call's name and the profile.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

// How often `what` occurs in `text`.
std::size_t count(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

class Preset : public ::testing::Test {
  protected:
    // on_violation stays "kill": a refusal of the preset must not kill.
    std::string policy(const std::string& extra = {}) const {
        return "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nread = [\"" + dir.path() +
               "/**\"]\n" + extra;
    }
    TempDir dir;
};

TEST_F(Preset, LibraryModeRefusesHarmlessCallsWithTheirErrnoAndLogsOnce) {
    const std::string audit = dir / "audit.jsonl";
    const Outcome o = run_worker(dir, policy(),
                                 {{"direct", "syscall", "mbind"},
                                  {"direct", "syscall", "mbind"},
                                  {"direct", "syscall", "get_mempolicy"},
                                  {"direct", "syscall", "set_mempolicy"},
                                  {"direct", "syscall", "capset"},
                                  {"direct", "syscall", "times"},
                                  {"pid"}},
                                 {"--audit", audit});
    EXPECT_EQ(o.status, 0) << o.err;
    const std::vector<std::string> lines = o.lines();
    ASSERT_EQ(lines.size(), 7U) << o.out << o.err;
    EXPECT_EQ(std::vector<std::string>(lines.begin(), lines.begin() + 6),
              (std::vector<std::string>{"ENOSYS", "ENOSYS", "ENOSYS", "ENOSYS", "EPERM", "ok"}));
    EXPECT_EQ(count(o.err,
                    "called mbind, which its profile does not allow: ENOSYS (logged once). To allow "
                    "it: syscalls.allow = [\"mbind\"] in profile 'default'"),
              1U)
        << o.err;
    EXPECT_EQ(count(o.err, "called get_mempolicy, which its profile does not allow: ENOSYS"), 1U) << o.err;
    EXPECT_EQ(count(o.err, "called capset, which its profile does not allow: EPERM"), 1U) << o.err;
    EXPECT_FALSE(contains(o.err, "times")) << o.err;
    // Each refusal is a record, the repeated one too.
    const std::string log = read_file(audit);
    EXPECT_EQ(count(log, "\"profile\":\"default\",\"op\":\"syscall\",\"path\":\"\",\"syscall\":\"mbind\""),
              2U)
        << log;
    EXPECT_TRUE(contains(log,
                         "\"syscall\":\"capset\",\"decision\":\"deny\",\"rule\":null,\"errno\":1,\"error\":"
                         "\"EPERM\""))
        << log;
}

TEST_F(Preset, QuietRefusalsOfTheFilterAreAudited) {
    const std::string audit = dir / "audit.jsonl";
    write_file(dir / "file", "x");
    const Outcome o = run_worker(dir, policy(),
                                 {{"direct", "syscall", "chmod"},
                                  {"direct", "socket", "inet"},
                                  {"direct", "open", dir / "file", "wronly"},
                                  {"pid"}},
                                 {"--audit", audit});
    EXPECT_EQ(o.status, 0) << o.err;
    const std::vector<std::string> lines = o.lines();
    ASSERT_EQ(lines.size(), 4U) << o.out << o.err;
    EXPECT_EQ(std::vector<std::string>(lines.begin(), lines.begin() + 3),
              (std::vector<std::string>{"EACCES", "EACCES", "EACCES"}));
    EXPECT_FALSE(contains(o.err, "does not allow")) << "quiet refusals are not logged: " << o.err;
    const std::string log = read_file(audit);
    for (const char* call : {"chmod", "socket", "openat"})
        EXPECT_TRUE(
            contains(log, std::string("\"syscall\":\"") + call +
                              "\",\"decision\":\"deny\",\"rule\":null,\"errno\":13,\"error\":\"EACCES\""))
            << call << "\n"
            << log;
}

TEST_F(Preset, FatalCallsAreAuditedAsKills) {
    const std::string audit = dir / "audit.jsonl";
    const Outcome o = run_worker(dir, policy(), {{"direct", "syscall", "bpf"}, {"pid"}}, {"--audit", audit});
    EXPECT_EQ(o.status, 159) << o.err;
    EXPECT_TRUE(contains(read_file(audit),
                         "\"syscall\":\"bpf\",\"decision\":\"deny\",\"rule\":null,\"errno\":0,"
                         "\"killed\":true"))
        << read_file(audit);
}

TEST_F(Preset, TransparentModeRefusesHarmlessCallsWithTheirErrnoAndLogsOnce) {
    if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    const std::string audit = dir / "audit.jsonl";
    const Outcome o = run_broker(
        dir, policy(),
        {staged(TRANSPARENT_WORKER), "call", "mbind", "get_mempolicy", "set_mempolicy", "mbind", "times"},
        {"--transparent", "--audit", audit});
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.out, "mbind ENOSYS\nget_mempolicy ENOSYS\nset_mempolicy ENOSYS\nmbind ENOSYS\ntimes ok\n")
        << o.err;
    EXPECT_EQ(count(o.err, "called mbind, which its profile does not allow: ENOSYS"), 1U) << o.err;
    EXPECT_EQ(count(o.err, "called get_mempolicy, which its profile does not allow: ENOSYS"), 1U) << o.err;
    EXPECT_EQ(count(read_file(audit), "\"syscall\":\"mbind\""), 2U) << read_file(audit);
}

TEST_F(Preset, TransparentModeStillKillsForAFatalCall) {
    if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    const Outcome o = run_broker(
        dir, policy(), {staged(TRANSPARENT_WORKER), "call", "times", "ptrace", "times"}, {"--transparent"});
    EXPECT_EQ(o.status, 159) << o.err;
    EXPECT_EQ(o.out, "times ok\n");
    EXPECT_TRUE(contains(o.err,
                         "called ptrace, which its profile does not allow: killed (status 159). To allow "
                         "it: syscalls.allow = [\"ptrace\"] in profile 'default', or on_violation = "
                         "\"errno\""))
        << o.err;
    // Under on_violation = "errno" the call fails with EPERM instead.
    const Outcome e = run_broker(dir, policy("on_violation = \"errno\"\n"),
                                 {staged(TRANSPARENT_WORKER), "call", "ptrace", "ptrace"}, {"--transparent"});
    EXPECT_EQ(e.status, 0) << e.err;
    EXPECT_EQ(e.out, "ptrace EPERM\nptrace EPERM\n");
    EXPECT_EQ(count(e.err, "called ptrace, which its profile does not allow: EPERM"), 1U) << e.err;
}

}  // namespace
}  // namespace fdbroker::test
