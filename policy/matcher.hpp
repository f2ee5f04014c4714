// Patterns and the matcher: every rule of a profile compiled into one trie over path components, so
// that a decision costs O(depth of the path), not O(number of rules).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fdbroker::policy {

enum class RuleKind : std::uint8_t { read, write, create, deny };
[[nodiscard]] std::string_view kind_name(RuleKind k) noexcept;

// A validated pattern: absolute, normal, '*' and '?' inside components, '**' only as a whole
// component. Only Pattern::parse makes one.
class Pattern {
  public:
    struct Error {
        std::string message;
        std::size_t offset = 0;  // byte offset in the pattern text where the problem is
    };
    [[nodiscard]] static std::optional<Pattern> parse(std::string_view text, Error& error);

    [[nodiscard]] const std::string& text() const noexcept { return text_; }
    [[nodiscard]] const std::vector<std::string>& components() const noexcept { return components_; }
    // The directory every match lies under, from the leading literal components, never including the
    // last component: "/usr/share/zoneinfo/**" -> "/usr/share/zoneinfo", "/etc/hostname" -> "/etc",
    // "/tmp/*.log" -> "/tmp", "/" and "/**" -> "/".
    [[nodiscard]] const std::string& anchor() const noexcept { return anchor_; }
    // No wildcard anywhere: the pattern matches exactly one path, its text.
    [[nodiscard]] bool literal() const noexcept { return literal_; }
    // Whether something at or beneath `path` (normal, absolute) can match this pattern, which makes
    // `path` a directory on the way to it: "/", "/srv" and "/srv/a" lead to "/srv/*/data/**", "/tmp"
    // and "/srv/a/other" do not.
    [[nodiscard]] bool leads_through(std::string_view path) const noexcept;

  private:
    Pattern() = default;
    std::string text_;
    std::vector<std::string> components_;
    std::string anchor_;
    bool literal_ = false;
};

// Does one component match a component glob ('*' any run of characters, '?' one character)?
[[nodiscard]] bool glob_component_match(std::string_view glob, std::string_view name) noexcept;

struct Rule {
    RuleKind kind{};
    Pattern pattern;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    // Added by `include = ["runtime"]` rather than written in the profile.
    bool builtin = false;
};

// Per rule kind, the index of the first rule (in file order) whose pattern matched; -1 for none.
struct Match {
    std::int32_t read = -1;
    std::int32_t write = -1;
    std::int32_t create = -1;
    std::int32_t deny = -1;
    // Per allow kind, the matching rule whose pattern has the longest anchor (ties: the earliest in
    // file order); -1 for none. Profile::decide reports it as the granting rule, because its anchor is
    // the narrowest directory the broker can open the path beneath.
    std::int32_t read_longest_anchor = -1;
    std::int32_t write_longest_anchor = -1;
    std::int32_t create_longest_anchor = -1;
};

// What the rules say about everything strictly beneath a path, whatever its names.
struct Beneath {
    // Every descendant gets the same rules: no pattern can match some descendants and not others with
    // a kind (deny, or an allow of another kind) that the descendants do not all get anyway.
    bool uniform = false;
    // Per RuleKind, bit (1 << kind): the kinds every descendant gets (when uniform).
    std::uint8_t kinds = 0;
    // When not uniform: the first rule (in file order) that would apply to some descendants only.
    std::int32_t differing = -1;
};

class Matcher {
  public:
    Matcher();
    ~Matcher();
    Matcher(Matcher&&) noexcept;
    Matcher& operator=(Matcher&&) noexcept;

    // rule_index orders the rules: Match reports, per kind, the smallest index that matched (the loader
    // numbers a profile's rules in file order).
    void add(const Pattern& pattern, RuleKind kind, std::int32_t rule_index);
    // path must be normal absolute. Does not allocate in the steady state.
    [[nodiscard]] Match match(std::string_view path) const noexcept;
    // The rules without any wildcard that name exactly `path`, per kind (Match's first-rule fields;
    // the longest-anchor fields are left unset). path must be normal absolute.
    [[nodiscard]] Match exact(std::string_view path) const noexcept;
    // path must be normal absolute. Conservative: a rule counts as matching some descendants if any
    // name could make it match, whatever exists on disk.
    [[nodiscard]] Beneath beneath(std::string_view path) const noexcept;

  private:
    struct Trie;
    std::unique_ptr<Trie> trie_;
};

}  // namespace fdbroker::policy
