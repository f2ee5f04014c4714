// The trie matcher against a reference written here the slow, obvious way (component lists and
// backtracking globs). Input: lines; the last line is the path, the others are patterns, rule i of
// kind i % 4. Any disagreement, per kind, about the first matching rule traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/address.hpp"
#include "policy/matcher.hpp"
#include "policy/path.hpp"

using namespace fdbroker::policy;

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> parts;
    std::size_t i = 1;  // skip the leading '/'
    while (i < path.size()) {
        const std::size_t end = std::min(path.find('/', i), path.size());
        parts.push_back(path.substr(i, end - i));
        i = end + 1;
    }
    return parts;
}

// Where the character starting at `i` ends: one byte and the UTF-8 continuation bytes after it
// ('?' and '*' take whole characters; docs/policy.md). Paths are any bytes, so a stray continuation
// byte simply joins the character before it.
std::size_t next_char(std::string_view s, std::size_t i) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80)
        ++i;
    return i;
}

// '*' any run of characters, '?' exactly one; everything else literal, byte for byte. Memoized on
// (glob position, name position) so that many '*' stay polynomial.
struct RefGlob {
    std::string_view glob, name;
    std::vector<std::int8_t> memo = std::vector<std::int8_t>((glob.size() + 1) * (name.size() + 1), -1);

    bool operator()(std::size_t g, std::size_t n) {
        std::int8_t& m = memo[g * (name.size() + 1) + n];
        if (m < 0) m = compute(g, n) ? 1 : 0;
        return m == 1;
    }
    bool compute(std::size_t g, std::size_t n) {
        if (g == glob.size()) return n == name.size();
        if (glob[g] == '*') {
            for (std::size_t k = n;; k = next_char(name, k)) {
                if ((*this)(g + 1, k)) return true;
                if (k >= name.size()) return false;
            }
        }
        if (n == name.size()) return false;
        if (glob[g] == '?') return (*this)(g + 1, next_char(name, n));
        return glob[g] == name[n] && (*this)(g + 1, n + 1);
    }
};

bool ref_glob(std::string_view glob, std::string_view name) {
    return RefGlob{glob, name}(0, 0);
}

// Patterns come from TOML, which holds only valid UTF-8.
bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t len = c < 0x80         ? 1
                                : (c >> 5) == 6  ? 2
                                : (c >> 4) == 14 ? 3
                                : (c >> 3) == 30 ? 4
                                                 : 0;
        if (len == 0 || i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += len;
    }
    return true;
}

// "**" as a whole component: zero or more components. Memoized on (pattern component, path
// component): plain backtracking is exponential in the number of "**" (the first fuzz runs stalled on
// it, in the reference, not in the matcher).
struct RefMatch {
    const std::vector<std::string_view>& pat;
    const std::vector<std::string_view>& path;
    std::vector<std::int8_t> memo = std::vector<std::int8_t>((pat.size() + 1) * (path.size() + 1), -1);

    bool operator()(std::size_t p, std::size_t i) {
        std::int8_t& m = memo[p * (path.size() + 1) + i];
        if (m < 0) m = compute(p, i) ? 1 : 0;
        return m == 1;
    }
    bool compute(std::size_t p, std::size_t i) {
        if (p == pat.size()) return i == path.size();
        if (pat[p] == "**") {
            for (std::size_t k = i; k <= path.size(); ++k)
                if ((*this)(p + 1, k)) return true;
            return false;
        }
        return i < path.size() && ref_glob(pat[p], path[i]) && (*this)(p + 1, i + 1);
    }
};

constexpr std::size_t kMaxRules = 8;
constexpr std::size_t kMaxLine = 256;  // keeps the backtracking reference fast

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> lines;
    for (std::size_t i = 0; i <= text.size();) {
        const std::size_t end = std::min(text.find('\n', i), text.size());
        lines.push_back(text.substr(i, end - i));
        i = end + 1;
    }
    const std::string_view path = lines.back();
    lines.pop_back();
    if (lines.size() > kMaxRules || path.size() > kMaxLine) return 0;
    if (!is_normal_absolute(path)) return 0;

    Matcher matcher;
    std::int32_t want[4] = {-1, -1, -1, -1};
    const std::vector<std::string_view> path_parts = split_path(path);
    std::int32_t index = 0;
    for (const std::string_view line : lines) {
        if (line.size() > kMaxLine || !valid_utf8(line)) return 0;
        Pattern::Error error;
        const std::optional<Pattern> pattern = Pattern::parse(line, error);
        if (!pattern) {
            if (error.offset > line.size() || error.message.empty()) __builtin_trap();
            continue;
        }
        if (pattern->text() != line) __builtin_trap();
        const auto kind = static_cast<RuleKind>(index % 4);
        matcher.add(*pattern, kind, index);
        const std::vector<std::string_view> pattern_parts = split_path(line);
        const bool ref = RefMatch{pattern_parts, path_parts}(0, 0);
        if (pattern_matches(*pattern, path) != ref) __builtin_trap();
        std::int32_t& first = want[index % 4];
        if (ref && first < 0) first = index;
        ++index;
    }
    const Match got = matcher.match(path);
    if (got.read != want[0] || got.write != want[1] || got.create != want[2] || got.deny != want[3])
        __builtin_trap();
    return 0;
}
