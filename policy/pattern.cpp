#include <algorithm>
#include <utility>

#include "policy/matcher.hpp"
#include "policy/path_buffer.hpp"
#include "policy/text.hpp"

namespace fdbroker::policy {

namespace {

// The longest absolute path the broker judges (a directory the kernel can name and a relative name it
// takes, path_buffer.hpp): a longer pattern could never match.
constexpr std::size_t max_pattern_length = PathBuffer::kCapacity;

constexpr std::string_view globstar = "**";

bool is_glob(std::string_view component) noexcept {
    return component.find_first_of("*?") != std::string_view::npos;
}

bool is_continuation(char c) noexcept {
    return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

// Index just past the character starting at `i`, so '?' takes a whole UTF-8 character, not a byte.
std::size_t next_char(std::string_view s, std::size_t i) noexcept {
    ++i;
    while (i < s.size() && is_continuation(s[i]))
        ++i;
    return i;
}

std::optional<Pattern> fail(Pattern::Error& error, std::string message, std::size_t offset) {
    error.message = std::move(message);
    error.offset = offset;
    return std::nullopt;
}

// What is wrong with one component starting at `start` of `text`; empty when it is fine. The caller
// handles empty components, whose message depends on where they are.
std::string component_problem(std::string_view text, std::string_view component, std::size_t start,
                              std::size_t& offset) {
    offset = start;
    const std::string subject = "pattern " + quote(text);
    if (const std::size_t nul = component.find('\0'); nul != std::string_view::npos) {
        offset = start + nul;
        return subject + " must not contain a NUL byte";
    }
    if (component == ".") return subject + " must not contain '.' components";
    if (component == "..") return subject + " must not contain '..' components";
    if (const std::size_t stars = component.find(globstar);
        stars != std::string_view::npos && component != globstar) {
        offset = start + stars;
        return subject + ": '**' must be a whole path component";
    }
    return {};
}

std::string make_anchor(const std::vector<std::string>& components) {
    std::string anchor;
    // The last component is never part of the anchor: the broker opens the final name itself, beneath
    // the anchor directory, so that it can judge whatever that name turns out to be.
    for (std::size_t i = 0; i + 1 < components.size() && !is_glob(components[i]); ++i) {
        anchor += '/';
        anchor += components[i];
    }
    return anchor.empty() ? std::string("/") : anchor;
}

}  // namespace

std::string_view kind_name(RuleKind k) noexcept {
    switch (k) {
        case RuleKind::read:
            return "read";
        case RuleKind::write:
            return "write";
        case RuleKind::create:
            return "create";
        case RuleKind::deny:
            return "deny";
    }
    return "unknown";
}

std::optional<Pattern> Pattern::parse(std::string_view text, Error& error) {
    if (text.empty() || text.front() != '/') {
        return fail(error, "pattern " + quote(text) + " must be absolute (start with '/')", 0);
    }
    if (text.size() > max_pattern_length) {
        return fail(error,
                    "pattern " + quote(text) + " is " + std::to_string(text.size()) +
                        " bytes long; the limit is " + std::to_string(max_pattern_length),
                    max_pattern_length);
    }
    Pattern pattern;
    pattern.text_ = std::string(text);
    for (std::size_t start = 1; text.size() > 1 && start <= text.size();) {
        std::size_t end = text.find('/', start);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view component = text.substr(start, end - start);
        if (component.empty() && end == text.size()) {
            return fail(error, "pattern " + quote(text) + " must not end with '/'", text.size() - 1);
        }
        if (component.empty()) {
            return fail(error, "pattern " + quote(text) + " has an empty component '//'", start);
        }
        std::size_t offset = 0;
        if (std::string problem = component_problem(text, component, start, offset); !problem.empty()) {
            return fail(error, std::move(problem), offset);
        }
        pattern.components_.emplace_back(component);
        start = end + 1;
    }
    pattern.anchor_ = make_anchor(pattern.components_);
    pattern.literal_ = std::none_of(pattern.components_.begin(), pattern.components_.end(),
                                    [](const std::string& c) { return is_glob(c); });
    return pattern;
}

bool Pattern::leads_through(std::string_view path) const noexcept {
    std::size_t i = 0;
    for (std::size_t start = 1; path.size() > 1 && start <= path.size(); ++i) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        // A "**" takes whatever is left of the path, and the rest of the pattern can follow below it.
        if (i < components_.size() && components_[i] == "**") return true;
        if (i >= components_.size() || !glob_component_match(components_[i], path.substr(start, end - start)))
            return false;
        start = end + 1;
    }
    return i < components_.size();
}

bool glob_component_match(std::string_view glob, std::string_view name) noexcept {
    // Greedy matching with backtracking to the most recent '*' only: enough for single-component
    // globs, linear in practice and never allocating.
    std::size_t g = 0;
    std::size_t n = 0;
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (n < name.size()) {
        if (g < glob.size() && glob[g] == '*') {
            star = g++;
            resume = n;
        } else if (g < glob.size() && glob[g] == '?') {
            ++g;
            n = next_char(name, n);
        } else if (g < glob.size() && glob[g] == name[n]) {
            ++g;
            ++n;
        } else if (star != std::string_view::npos) {
            g = star + 1;
            resume = next_char(name, resume);
            n = resume;
        } else {
            return false;
        }
    }
    while (g < glob.size() && glob[g] == '*')
        ++g;
    return g == glob.size();
}

}  // namespace fdbroker::policy
