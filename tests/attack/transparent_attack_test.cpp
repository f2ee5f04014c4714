// Transparent mode against a hostile program: the broker writes results into the caller's memory, so
// it must write only where the caller itself could.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

TEST(TransparentAttack, ResultsAreNeverWrittenIntoReadOnlyMemory) {
    // A program that made a page read-only (its GOT after relocation, sealed data) must not be able to
    // have the broker write there: stat and readlink into it fail with EFAULT, as natively, even when
    // the buffer starts on a writable page.
    if (!is_root()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    TempDir dir;
    write_file(dir / "file", "x");
    ASSERT_EQ(::symlink("file", (dir / "link").c_str()), 0);
    const Outcome native = run_command({TRANSPARENT_WORKER, "readonly", dir / "file", dir / "link"});
    // (readlink writes only the target's four bytes, all on the writable page.)
    ASSERT_EQ(native.out, "stat=14 stat-straddling=14 readlink=14 readlink-straddling=ok\n") << native.err;
    const std::string policy =
        "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nread = [\"" + dir.path() + "/**\"]\n";
    const Outcome o = run_broker(dir, policy, {TRANSPARENT_WORKER, "readonly", dir / "file", dir / "link"},
                                 {"--transparent"});
    EXPECT_EQ(o.out, native.out) << o.err;
}

}  // namespace
}  // namespace fdbroker::test
