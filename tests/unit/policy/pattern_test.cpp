// Pattern syntax, anchors, component globs and the lexical path helpers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/matcher.hpp"
#include "policy/path.hpp"
#include "support/policy_text.hpp"

namespace fdbroker::policy {
namespace {

using test::policy_text::parse_ok;

Pattern::Error parse_error(std::string_view text) {
    Pattern::Error error;
    EXPECT_FALSE(Pattern::parse(text, error).has_value()) << text;
    return error;
}

TEST(Pattern, KeepsTextAndSplitsComponents) {
    const Pattern p = parse_ok("/usr/share/*/zone?/**");
    EXPECT_EQ(p.text(), "/usr/share/*/zone?/**");
    EXPECT_EQ(p.components(), (std::vector<std::string>{"usr", "share", "*", "zone?", "**"}));
}

TEST(Pattern, RootHasNoComponents) {
    const Pattern p = parse_ok("/");
    EXPECT_TRUE(p.components().empty());
    EXPECT_EQ(p.anchor(), "/");
}

TEST(Pattern, AnchorIsTheLeadingLiteralDirectory) {
    EXPECT_EQ(parse_ok("/srv/images/**").anchor(), "/srv/images");
    EXPECT_EQ(parse_ok("/usr/share/zoneinfo/**").anchor(), "/usr/share/zoneinfo");
    EXPECT_EQ(parse_ok("/a/*/b").anchor(), "/a");
    EXPECT_EQ(parse_ok("/etc/hostname").anchor(), "/etc");
    EXPECT_EQ(parse_ok("/tmp/*.log").anchor(), "/tmp");
    EXPECT_EQ(parse_ok("/x").anchor(), "/");
    EXPECT_EQ(parse_ok("/**").anchor(), "/");
    EXPECT_EQ(parse_ok("/*").anchor(), "/");
    EXPECT_EQ(parse_ok("/a/b?/c").anchor(), "/a");
    EXPECT_EQ(parse_ok("/a/**/z").anchor(), "/a");
    EXPECT_EQ(parse_ok("/a/b/c/d").anchor(), "/a/b/c");
}

TEST(Pattern, OrdinaryCharactersAreLiteral) {
    // No escapes and no bracket classes: '[', '\\', '.', '{' are just characters.
    EXPECT_EQ(parse_ok("/a/[x]").components(), (std::vector<std::string>{"a", "[x]"}));
    EXPECT_EQ(parse_ok("/a/\\*").components(), (std::vector<std::string>{"a", "\\*"}));
    EXPECT_EQ(parse_ok("/a/{b,c}").anchor(), "/a");
    EXPECT_EQ(parse_ok("/a/[x]").anchor(), "/a");
    EXPECT_EQ(parse_ok("/a/[x]/y").anchor(), "/a/[x]");
}

TEST(Pattern, DotsInsideNamesAreFine) {
    parse_ok("/a/.hidden");
    parse_ok("/a/..b");
    parse_ok("/a/b..");
    parse_ok("/...");
    parse_ok("/a/.*");
}

TEST(Pattern, RejectsRelative) {
    Pattern::Error e = parse_error("etc/x");
    EXPECT_EQ(e.message, "pattern 'etc/x' must be absolute (start with '/')");
    EXPECT_EQ(e.offset, 0U);
    e = parse_error("");
    EXPECT_EQ(e.message, "pattern '' must be absolute (start with '/')");
    e = parse_error("*/x");
    EXPECT_EQ(e.message, "pattern '*/x' must be absolute (start with '/')");
}

TEST(Pattern, RejectsDotDot) {
    Pattern::Error e = parse_error("/a/../b");
    EXPECT_EQ(e.message, "pattern '/a/../b' must not contain '..' components");
    EXPECT_EQ(e.offset, 3U);
    e = parse_error("/..");
    EXPECT_EQ(e.offset, 1U);
    e = parse_error("/a/..");
    EXPECT_EQ(e.offset, 3U);
}

TEST(Pattern, RejectsDot) {
    Pattern::Error e = parse_error("/a/./b");
    EXPECT_EQ(e.message, "pattern '/a/./b' must not contain '.' components");
    EXPECT_EQ(e.offset, 3U);
    e = parse_error("/.");
    EXPECT_EQ(e.offset, 1U);
}

TEST(Pattern, RejectsEmptyComponent) {
    Pattern::Error e = parse_error("/a//b");
    EXPECT_EQ(e.message, "pattern '/a//b' has an empty component '//'");
    EXPECT_EQ(e.offset, 3U);
    e = parse_error("//");
    EXPECT_EQ(e.message, "pattern '//' has an empty component '//'");
    EXPECT_EQ(e.offset, 1U);
    e = parse_error("//a");
    EXPECT_EQ(e.offset, 1U);
}

TEST(Pattern, RejectsTrailingSlash) {
    Pattern::Error e = parse_error("/a/");
    EXPECT_EQ(e.message, "pattern '/a/' must not end with '/'");
    EXPECT_EQ(e.offset, 2U);
    e = parse_error("/a/**/");
    EXPECT_EQ(e.message, "pattern '/a/**/' must not end with '/'");
    EXPECT_EQ(e.offset, 5U);
}

TEST(Pattern, FirstProblemFromTheLeftIsReported) {
    const Pattern::Error e = parse_error("/a/../b//");
    EXPECT_EQ(e.message, "pattern '/a/../b//' must not contain '..' components");
}

TEST(Pattern, RejectsGlobstarInsideAComponent) {
    Pattern::Error e = parse_error("/a/**b");
    EXPECT_EQ(e.message, "pattern '/a/**b': '**' must be a whole path component");
    EXPECT_EQ(e.offset, 3U);
    e = parse_error("/a/x**");
    EXPECT_EQ(e.message, "pattern '/a/x**': '**' must be a whole path component");
    EXPECT_EQ(e.offset, 4U);
    e = parse_error("/a/***");
    EXPECT_EQ(e.offset, 3U);
    e = parse_error("/**x/y");
    EXPECT_EQ(e.offset, 1U);
}

TEST(Pattern, AcceptsGlobstarAsWholeComponents) {
    EXPECT_EQ(parse_ok("/a/**/b/**").components(), (std::vector<std::string>{"a", "**", "b", "**"}));
    parse_ok("/a/**/**");
    parse_ok("/a/*/*");
}

TEST(Pattern, RejectsNul) {
    const Pattern::Error e = parse_error(std::string_view("/a/b\0c", 6));
    EXPECT_EQ(e.message, "pattern '/a/b\\x00c' must not contain a NUL byte");
    EXPECT_EQ(e.offset, 4U);
}

TEST(Pattern, LengthLimitIsTheLongestPathJudged) {
    // A relative name of up to 4095 bytes below a directory of up to 4095: 8191 bytes in all.
    const std::string longest = "/" + std::string(200, 'a') + "/" + std::string(7989, 'b');
    EXPECT_EQ(parse_ok(longest).text().size(), 8191U);
    const Pattern::Error e = parse_error(longest + "b");
    EXPECT_NE(e.message.find("is 8192 bytes long; the limit is 8191"), std::string::npos) << e.message;
    // The message shows only the start of such a pattern.
    EXPECT_LT(e.message.size(), 200U);
}

TEST(Pattern, ControlCharactersAreEscapedInMessages) {
    const Pattern::Error e = parse_error("a\nb");
    EXPECT_EQ(e.message, "pattern 'a\\x0ab' must be absolute (start with '/')");
}

TEST(KindName, NamesEveryKind) {
    EXPECT_EQ(kind_name(RuleKind::read), "read");
    EXPECT_EQ(kind_name(RuleKind::write), "write");
    EXPECT_EQ(kind_name(RuleKind::create), "create");
    EXPECT_EQ(kind_name(RuleKind::deny), "deny");
}

TEST(GlobComponent, StarMatchesAnyRunIncludingEmpty) {
    EXPECT_TRUE(glob_component_match("*", "x"));
    EXPECT_TRUE(glob_component_match("*", ".hidden"));
    EXPECT_TRUE(glob_component_match("go*", "go"));
    EXPECT_TRUE(glob_component_match("go*", "good"));
    EXPECT_FALSE(glob_component_match("go*", "g"));
    EXPECT_FALSE(glob_component_match("go*", "ago"));
    EXPECT_TRUE(glob_component_match("*.log", "x.log"));
    EXPECT_TRUE(glob_component_match("*.log", ".log"));
    EXPECT_FALSE(glob_component_match("*.log", "x.log.1"));
    EXPECT_FALSE(glob_component_match("*.log", "x.lo"));
}

TEST(GlobComponent, StarBacktracks) {
    EXPECT_TRUE(glob_component_match("*a*b", "xxaxxb"));
    EXPECT_TRUE(glob_component_match("*a*b", "ab"));
    EXPECT_FALSE(glob_component_match("*a*b", "ba"));
    EXPECT_TRUE(glob_component_match("a*b*c", "abxbc"));
    EXPECT_TRUE(glob_component_match("a*bc", "abcbc"));
    EXPECT_FALSE(glob_component_match("a*bc", "abcb"));
    EXPECT_TRUE(glob_component_match("**", "anything"));  // as a component glob: two stars, one run
}

TEST(GlobComponent, QuestionMarkIsExactlyOneCharacter) {
    EXPECT_TRUE(glob_component_match("?", "a"));
    EXPECT_FALSE(glob_component_match("?", "ab"));
    EXPECT_FALSE(glob_component_match("?", ""));
    EXPECT_TRUE(glob_component_match("a?c", "abc"));
    EXPECT_FALSE(glob_component_match("a?c", "ac"));
    EXPECT_FALSE(glob_component_match("a?c", "abbc"));
    EXPECT_TRUE(glob_component_match("??", "ab"));
    EXPECT_TRUE(glob_component_match("*?", "a"));
    EXPECT_FALSE(glob_component_match("*?", ""));
}

TEST(GlobComponent, QuestionMarkTakesAWholeUtf8Character) {
    EXPECT_TRUE(glob_component_match("?", "\xc3\xa9"));  // é
    EXPECT_FALSE(glob_component_match("??", "\xc3\xa9"));
    EXPECT_TRUE(glob_component_match("caf?", "caf\xc3\xa9"));
    EXPECT_TRUE(glob_component_match("*?x",
                                     "\xe2\x82\xac"
                                     "x"));  // €x
    EXPECT_FALSE(glob_component_match("*??", "\xe2\x82\xac"));
}

TEST(GlobComponent, StrayContinuationBytesInANameJoinTheCharacterBeforeThem) {
    // A worker's path is any bytes. Found by matcher_fuzz (tests/fuzz): "/tm?" against
    // "/tmp\xb5\xb5\xb5\xb5\xb5" matches, since '?' takes "p" and the continuation bytes after it.
    EXPECT_TRUE(glob_component_match("tm?", "tmp\xb5\xb5\xb5\xb5\xb5"));
    EXPECT_FALSE(glob_component_match("tm??", "tmp\xb5\xb5"));
    EXPECT_TRUE(glob_component_match("?", "\xb5\xb5"));  // a name that starts mid-character
    EXPECT_TRUE(glob_component_match("*", "\xb5"));
    EXPECT_FALSE(glob_component_match("tmp", "tmp\xb5"));
}

TEST(GlobComponent, LiteralCharactersMustMatchExactly) {
    EXPECT_TRUE(glob_component_match("[x]", "[x]"));
    EXPECT_FALSE(glob_component_match("[x]", "x"));
    EXPECT_FALSE(glob_component_match("abc", "ABC"));
    EXPECT_TRUE(glob_component_match("", ""));
    EXPECT_FALSE(glob_component_match("", "a"));
}

TEST(Path, NormalAbsolute) {
    EXPECT_TRUE(is_normal_absolute("/"));
    EXPECT_TRUE(is_normal_absolute("/a"));
    EXPECT_TRUE(is_normal_absolute("/a/b.c/.d/..e"));
    EXPECT_TRUE(is_normal_absolute("/.../a./.b/a../..a/x.y"));
    EXPECT_FALSE(is_normal_absolute(""));
    EXPECT_FALSE(is_normal_absolute("a"));
    EXPECT_FALSE(is_normal_absolute("a/b"));
    EXPECT_FALSE(is_normal_absolute("//"));
    EXPECT_FALSE(is_normal_absolute("/a//b"));
    EXPECT_FALSE(is_normal_absolute("/a/"));
    EXPECT_FALSE(is_normal_absolute("/."));
    EXPECT_FALSE(is_normal_absolute("/a/./b"));
    EXPECT_FALSE(is_normal_absolute("/a/.."));
    EXPECT_FALSE(is_normal_absolute("/a/../b"));
    EXPECT_FALSE(is_normal_absolute("/.."));
    EXPECT_FALSE(is_normal_absolute("/a/."));
    EXPECT_FALSE(is_normal_absolute("/./a"));
    EXPECT_FALSE(is_normal_absolute("/../a"));
    EXPECT_FALSE(is_normal_absolute("/a/b//"));
    EXPECT_FALSE(is_normal_absolute(std::string_view("/a/\0", 4)));
    EXPECT_FALSE(is_normal_absolute(std::string_view("/a\0b", 4)));
}

TEST(Path, ParentAndName) {
    EXPECT_EQ(parent_of("/a/b"), "/a");
    EXPECT_EQ(parent_of("/a/b/c"), "/a/b");
    EXPECT_EQ(parent_of("/a"), "/");
    EXPECT_EQ(parent_of("/"), "");
    EXPECT_EQ(name_of("/a/b"), "b");
    EXPECT_EQ(name_of("/a"), "a");
    EXPECT_EQ(name_of("/"), "");
}

}  // namespace
}  // namespace fdbroker::policy
