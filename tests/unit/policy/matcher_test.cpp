// The trie matcher and Profile::decide: which paths each pattern form matches, and which rule decides.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "policy/matcher.hpp"
#include "policy/policy.hpp"
#include "support/policy_text.hpp"

// Counts heap allocations so the tests can check that decisions do not allocate.
namespace {
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's temporary buffer uses it): left to the runtime, its memory
// would reach the free() below from an allocator that is not malloc's (AddressSanitizer reports it).
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(size == 0 ? 1 : size);
}
// Kept out of line: once inlined next to a new-expression, GCC (-Wmismatched-new-delete) cannot see
// that the replaced operator new is malloc-based.
[[gnu::noinline]] void operator delete(void* p) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace fdbroker::policy {
namespace {

using test::policy_text::parse_ok;

// One read rule; does it match the path?
bool matches(std::string_view pattern, std::string_view path) {
    Matcher matcher;
    matcher.add(parse_ok(pattern), RuleKind::read, 0);
    return matcher.match(path).read == 0;
}

TEST(Matcher, EmptyMatcherMatchesNothing) {
    const Matcher matcher;
    const Match m = matcher.match("/a");
    EXPECT_EQ(m.read, -1);
    EXPECT_EQ(m.write, -1);
    EXPECT_EQ(m.create, -1);
    EXPECT_EQ(m.deny, -1);
    EXPECT_EQ(matcher.match("/").read, -1);
}

TEST(Matcher, LiteralMatchesOnlyItself) {
    EXPECT_TRUE(matches("/tmp/good", "/tmp/good"));
    EXPECT_FALSE(matches("/tmp/good", "/tmp/good_extra"));
    EXPECT_FALSE(matches("/tmp/good", "/tmp/goodx"));
    EXPECT_FALSE(matches("/tmp/good", "/tmp/goo"));
    EXPECT_FALSE(matches("/tmp/good", "/tmp/good/x"));
    EXPECT_FALSE(matches("/tmp/good", "/tmp"));
    EXPECT_FALSE(matches("/tmp/good", "/"));
    EXPECT_FALSE(matches("/tmp/good", "/TMP/good"));
    EXPECT_FALSE(matches("/tmp/good", "/x/tmp/good"));
    EXPECT_FALSE(matches("/tmp/good", "/tmpx/good"));
}

TEST(Matcher, PrefixOfANameIsNotAMatch) {
    EXPECT_FALSE(matches("/tmp/go", "/tmp/good"));
    EXPECT_TRUE(matches("/tmp/go*", "/tmp/good"));
    EXPECT_TRUE(matches("/tmp/go*", "/tmp/go"));
    EXPECT_FALSE(matches("/tmp/go*", "/tmp/g"));
    EXPECT_FALSE(matches("/tmp/go*", "/tmp/good/x"));
    EXPECT_FALSE(matches("/tmp/go*", "/tmp/ago"));
}

TEST(Matcher, TrailingGlobstarMatchesTheDirectoryAndEverythingBelow) {
    EXPECT_TRUE(matches("/a/**", "/a"));
    EXPECT_TRUE(matches("/a/**", "/a/b"));
    EXPECT_TRUE(matches("/a/**", "/a/b/c/d/e"));
    EXPECT_FALSE(matches("/a/**", "/ab"));
    EXPECT_FALSE(matches("/a/**", "/ab/c"));
    EXPECT_FALSE(matches("/a/**", "/"));
    EXPECT_FALSE(matches("/a/**", "/b/a"));
}

TEST(Matcher, PathsLongerThanPathMaxMatchLikeAnyOther) {
    // A relative name below a deep directory makes an absolute path longer than PATH_MAX.
    std::string deep = "/a";
    for (int i = 0; i < 30; ++i)
        deep += "/" + std::string(250, static_cast<char>('b' + i % 20));
    ASSERT_GT(deep.size(), 7000U);
    EXPECT_TRUE(matches("/a/**", deep + "/f"));
    EXPECT_TRUE(matches("/a/**/f", deep + "/f"));
    EXPECT_FALSE(matches("/a/**/g", deep + "/f"));
    EXPECT_TRUE(matches(deep + "/*", deep + "/f"));
    EXPECT_FALSE(matches(deep + "/*", deep + "x/f"));
}

TEST(Matcher, StarIsExactlyOneComponent) {
    EXPECT_TRUE(matches("/a/*", "/a/x"));
    EXPECT_TRUE(matches("/a/*", "/a/.hidden"));
    EXPECT_FALSE(matches("/a/*", "/a"));
    EXPECT_FALSE(matches("/a/*", "/a/x/y"));
    EXPECT_TRUE(matches("/a/*/c", "/a/b/c"));
    EXPECT_FALSE(matches("/a/*/c", "/a/c"));
    EXPECT_FALSE(matches("/a/*/c", "/a/b/b/c"));
    EXPECT_TRUE(matches("/*", "/x"));
    EXPECT_FALSE(matches("/*", "/"));
}

TEST(Matcher, RootGlobstarMatchesEverything) {
    EXPECT_TRUE(matches("/**", "/"));
    EXPECT_TRUE(matches("/**", "/a"));
    EXPECT_TRUE(matches("/**", "/a/b/c"));
}

TEST(Matcher, RootPatternMatchesOnlyRoot) {
    EXPECT_TRUE(matches("/", "/"));
    EXPECT_FALSE(matches("/", "/a"));
}

TEST(Matcher, GlobstarInTheMiddle) {
    EXPECT_TRUE(matches("/a/**/z", "/a/z"));
    EXPECT_TRUE(matches("/a/**/z", "/a/b/z"));
    EXPECT_TRUE(matches("/a/**/z", "/a/b/c/z"));
    EXPECT_TRUE(matches("/a/**/z", "/a/z/z"));
    EXPECT_FALSE(matches("/a/**/z", "/a/b/zz"));
    EXPECT_FALSE(matches("/a/**/z", "/a/z/y"));
    EXPECT_FALSE(matches("/a/**/z", "/a"));
    EXPECT_FALSE(matches("/a/**/z", "/z"));
    EXPECT_FALSE(matches("/a/**/z", "/b/a/z"));
}

TEST(Matcher, GlobstarFollowedByGlobs) {
    EXPECT_TRUE(matches("/logs/**/*.log", "/logs/x.log"));
    EXPECT_TRUE(matches("/logs/**/*.log", "/logs/2024/01/x.log"));
    EXPECT_FALSE(matches("/logs/**/*.log", "/logs/2024/x.log/y"));
    EXPECT_FALSE(matches("/logs/**/*.log", "/logs/x.txt"));
}

TEST(Matcher, ConsecutiveGlobstars) {
    EXPECT_TRUE(matches("/a/**/**/b", "/a/b"));
    EXPECT_TRUE(matches("/a/**/**/b", "/a/x/y/z/b"));
    EXPECT_TRUE(matches("/a/**/**", "/a"));
    EXPECT_FALSE(matches("/a/**/**/b", "/a/x"));
}

TEST(Matcher, QuestionMarkEdges) {
    EXPECT_TRUE(matches("/a/?", "/a/b"));
    EXPECT_FALSE(matches("/a/?", "/a/bc"));
    EXPECT_FALSE(matches("/a/?", "/a"));
    EXPECT_FALSE(matches("/a/?", "/a/b/c"));
    EXPECT_TRUE(matches("/tty?", "/tty1"));
    EXPECT_FALSE(matches("/tty?", "/tty"));
    EXPECT_FALSE(matches("/tty?", "/tty10"));
    EXPECT_TRUE(matches("/?/x", "/a/x"));
}

TEST(Matcher, BracketsAreLiteral) {
    EXPECT_TRUE(matches("/a/[x]", "/a/[x]"));
    EXPECT_FALSE(matches("/a/[x]", "/a/x"));
}

TEST(Matcher, LiteralAndGlobSiblingsBothApply) {
    Matcher matcher;
    matcher.add(parse_ok("/d/*.txt"), RuleKind::read, 0);
    matcher.add(parse_ok("/d/notes.txt"), RuleKind::write, 1);
    matcher.add(parse_ok("/d/**"), RuleKind::create, 2);
    Match m = matcher.match("/d/notes.txt");
    EXPECT_EQ(m.read, 0);
    EXPECT_EQ(m.write, 1);
    EXPECT_EQ(m.create, 2);
    m = matcher.match("/d/other.txt");
    EXPECT_EQ(m.read, 0);
    EXPECT_EQ(m.write, -1);
    EXPECT_EQ(m.create, 2);
    m = matcher.match("/d/sub/notes.txt");
    EXPECT_EQ(m.read, -1);
    EXPECT_EQ(m.write, -1);
    EXPECT_EQ(m.create, 2);
}

TEST(Matcher, ReportsTheFirstRuleOfEachKind) {
    Matcher matcher;
    matcher.add(parse_ok("/srv/**"), RuleKind::read, 0);
    matcher.add(parse_ok("/srv/data/*"), RuleKind::read, 1);
    matcher.add(parse_ok("/srv/data/x"), RuleKind::deny, 2);
    matcher.add(parse_ok("/srv/*/x"), RuleKind::deny, 3);
    matcher.add(parse_ok("/srv/data/x"), RuleKind::read, 4);  // same node as rule 2, other kind
    const Match m = matcher.match("/srv/data/x");
    EXPECT_EQ(m.read, 0);
    EXPECT_EQ(m.deny, 2);
    EXPECT_EQ(m.write, -1);
    // The deepest anchor among matching read rules: "/srv/data" (rules 1 and 4); rule 1 is earlier.
    EXPECT_EQ(m.read_longest_anchor, 1);
    EXPECT_EQ(m.write_longest_anchor, -1);
}

TEST(Matcher, FirstMeansSmallestIndexWhateverTheInsertionOrder) {
    Matcher matcher;
    matcher.add(parse_ok("/a/b"), RuleKind::read, 5);
    matcher.add(parse_ok("/a/*"), RuleKind::read, 3);
    matcher.add(parse_ok("/a/b"), RuleKind::read, 1);
    const Match m = matcher.match("/a/b");
    EXPECT_EQ(m.read, 1);
    EXPECT_EQ(m.read_longest_anchor, 1);
}

TEST(Matcher, LongestAnchorPrefersTheDeepestFixedDirectory) {
    Matcher matcher;
    matcher.add(parse_ok("/**"), RuleKind::read, 0);
    matcher.add(parse_ok("/srv/**"), RuleKind::read, 1);
    matcher.add(parse_ok("/srv/images/**"), RuleKind::read, 2);
    matcher.add(parse_ok("/srv/*/big/*"), RuleKind::read, 3);
    EXPECT_EQ(matcher.match("/srv/images/big/a.png").read, 0);
    EXPECT_EQ(matcher.match("/srv/images/big/a.png").read_longest_anchor, 2);
    EXPECT_EQ(matcher.match("/srv/other/big/a.png").read_longest_anchor, 1);
    EXPECT_EQ(matcher.match("/etc/passwd").read_longest_anchor, 0);
}

TEST(Matcher, TenThousandLiteralRules) {
    Matcher matcher;
    constexpr int count = 10000;
    for (int i = 0; i < count; ++i) {
        // Spread over directories and kinds so both the hash maps and the per-kind results are used.
        const std::string path = "/data/d" + std::to_string(i % 100) + "/file" + std::to_string(i);
        matcher.add(parse_ok(path), static_cast<RuleKind>(i % 3), i);
    }
    matcher.add(parse_ok("/data/d7/*.tmp"), RuleKind::deny, count);
    for (int i = 0; i < count; ++i) {
        const std::string path = "/data/d" + std::to_string(i % 100) + "/file" + std::to_string(i);
        const Match m = matcher.match(path);
        const std::int32_t expected[3] = {i % 3 == 0 ? i : -1, i % 3 == 1 ? i : -1, i % 3 == 2 ? i : -1};
        ASSERT_EQ(m.read, expected[0]) << path;
        ASSERT_EQ(m.write, expected[1]) << path;
        ASSERT_EQ(m.create, expected[2]) << path;
        ASSERT_EQ(m.deny, -1) << path;
    }
    EXPECT_EQ(matcher.match("/data/d1/file2").read, -1);  // file2 lives in d2
    EXPECT_EQ(matcher.match("/data/d0/file10000").read, -1);
    EXPECT_EQ(matcher.match("/data/d0/file0/x").read, -1);
    EXPECT_EQ(matcher.match("/data/d0").read, -1);
    EXPECT_EQ(matcher.match("/data/d7/x.tmp").deny, count);
}

// A directory's names are compared in turn while it has few and looked up in an index once it has
// many: every child is found, by match() and exact(), at each size on both sides of that change, and
// a name differing only in its last byte or its length is not.
TEST(Matcher, EveryChildIsFoundWhateverHowManySiblingsItHas) {
    for (int children = 1; children <= 24; ++children) {
        Matcher matcher;
        for (int i = 0; i < children; ++i)
            matcher.add(parse_ok("/d/n" + std::to_string(100 + i)), RuleKind::read, i);
        for (int i = 0; i < children; ++i) {
            const std::string path = "/d/n" + std::to_string(100 + i);
            ASSERT_EQ(matcher.match(path).read, i) << children << " children, " << path;
            ASSERT_EQ(matcher.exact(path).read, i) << children << " children, " << path;
        }
        for (const char* absent : {"/d/n99", "/d/n1000", "/d/n10", "/d/m100", "/d/n100x", "/d/n"})
            ASSERT_EQ(matcher.match(absent).read, -1) << children << " children, " << absent;
        ASSERT_EQ(matcher.exact("/d/n" + std::to_string(100 + children)).read, -1) << children;
        ASSERT_FALSE(matcher.beneath("/d").uniform) << children;
    }
}

TEST(Matcher, ManyGlobsMatchingAtOnce) {
    // More simultaneous states than fit inline (each glob node plus its '**' child): the result must
    // still be exact, including for the states added last.
    Matcher matcher;
    constexpr int globs = 60;
    for (int i = 0; i < globs; ++i) {
        matcher.add(parse_ok("/m/" + std::string(static_cast<std::size_t>(i) + 1, '?') + "*/**"),
                    RuleKind::read, i);
    }
    matcher.add(parse_ok("/m/" + std::string(globs, '?') + "/**/deep"), RuleKind::write, globs);
    const std::string long_name(globs, 'n');
    Match m = matcher.match("/m/" + long_name + "/x/y/deep");
    EXPECT_EQ(m.read, 0);
    EXPECT_EQ(m.write, globs);
    EXPECT_EQ(matcher.match("/m/" + long_name + "/deep").write, globs);
    m = matcher.match("/m/" + long_name + "n/deep");  // one character too many for the write rule
    EXPECT_EQ(m.read, 0);
    EXPECT_EQ(m.write, -1);
    EXPECT_EQ(matcher.match("/m/a/x").read, 0);
    EXPECT_EQ(matcher.match("/m").read, -1);
}

TEST(Matcher, ConcurrentMatchesAgree) {
    Matcher matcher;
    matcher.add(parse_ok("/srv/**"), RuleKind::read, 0);
    matcher.add(parse_ok("/srv/*/secret"), RuleKind::deny, 1);
    matcher.add(parse_ok("/srv/a/**/out"), RuleKind::write, 2);
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (std::size_t t = 0; t < failures.size(); ++t) {
        threads.emplace_back([&matcher, &failures, t] {
            for (int i = 0; i < 20000; ++i) {
                const Match a = matcher.match("/srv/a/secret");
                const Match b = matcher.match("/srv/a/b/c/out");
                if (a.read != 0 || a.deny != 1 || b.write != 2 || b.deny != -1) ++failures[t];
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(Matcher, MovedMatcherKeepsItsRules) {
    Matcher first;
    first.add(parse_ok("/a/*"), RuleKind::read, 0);
    Matcher second = std::move(first);
    EXPECT_EQ(second.match("/a/b").read, 0);
    Matcher third;
    third = std::move(second);
    EXPECT_EQ(third.match("/a/b").read, 0);
}

// --- Profile::decide ------------------------------------------------------------------------------

using test::policy_text::load;

class Decide : public ::testing::Test {
  protected:
    void SetUp() override {
        policy_ = load(R"(version = 1
[profile.p]
read   = ["/srv/**", "/etc/hostname"]
deny   = ["/srv/secret/**", "/srv/*.key"]
write  = ["/srv/out/**"]
create = ["/srv/out/new-*", "/drop/*"]
)");
        ASSERT_NE(policy_, nullptr);
        profile_ = policy_->profile("p");
        ASSERT_NE(profile_, nullptr);
    }
    const Rule* rule(std::size_t i) const { return &profile_->rules()[i]; }
    Decision decide(std::string_view path, std::uint8_t needs) const { return profile_->decide(path, needs); }

    std::shared_ptr<const Policy> policy_;
    const Profile* profile_ = nullptr;
};

TEST_F(Decide, RulesAreNumberedInFileOrder) {
    ASSERT_EQ(profile_->rules().size(), 7U);
    EXPECT_EQ(rule(0)->pattern.text(), "/srv/**");
    EXPECT_EQ(rule(2)->kind, RuleKind::deny);
    EXPECT_EQ(rule(4)->kind, RuleKind::write);
    EXPECT_EQ(rule(6)->pattern.text(), "/drop/*");
}

TEST_F(Decide, ReadRuleGrantsRead) {
    const Decision d = decide("/srv/www/index.html", need_read);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.rule, rule(0));
    EXPECT_EQ(d.rule->line, 3U);
    EXPECT_EQ(d.rule->column, 11U);
    EXPECT_TRUE(decide("/srv", need_read).allowed);
}

TEST_F(Decide, DenyBeatsAllow) {
    Decision d = decide("/srv/secret/k", need_read);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.rule, rule(2));
    EXPECT_EQ(d.rule->line, 4U);
    EXPECT_EQ(d.rule->column, 11U);
    d = decide("/srv/secret", need_any);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.rule, rule(2));
    d = decide("/srv/tls.key", need_read);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.rule, rule(3));
    EXPECT_EQ(d.rule->column, 29U);
    EXPECT_TRUE(decide("/srv/tls.key.txt", need_read).allowed);
    EXPECT_TRUE(decide("/srv/a/tls.key", need_read).allowed);  // '*' stays in one component
}

TEST_F(Decide, DefaultDenyHasNoRule) {
    for (std::string_view path : {"/etc/passwd", "/", "/sr", "/srvx", "/etc/hostname2", "/etc"}) {
        const Decision d = decide(path, need_read);
        EXPECT_FALSE(d.allowed) << path;
        EXPECT_EQ(d.rule, nullptr) << path;
    }
}

TEST_F(Decide, ReadOnlyRuleRefusesWriteAndCreate) {
    EXPECT_TRUE(decide("/etc/hostname", need_read).allowed);
    EXPECT_TRUE(decide("/etc/hostname", need_any).allowed);
    for (std::uint8_t needs : {std::uint8_t{need_write}, std::uint8_t{need_create},
                               std::uint8_t{need_read | need_write}, std::uint8_t{need_read | need_create}}) {
        const Decision d = decide("/etc/hostname", needs);
        EXPECT_FALSE(d.allowed) << int{needs};
        EXPECT_EQ(d.rule, nullptr) << int{needs};
    }
}

TEST_F(Decide, CreateOnlyRuleSatisfiesAnyButNotRead) {
    EXPECT_TRUE(decide("/drop/upload", need_create).allowed);
    const Decision any = decide("/drop/upload", need_any);
    EXPECT_TRUE(any.allowed);
    EXPECT_EQ(any.rule, rule(6));
    EXPECT_FALSE(decide("/drop/upload", need_read).allowed);
    EXPECT_FALSE(decide("/drop/upload", need_write).allowed);
    EXPECT_FALSE(decide("/drop/upload", need_create | need_write).allowed);
    EXPECT_FALSE(decide("/drop", need_read).allowed);
}

TEST_F(Decide, DirectoriesOnTheWayMayBeLookedUpOnly) {
    // "/" and "/drop" lead to "/drop/*": a lookup (stat, access, readlink) is allowed, listing is not.
    for (std::string_view path : {"/", "/drop"}) {
        const Decision d = decide(path, need_any);
        EXPECT_TRUE(d.allowed) << path;
        ASSERT_NE(d.rule, nullptr) << path;
        EXPECT_FALSE(decide(path, need_read).allowed) << path;
        EXPECT_FALSE(decide(path, need_create).allowed) << path;
    }
    EXPECT_FALSE(decide("/dro", need_any).allowed);
    EXPECT_FALSE(decide("/usr", need_any).allowed) << "leads to nothing granted";
    EXPECT_FALSE(decide("/srv/secret", need_any).allowed) << "deny still wins";
}

TEST(Pattern, LeadsThroughTheDirectoriesAboveWhatItMatches) {
    Pattern::Error error;
    const auto p = Pattern::parse("/srv/*/data/**", error);
    ASSERT_TRUE(p);
    for (std::string_view path : {"/", "/srv", "/srv/a", "/srv/b"})
        EXPECT_TRUE(p->leads_through(path)) << path;
    for (std::string_view path : {"/srv/a/other", "/srv/a/other/data", "/tmp", "/sr"})
        EXPECT_FALSE(p->leads_through(path)) << path;
    const auto deep = Pattern::parse("/a/**/b", error);
    ASSERT_TRUE(deep);
    EXPECT_TRUE(deep->leads_through("/a/x/y")) << "'**' can take any depth and still reach b";
    const auto file = Pattern::parse("/etc/hostname", error);
    ASSERT_TRUE(file);
    EXPECT_TRUE(file->leads_through("/etc"));
    EXPECT_FALSE(file->leads_through("/etc/hostname")) << "matched, not on the way";
}

TEST_F(Decide, EveryNeedMustBeGranted) {
    // /srv/out/new-1 is readable (rule 0), writable (rule 4) and creatable (rule 5).
    EXPECT_TRUE(decide("/srv/out/new-1", need_read | need_write | need_create).allowed);
    // /srv/out/old is readable and writable, not creatable.
    EXPECT_TRUE(decide("/srv/out/old", need_read | need_write).allowed);
    EXPECT_FALSE(decide("/srv/out/old", need_read | need_write | need_create).allowed);
    EXPECT_FALSE(decide("/srv/out/old", need_create).allowed);
}

TEST_F(Decide, AllowReportsTheRuleWithTheLongestAnchor) {
    // Readable through "/srv/**" (anchor /srv), writable through "/srv/out/**" (anchor /srv/out).
    Decision d = decide("/srv/out/x", need_read | need_write);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.rule, rule(4));
    d = decide("/srv/out/x", need_read);
    EXPECT_EQ(d.rule, rule(0));  // only the needed kinds count
    d = decide("/srv/out/x", need_any);
    EXPECT_EQ(d.rule, rule(4));
    // Equal anchors ("/srv/out" for both): the earlier rule, write before create in the file.
    d = decide("/srv/out/new-1", need_write | need_create);
    EXPECT_EQ(d.rule, rule(4));
}

TEST_F(Decide, PathsThatAreNotNormalAreDenied) {
    for (std::string_view path :
         {"", "srv/x", "/srv/../etc/passwd", "/srv/./x", "/srv//x", "/srv/x/", "/srv/.."}) {
        const Decision d = decide(path, need_read);
        EXPECT_FALSE(d.allowed) << path;
        EXPECT_EQ(d.rule, nullptr) << path;
    }
    EXPECT_FALSE(decide(std::string_view("/srv/a\0b", 8), need_read).allowed);
}

TEST_F(Decide, NoNeedsIsAProgrammingErrorAndDenied) {
    EXPECT_FALSE(decide("/srv/x", 0).allowed);
    EXPECT_FALSE(decide("/srv/x", 0x10).allowed);
    EXPECT_FALSE(decide("/srv/x", need_read | 0x80).allowed);
}

TEST(DecideLongestAnchor, DeepestAnchorAmongSameKindRules) {
    const auto policy = load(R"(version = 1
[profile.p]
read = ["/**", "/srv/**", "/srv/images/**", "/srv/*"]
)");
    ASSERT_NE(policy, nullptr);
    const Profile& p = policy->profiles().at(0);
    Decision d = p.decide("/srv/images/cat.png", need_read);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.rule->pattern.text(), "/srv/images/**");
    EXPECT_EQ(d.rule->line, 3U);
    EXPECT_EQ(d.rule->column, 27U);
    // "/srv/**" and "/srv/*" share the anchor "/srv": the earlier one wins.
    d = p.decide("/srv/x", need_read);
    EXPECT_EQ(d.rule->pattern.text(), "/srv/**");
    d = p.decide("/", need_read);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.rule->pattern.text(), "/**");
}

TEST(DecideDenyOrder, DenyWinsWhereverItIsWritten) {
    const auto policy = load(R"(version = 1
[profile.p]
deny = ["/home/*/.ssh/**"]
read = ["/home/**"]
write = ["/home/alice/.ssh/authorized_keys"]
)");
    ASSERT_NE(policy, nullptr);
    const Profile& p = *policy->profile("p");
    const Decision d = p.decide("/home/alice/.ssh/authorized_keys", need_write);
    EXPECT_FALSE(d.allowed);
    ASSERT_NE(d.rule, nullptr);
    EXPECT_EQ(d.rule->kind, RuleKind::deny);
    EXPECT_EQ(d.rule->line, 3U);
    EXPECT_TRUE(p.decide("/home/alice/.bashrc", need_read).allowed);
}

TEST(DecideAllocations, DecisionsDoNotAllocate) {
    const auto policy = load(R"(version = 1
[profile.p]
read   = ["/srv/**", "/etc/hostname", "/usr/lib/*/libc.so.?", "/a/**/z"]
write  = ["/srv/out/**"]
create = ["/srv/out/*.tmp"]
deny   = ["/srv/**/.git/**"]
)");
    ASSERT_NE(policy, nullptr);
    const Profile& p = *policy->profile("p");
    const std::vector<std::string> paths = {"/srv/a/b/c/d/e/f/g/h",
                                            "/srv/out/x.tmp",
                                            "/srv/x/.git/config",
                                            "/etc/hostname",
                                            "/usr/lib/x86_64-linux-gnu/libc.so.6",
                                            "/a/b/c/d/z",
                                            "/nothing/here",
                                            "/",
                                            "/srv/../etc"};
    int allowed = 0;
    const long before = allocations.load();
    for (const std::string& path : paths) {
        allowed += p.decide(path, need_read).allowed ? 1 : 0;
        allowed += p.decide(path, need_write | need_create).allowed ? 1 : 0;
        allowed += p.decide(path, need_any).allowed ? 1 : 0;
    }
    const long after = allocations.load();
    EXPECT_EQ(after - before, 0);
    EXPECT_EQ(allowed, 12) << "\"/\" may be looked up, on the way to what is granted";
    // The counter does see allocations.
    const auto probe = std::make_unique<std::vector<int>>(100);
    EXPECT_GE(allocations.load() - after, 2);
}

TEST(DecideEmpty, ProfileWithoutRulesDeniesEverything) {
    const auto policy = load("version = 1\n[profile.empty]\n");
    ASSERT_NE(policy, nullptr);
    const Decision d = policy->profile("empty")->decide("/", need_any);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.rule, nullptr);
}

// --- Matcher::beneath and Profile::decide_move: no amplification ------------------------------------

TEST(Beneath, UniformTreesAndWhatBreaksThem) {
    struct Case {
        std::vector<std::pair<std::string, RuleKind>> rules;
        std::string path;
        bool uniform;
    };
    const std::vector<Case> cases = {
        {{{"/x/**", RuleKind::create}}, "/x/a", true},
        {{{"/x/**", RuleKind::create}}, "/y", true},  // nothing beneath: uniformly nothing
        {{{"/x/**", RuleKind::create}, {"/x/a/secret/**", RuleKind::deny}}, "/x/a", false},
        {{{"/x/**", RuleKind::create}, {"/x/a/secret/**", RuleKind::deny}}, "/x", false},
        {{{"/x/**", RuleKind::create}, {"/x/a/secret/**", RuleKind::deny}}, "/x/b", true},
        {{{"/x/**", RuleKind::create}, {"/x/*/secret", RuleKind::deny}}, "/x/b", false},   // any name
        {{{"/x/**", RuleKind::create}, {"/x/**/secret", RuleKind::deny}}, "/x/b", false},  // any depth
        {{{"/x/**", RuleKind::create}, {"/x/**/*.key", RuleKind::read}}, "/x/b", false},
        {{{"/x/**", RuleKind::create}, {"/x/**", RuleKind::read}}, "/x/b", true},
        {{{"/x/**", RuleKind::create}, {"/x/*", RuleKind::create}}, "/x", true},  // same kind
        {{{"/x/**", RuleKind::create}, {"/x/*", RuleKind::write}}, "/x", false},
        {{{"/x/**", RuleKind::create}, {"/x/*", RuleKind::write}}, "/x/a", true},  // only at depth 1
        {{{"/x/**", RuleKind::create}, {"/x/a", RuleKind::read}}, "/x/a", true},   // the path itself
        {{{"/x/**", RuleKind::deny}, {"/x/a/**", RuleKind::read}}, "/x", true},    // all denied anyway
    };
    for (const Case& c : cases) {
        Matcher matcher;
        std::int32_t index = 0;
        for (const auto& [pattern, kind] : c.rules)
            matcher.add(parse_ok(pattern), kind, index++);
        EXPECT_EQ(matcher.beneath(c.path).uniform, c.uniform)
            << c.path << " with " << c.rules.size() << " rules";
    }
}

TEST(DecideMove, NoMoveMayGainAPermission) {
    const auto policy = load(R"(version = 1
[profile.p]
create = ["/x/**"]
write  = ["/x/**", "/x/w/**"]
read   = ["/x/**", "/x/r/**", "/x/pub/**"]
deny   = ["/x/a/secret/**"]
)");
    ASSERT_NE(policy, nullptr);
    const Profile& p = *policy->profile("p");
    // An ancestor of a deny: moving it would carry the denied files out from under their rule.
    EXPECT_FALSE(p.decide_move("/x/a", "/x/b", true).allowed);
    EXPECT_EQ(p.decide_move("/x/a", "/x/b", true).rule->pattern.text(), "/x/a/secret/**");
    // Nor may anything move to where a deny would start to apply to a subtree it did not cover.
    EXPECT_FALSE(p.decide_move("/x/c", "/x/a", true).allowed);
    EXPECT_FALSE(p.decide_move("/x/a/secret", "/x/s", true).allowed);
    // Elsewhere the tree is uniform: directories and files move freely.
    EXPECT_TRUE(p.decide_move("/x/c", "/x/d", true).allowed);
    EXPECT_TRUE(p.decide_move("/x/c/f", "/x/d", false).allowed);
}

TEST(DecideMove, AFileMayLoseButNeverGainPermissions) {
    const auto policy = load(R"(version = 1
[profile.p]
create = ["/in/**", "/out/**"]
read   = ["/in/**", "/out/**"]
write  = ["/out/**"]
)");
    ASSERT_NE(policy, nullptr);
    const Profile& p = *policy->profile("p");
    EXPECT_TRUE(p.decide_move("/out/f", "/in/f", false).allowed);
    const Decision gained = p.decide_move("/in/f", "/out/f", false);
    EXPECT_FALSE(gained.allowed);
    ASSERT_NE(gained.rule, nullptr);
    EXPECT_EQ(gained.rule->kind, RuleKind::write);
    EXPECT_FALSE(p.decide_move("/in/d", "/out/d", true).allowed);
    EXPECT_TRUE(p.decide_move("/out/d", "/in/d", true).allowed);
}

}  // namespace
}  // namespace fdbroker::policy
