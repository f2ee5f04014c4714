// `fdbroker explain` and the broker must never disagree. For every policy of the fuzz corpus, many
// random requests (deterministic seed) are both explained and performed by the broker's Performer,
// the code that serves workers in both modes; the decision, the deciding rule and the errno must be
// the same. The policies' patterns are rooted in a private directory, so that what the broker
// performs touches nothing else and paths lead through no symlink.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "broker/explain/explanation.hpp"
#include "broker/explain/request.hpp"
#include "broker/ops/perform.hpp"
#include "policy/path.hpp"
#include "policy/rule_query.hpp"
#include "support/harness.hpp"

namespace fdbroker::broker::explain {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& file) {
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string rooted(const std::string& pattern, const std::string& root) {
    return pattern == "/" ? root : root + pattern;
}

// A corpus policy file with its path patterns moved beneath `root`.
std::string root_policy(const std::string& text, const std::string& root) {
    static const std::regex path_rule(R"(^(read|write|create|deny)(\s*=.*)$)");
    static const std::regex quoted_path("\"/");
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_match(line, m, path_rule))
            line = m[1].str() + std::regex_replace(m[2].str(), quoted_path, "\"" + root + "/");
        out += line + "\n";
    }
    return out;
}

// A matcher corpus file (patterns, then a path; rule i of kind i % 4, as matcher_fuzz reads it) as
// a policy beneath `root`.
std::string matcher_policy(const std::string& text, const std::string& root) {
    static const char* const kinds[] = {"read", "write", "create", "deny"};
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    if (!lines.empty()) lines.pop_back();
    std::string lists[4];
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::string& list = lists[i % 4];
        list += (list.empty() ? "" : ", ") + ("\"" + rooted(lines[i], root) + "\"");
    }
    std::string out = "version = 1\n[profile.default]\n";
    for (int k = 0; k < 4; ++k)
        if (!lists[k].empty()) out += std::string(kinds[k]) + " = [" + lists[k] + "]\n";
    return out;
}

std::string with_absent(const std::string& text) {
    static const std::regex header(R"(^(\[profile\.[^\]]+\])$)", std::regex::multiline);
    return std::regex_replace(text, header, "$1\ndenied_paths = \"absent\"");
}

// Random paths near what the rules name: a pattern with its wildcards filled in, sometimes cut
// short, extended, or with one component changed.
class Paths {
  public:
    Paths(const policy::Profile& profile, std::string root, unsigned seed)
        : root_(std::move(root)), rng_(seed) {
        for (const policy::Rule& r : profile.rules())
            patterns_.push_back(r.pattern.components());
    }
    std::string next() {
        std::vector<std::string> parts;
        if (patterns_.empty() || pick(10) == 0) {
            parts = split(root_);
            for (int n = static_cast<int>(pick(3)); n >= 0; --n)
                parts.push_back(name());
        } else {
            for (const std::string& c : patterns_[pick(patterns_.size())])
                fill(c, parts);
        }
        const std::size_t root_depth = split(root_).size();
        const unsigned change = pick(6);
        if (change == 0 && parts.size() > root_depth)
            parts.resize(root_depth + pick(parts.size() - root_depth));
        if (change == 1) parts.push_back(name());
        if (change == 2 && parts.size() > root_depth)
            parts[root_depth + pick(parts.size() - root_depth)] = name();
        std::string path;
        for (const std::string& p : parts)
            path += "/" + p;
        return path.empty() ? "/" : path;
    }
    unsigned pick(std::size_t n) {
        return static_cast<unsigned>(std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_));
    }

  private:
    static std::vector<std::string> split(const std::string& path) {
        std::vector<std::string> out;
        std::istringstream in(path);
        for (std::string c; std::getline(in, c, '/');)
            if (!c.empty()) out.push_back(c);
        return out;
    }
    std::string name() {
        static const char* const names[] = {"a",       "b",     "x",     "tmp",    "secret",
                                            ".hidden", "x.log", "aXbYc", "private"};
        return names[pick(std::size(names))];
    }
    void fill(const std::string& component, std::vector<std::string>& parts) {
        if (component == "**") {
            for (unsigned n = pick(3); n > 0; --n)
                parts.push_back(name());
            return;
        }
        std::string out;
        for (const char c : component) {
            if (c == '*') {
                for (unsigned n = pick(3); n > 0; --n)
                    out += "ab.X"[pick(4)];
            } else if (c == '?') {
                out += "ab.X"[pick(4)];
            } else {
                out += c;
            }
        }
        parts.push_back(out.empty() ? name() : out);
    }
    std::string root_;
    std::mt19937 rng_;
    std::vector<std::vector<std::string>> patterns_;
};

const std::vector<std::vector<std::string>> kRequests = {
    {"open", "r"}, {"open", "w"},   {"open", "rw"},  {"open", "wc"},  {"open", "rwt"}, {"open", "wa"},
    {"stat"},      {"access", "r"}, {"access", "w"}, {"access", "f"}, {"readlink"},    {"mkdir"},
    {"unlink"},    {"rmdir"},       {"chmod"},       {"truncate"},    {"utimens"},     {"getxattr"},
    {"listxattr"}, {"removexattr"}, {"mknod"},
};

struct Tally {
    int compared = 0;
    int allowed = 0;
    int denied = 0;
};

bool mentions(const std::vector<std::string>& notes, const std::string& what) {
    return std::any_of(notes.begin(), notes.end(),
                       [&what](const std::string& n) { return n.find(what) != std::string::npos; });
}

// One request, explained and performed; the explanation must also agree with itself.
void compare(const policy::Profile& profile, const std::vector<std::string>& words, Tally& tally) {
    std::string error;
    std::optional<Request> explained = parse_request(words, error);
    std::optional<Request> performed = parse_request(words, error);
    ASSERT_TRUE(explained && performed) << error;
    const Explanation e = explain_request(profile, *explained);
    const Performer performer(profile, std::nullopt);
    Outcome out;
    performer.perform({::getpid(), ::getuid()}, performed->operation, out);
    const std::string what = words[0] + " " + words[1] + (words.size() > 2 ? " " + words[2] : "");
    ASSERT_TRUE(out.audited) << what;
    ASSERT_EQ(e.paths.size(), 1U);
    const PathJudgement& p = e.paths.front();
    EXPECT_EQ(out.audit.needs, p.needs) << what;
    if (out.error == EEXIST && !e.allowed) {
        // Making a name that exists where the worker may look: the kernel's own answer comes first,
        // as explain says it would.
        EXPECT_TRUE(mentions(e.notes, "EEXIST")) << what;
        return;
    }
    EXPECT_EQ(out.audit.allowed, e.allowed) << what << " (broker errno " << out.error << ")";
    if (!e.allowed) {
        EXPECT_EQ(out.error, e.error) << what;
        EXPECT_EQ(out.audit.rule, p.why.decision.rule) << what;
    } else if (out.audit.rule != nullptr) {
        EXPECT_EQ(out.audit.rule, p.why.decision.rule) << what;
    }
    // The reason, worked out from every matching rule, must give the decision Profile::decide gave.
    const bool by_reason = p.why.why == policy::Why::granted || p.why.why == policy::Why::on_the_way;
    EXPECT_EQ(by_reason, p.why.decision.allowed) << what;
    if (p.why.why == policy::Why::deny_wins) {
        const auto first_deny =
            std::find_if(p.why.matching.begin(), p.why.matching.end(),
                         [](const policy::Rule* r) { return r->kind == policy::RuleKind::deny; });
        EXPECT_EQ(*first_deny, p.why.decision.rule) << what << ": the first deny in the file decides";
    }
    if (p.why.why == policy::Why::granted) {
        EXPECT_NE(std::find(p.why.matching.begin(), p.why.matching.end(), p.why.decision.rule),
                  p.why.matching.end())
            << what;
    }
    ++tally.compared;
    ++(e.allowed ? tally.allowed : tally.denied);
}

void compare_sockets(const policy::Profile& profile, Paths& rng, Tally& tally) {
    static const char* const addresses[] = {"tcp:127.0.0.1:6379",
                                            "tcp:10.1.2.3:8050",
                                            "tcp:10.1.2.3:9000",
                                            "udp:[fd00::1]:53",
                                            "tcp:0.0.0.0:80",
                                            "tcp:0.0.0.0:6379",
                                            "unix:/run/postgresql/.s.PGSQL.5432",
                                            "unix:/run/app/s.sock",
                                            "unix:@x",
                                            "tcp:host:1"};
    for (const char* op : {"connect", "listen"}) {
        const std::vector<std::string> words{op, addresses[rng.pick(std::size(addresses))]};
        std::string error;
        const auto request = parse_request(words, error);
        ASSERT_TRUE(request) << error;
        const Explanation e = explain_request(profile, *request);
        policy::SocketAddress address;
        const policy::SocketDecision d = profile.decide_socket(
            words[0] == "connect" ? policy::SocketUse::connect : policy::SocketUse::listen, words[1],
            address);
        EXPECT_EQ(e.allowed, d.allowed) << words[0] << " " << words[1];
        EXPECT_EQ(e.error, d.error) << words[0] << " " << words[1];
        if (d.allowed) {
            ASSERT_FALSE(e.socket_matching.empty());
            EXPECT_EQ(e.socket_matching.front(), d.rule) << "the first matching rule decides";
        }
        ++tally.compared;
    }
}

void check_policy(const std::string& name, const std::string& text, const test::TempDir& root, Tally& tally) {
    SCOPED_TRACE(name);
    const policy::LoadResult loaded = policy::Policy::load_string(text, name);
    ASSERT_TRUE(loaded.policy) << text;
    for (const policy::Profile& profile : loaded.policy->profiles()) {
        Paths paths(profile, root.path(), 17);
        for (int i = 0; i < 400; ++i) {
            std::vector<std::string> words = kRequests[paths.pick(kRequests.size())];
            words.insert(words.begin() + 1, paths.next());
            compare(profile, words, tally);
            if (::testing::Test::HasFatalFailure()) return;
        }
        for (int i = 0; i < 20; ++i)
            compare_sockets(profile, paths, tally);
    }
}

TEST(ExplainAgreement, ExplainAndTheBrokerAgreeOnTheCorpusPolicies) {
    const test::TempDir root;
    Tally tally;
    int policies = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(FUZZ_CORPUS) / "policy")) {
        const std::string text = root_policy(slurp(entry.path()), root.path());
        if (!policy::Policy::load_string(text, "corpus").policy) continue;  // the corpus's broken files
        for (const std::string& variant : {text, with_absent(text)})
            check_policy(entry.path().filename(), variant, root, tally);
        ++policies;
    }
    for (const auto& entry : fs::directory_iterator(fs::path(FUZZ_CORPUS) / "matcher")) {
        const std::string text = matcher_policy(slurp(entry.path()), root.path());
        for (const std::string& variant : {text, with_absent(text)})
            check_policy("matcher/" + entry.path().filename().string(), variant, root, tally);
        ++policies;
    }
    EXPECT_GE(policies, 4);
    // Both answers must have come up often, or the comparison proves little.
    EXPECT_GT(tally.allowed, 300) << tally.compared;
    EXPECT_GT(tally.denied, 300) << tally.compared;
}

}  // namespace
}  // namespace fdbroker::broker::explain
