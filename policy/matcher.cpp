#include "policy/matcher.hpp"

#include <array>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fdbroker::policy {

namespace {

constexpr std::uint32_t no_node = std::numeric_limits<std::uint32_t>::max();
constexpr std::size_t kind_count = 4;
constexpr std::string_view globstar = "**";

std::size_t kind_index(RuleKind kind) noexcept {
    return static_cast<std::size_t>(kind);
}

bool is_glob(std::string_view component) noexcept {
    return component.find_first_of("*?") != std::string_view::npos;
}

// FNV-1a: the literal index is searched with every component of every request, and its keys are the
// policy's own names, which a worker cannot choose, so a short inline hash beats a flooding-resistant
// one. string_view keys: no temporary string.
struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        std::uint64_t h = 0xcbf29ce484222325ULL;
        for (const char c : s)
            h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
        return static_cast<std::size_t>(h);
    }
};

// A trie node's literal children, by name. Most nodes have a few, and comparing those in turn is
// cheaper than hashing; a node with many (thousands of files named in one directory) gets an index.
class Literals {
  public:
    using Entry = std::pair<std::string, std::uint32_t>;

    [[nodiscard]] std::uint32_t find(std::string_view name) const noexcept {
        if (!index_.empty()) {
            const auto it = index_.find(name);
            return it == index_.end() ? no_node : it->second;
        }
        for (const Entry& entry : entries_)
            if (entry.first.size() == name.size() &&
                std::memcmp(entry.first.data(), name.data(), name.size()) == 0)
                return entry.second;
        return no_node;
    }
    // `name` must not be present yet.
    void add(const std::string& name, std::uint32_t child) {
        entries_.emplace_back(name, child);
        if (entries_.size() == kIndexed) {
            for (const Entry& entry : entries_)
                index_.emplace(entry.first, entry.second);
        } else if (entries_.size() > kIndexed) {
            index_.emplace(name, child);
        }
    }
    [[nodiscard]] auto begin() const noexcept { return entries_.begin(); }
    [[nodiscard]] auto end() const noexcept { return entries_.end(); }

  private:
    static constexpr std::size_t kIndexed = 9;  // from this many children on
    std::vector<Entry> entries_;
    std::unordered_map<std::string, std::uint32_t, NameHash, std::equal_to<>> index_;
};

// The set of trie nodes a walk is in. Real policies keep it to a handful of nodes, so it lives inline
// and matching does not allocate; the vector only takes over for policies with very many globs that
// match the same path.
class StateSet {
  public:
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::uint32_t operator[](std::size_t i) const noexcept {
        return i < inline_capacity ? inline_[i] : overflow_[i - inline_capacity];
    }
    [[nodiscard]] bool contains(std::uint32_t node) const noexcept {
        for (std::size_t i = 0; i < size_; ++i) {
            if ((*this)[i] == node) return true;
        }
        return false;
    }
    void push(std::uint32_t node) {
        if (size_ < inline_capacity) {
            inline_[size_] = node;
        } else {
            overflow_.push_back(node);
        }
        ++size_;
    }
    void clear() noexcept {
        size_ = 0;
        overflow_.clear();
    }

  private:
    static constexpr std::size_t inline_capacity = 32;
    // Not zeroed: only the first size_ entries are ever read, and two sets are made per match.
    std::array<std::uint32_t, inline_capacity> inline_;
    std::vector<std::uint32_t> overflow_;
    std::size_t size_ = 0;
};

std::int32_t& first_of(Match& match, std::size_t kind) noexcept {
    switch (kind) {
        case 0:
            return match.read;
        case 1:
            return match.write;
        case 2:
            return match.create;
        default:
            return match.deny;
    }
}

std::int32_t& longest_of(Match& match, std::size_t kind) noexcept {
    switch (kind) {
        case 0:
            return match.read_longest_anchor;
        case 1:
            return match.write_longest_anchor;
        default:
            return match.create_longest_anchor;
    }
}

}  // namespace

struct Matcher::Trie {
    struct Node {
        Literals literals;
        std::vector<std::pair<std::string, std::uint32_t>> globs;
        std::uint32_t globstar = no_node;
        // A '**' node consumes any component and stays where it is; reaching it consumes nothing.
        bool loops = false;
        // Every pattern ending here has the same components, hence the same anchor.
        std::size_t anchor_length = 0;
        // Per kind, the first rule (in file order) ending here; -1 for none.
        std::array<std::int32_t, kind_count> first{-1, -1, -1, -1};
    };

    std::vector<Node> nodes = std::vector<Node>(1);  // nodes[0] is the root, "/"

    std::uint32_t literal_child(std::uint32_t parent, const std::string& component);
    std::uint32_t glob_child(std::uint32_t parent, const std::string& component);
    std::uint32_t globstar_child(std::uint32_t parent);
    std::uint32_t new_node() {
        nodes.emplace_back();
        return static_cast<std::uint32_t>(nodes.size() - 1);
    }

    void enter(StateSet& set, std::uint32_t node) const;
    void step(const StateSet& from, std::string_view component, StateSet& to) const;
    void collect(const StateSet& set, Match& match) const noexcept;
    bool walk(std::string_view path, StateSet& a, StateSet& b, StateSet*& current) const;
    [[nodiscard]] std::uint8_t kinds_of(std::uint32_t node) const noexcept;
    [[nodiscard]] std::int32_t first_rule_outside(std::uint32_t node, std::uint8_t kinds) const noexcept;
};

std::uint32_t Matcher::Trie::literal_child(std::uint32_t parent, const std::string& component) {
    if (const std::uint32_t known = nodes[parent].literals.find(component); known != no_node) return known;
    const std::uint32_t child = new_node();
    nodes[parent].literals.add(component, child);
    return child;
}

std::uint32_t Matcher::Trie::glob_child(std::uint32_t parent, const std::string& component) {
    for (const auto& [glob, child] : nodes[parent].globs) {
        if (glob == component) return child;
    }
    const std::uint32_t child = new_node();
    nodes[parent].globs.emplace_back(component, child);
    return child;
}

std::uint32_t Matcher::Trie::globstar_child(std::uint32_t parent) {
    if (nodes[parent].globstar != no_node) return nodes[parent].globstar;
    const std::uint32_t child = new_node();
    nodes[child].loops = true;
    nodes[parent].globstar = child;
    return child;
}

// Adds `node` and, because '**' matches zero components, every '**' directly beneath it. A node is
// only ever added together with that chain, so meeting one already present ends the walk.
void Matcher::Trie::enter(StateSet& set, std::uint32_t node) const {
    while (node != no_node && !set.contains(node)) {
        set.push(node);
        node = nodes[node].globstar;
    }
}

void Matcher::Trie::step(const StateSet& from, std::string_view component, StateSet& to) const {
    for (std::size_t i = 0; i < from.size(); ++i) {
        const Node& node = nodes[from[i]];
        if (node.loops) enter(to, from[i]);
        if (const std::uint32_t child = node.literals.find(component); child != no_node) enter(to, child);
        for (const auto& [glob, child] : node.globs) {
            if (glob_component_match(glob, component)) enter(to, child);
        }
    }
}

void Matcher::Trie::collect(const StateSet& set, Match& match) const noexcept {
    std::array<std::size_t, kind_count> best_anchor{};
    for (std::size_t i = 0; i < set.size(); ++i) {
        const Node& node = nodes[set[i]];
        for (std::size_t kind = 0; kind < kind_count; ++kind) {
            const std::int32_t rule = node.first[kind];
            if (rule < 0) continue;
            std::int32_t& first = first_of(match, kind);
            if (first < 0 || rule < first) first = rule;
            if (kind == kind_index(RuleKind::deny)) continue;
            std::int32_t& longest = longest_of(match, kind);
            const bool longer = node.anchor_length > best_anchor[kind];
            const bool tie_but_earlier = node.anchor_length == best_anchor[kind] && rule < longest;
            if (longest < 0 || longer || tie_but_earlier) {
                longest = rule;
                best_anchor[kind] = node.anchor_length;
            }
        }
    }
}

// Walks the components of a normal absolute path from the root; false when no rule can match it or
// anything beneath it any more (the state set ran empty).
bool Matcher::Trie::walk(std::string_view path, StateSet& a, StateSet& b, StateSet*& current) const {
    current = &a;
    StateSet* next = &b;
    enter(*current, 0);
    std::size_t start = 1;  // past the leading '/'; "/" itself has no components
    while (start < path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        next->clear();
        step(*current, path.substr(start, end - start), *next);
        std::swap(current, next);
        if (current->size() == 0) return false;
        start = end + 1;
    }
    return true;
}

std::uint8_t Matcher::Trie::kinds_of(std::uint32_t node) const noexcept {
    std::uint8_t kinds = 0;
    for (std::size_t kind = 0; kind < kind_count; ++kind)
        if (nodes[node].first[kind] >= 0) kinds |= static_cast<std::uint8_t>(1U << kind);
    return kinds;
}

// The first rule ending at `node` whose kind is not in `kinds`; -1 when there is none.
std::int32_t Matcher::Trie::first_rule_outside(std::uint32_t node, std::uint8_t kinds) const noexcept {
    std::int32_t first = -1;
    for (std::size_t kind = 0; kind < kind_count; ++kind) {
        const std::int32_t rule = nodes[node].first[kind];
        if (rule >= 0 && !(kinds & (1U << kind)) && (first < 0 || rule < first)) first = rule;
    }
    return first;
}

Matcher::Matcher() : trie_(std::make_unique<Trie>()) {}
Matcher::~Matcher() = default;
Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;

void Matcher::add(const Pattern& pattern, RuleKind kind, std::int32_t rule_index) {
    if (!trie_) trie_ = std::make_unique<Trie>();  // a moved-from matcher starts over
    std::uint32_t node = 0;
    for (const std::string& component : pattern.components()) {
        if (component == globstar) {
            node = trie_->globstar_child(node);
        } else if (is_glob(component)) {
            node = trie_->glob_child(node, component);
        } else {
            node = trie_->literal_child(node, component);
        }
    }
    Trie::Node& end = trie_->nodes[node];
    end.anchor_length = pattern.anchor().size();
    std::int32_t& first = end.first[kind_index(kind)];
    if (first < 0 || rule_index < first) first = rule_index;
}

Match Matcher::match(std::string_view path) const noexcept {
    Match result;
    if (!trie_) return result;
    StateSet a;
    StateSet b;
    StateSet* current = nullptr;
    if (trie_->walk(path, a, b, current)) trie_->collect(*current, result);
    return result;
}

Match Matcher::exact(std::string_view path) const noexcept {
    Match result;
    if (!trie_) return result;
    std::uint32_t node = 0;
    for (std::size_t start = 1; start < path.size();) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        node = trie_->nodes[node].literals.find(path.substr(start, end - start));
        if (node == no_node) return result;
        start = end + 1;
    }
    const Trie::Node& end = trie_->nodes[node];
    result.read = end.first[kind_index(RuleKind::read)];
    result.write = end.first[kind_index(RuleKind::write)];
    result.create = end.first[kind_index(RuleKind::create)];
    result.deny = end.first[kind_index(RuleKind::deny)];
    return result;
}

// Beneath a path, the '**' nodes the walk is in keep matching at every depth: their kinds apply to
// every descendant. Any other rule that a longer path could still reach (a node below one the walk is
// in, by a literal, a glob or a '**') applies to some descendants only, so the subtree is uniform only
// if each such rule's kind is one that every descendant gets anyway.
Beneath Matcher::beneath(std::string_view path) const noexcept {
    Beneath result;
    if (!trie_) return {true, 0, -1};
    try {
        StateSet a;
        StateSet b;
        StateSet* current = nullptr;
        if (!trie_->walk(path, a, b, current)) return {true, 0, -1};  // no rule reaches below
        std::vector<std::uint32_t> pending;
        for (std::size_t i = 0; i < current->size(); ++i) {
            const Trie::Node& node = trie_->nodes[(*current)[i]];
            if (node.loops) result.kinds |= trie_->kinds_of((*current)[i]);
        }
        // A deny that every descendant gets decides for all of them, whatever else matches.
        if (result.kinds & (1U << kind_index(RuleKind::deny))) return {true, result.kinds, -1};
        for (std::size_t i = 0; i < current->size(); ++i) {
            const Trie::Node& node = trie_->nodes[(*current)[i]];
            for (const auto& [name, child] : node.literals)
                pending.push_back(child);
            for (const auto& [glob, child] : node.globs)
                pending.push_back(child);
            // A '**' child of a node in the set is in the set too (entered with it), so it is not
            // pending: its kinds are every descendant's. Its own children are reached through it.
        }
        while (!pending.empty()) {
            const std::uint32_t id = pending.back();
            pending.pop_back();
            const std::int32_t rule = trie_->first_rule_outside(id, result.kinds);
            if (rule >= 0 && (result.differing < 0 || rule < result.differing)) result.differing = rule;
            const Trie::Node& node = trie_->nodes[id];
            for (const auto& [name, child] : node.literals)
                pending.push_back(child);
            for (const auto& [glob, child] : node.globs)
                pending.push_back(child);
            if (node.globstar != no_node) pending.push_back(node.globstar);
        }
        result.uniform = result.differing < 0;
        return result;
    } catch (const std::bad_alloc&) {
        return {};  // not known to be uniform: the caller refuses
    }
}

}  // namespace fdbroker::policy
