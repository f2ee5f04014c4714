// The lexical path rules of policy/path.hpp: the one normaliser, which symlink targets (from the real
// directory of the link) and transparent mode's relative paths (from the caller's cwd or dirfd) both
// go through.
#include "policy/path.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fdbroker::policy {
namespace {

TEST(JoinLexically, RelativeAbsoluteAndDots) {
    struct Case {
        const char* base;
        const char* path;
        const char* joined;
    };
    const Case cases[] = {
        {"/a/b", "c", "/a/b/c"},     {"/a/b", "../c/./d", "/a/c/d"},
        {"/a/b", "/x//y/", "/x/y"},  {"/", "../../..", "/"},
        {"/", "etc", "/etc"},        {"", "etc", "/etc"},
        {"/a/b", ".", "/a/b"},       {"/a/b", "..", "/a"},
        {"/a/b", "../..", "/"},      {"/a/b", "../../../..", "/"},
        {"/a/b", "c/..", "/a/b"},    {"/a/b", "c/../../d", "/a/d"},
        {"/a/b", "/", "/"},          {"/a/b", "//", "/"},
        {"/a/b", "/..", "/"},        {"/a/b", "c//d/", "/a/b/c/d"},
        {"/a/./b/", "c", "/a/b/c"},   // a base read from /proc is normalised too
        {"/a/b", "...", "/a/b/..."},  // only "." and ".." are special
        {"/a/b", "..c", "/a/b/..c"},
    };
    for (const Case& c : cases) {
        PathBuffer out;
        ASSERT_TRUE(join_lexically(c.base, c.path, out)) << c.base << " + " << c.path;
        EXPECT_EQ(out.view(), c.joined) << c.base << " + " << c.path;
        EXPECT_TRUE(is_normal_absolute(out.view())) << out.view();
    }
    PathBuffer out;
    EXPECT_FALSE(join_lexically("/a", "", out));
    EXPECT_FALSE(join_lexically("/a", std::string(PathBuffer::kCapacity, 'x'), out));
    // The longest path that fits, and one byte more.
    const std::string name(PathBuffer::kCapacity - 3, 'x');
    ASSERT_TRUE(join_lexically("/a", name, out));
    EXPECT_EQ(out.size(), PathBuffer::kCapacity);
    EXPECT_FALSE(join_lexically("/a", name + "y", out));
}

}  // namespace
}  // namespace fdbroker::policy
