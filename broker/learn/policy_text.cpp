#include "broker/learn/policy_text.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace fdbroker::broker::learn {

namespace {

// A change to the text: `erase` bytes at `offset` replaced by `text`.
struct Edit {
    std::size_t offset;
    std::string text;
    std::size_t erase = 0;
};

// Byte offsets of each line's start (lines are 1-based in toml++ positions).
class Lines {
  public:
    explicit Lines(std::string_view text) : text_(text) {
        starts_.push_back(0);
        for (std::size_t i = 0; i < text.size(); ++i)
            if (text[i] == '\n') starts_.push_back(i + 1);
    }
    [[nodiscard]] std::size_t offset(const toml::source_position& at) const {
        const std::size_t line = std::min<std::size_t>(at.line, starts_.size()) - 1;
        return std::min(starts_[line] + (at.column > 0 ? at.column - 1 : 0), text_.size());
    }
    // The offset just past the end of line `line` (its newline included, if any).
    [[nodiscard]] std::size_t after_line(std::size_t line) const {
        return line < starts_.size() ? starts_[line] : text_.size();
    }

  private:
    std::string_view text_;
    std::vector<std::size_t> starts_;
};

// A comment's text: TOML comments hold no control character but tab.
std::string comment_text(std::string_view text) {
    std::string out(text);
    std::replace_if(
        out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; },
        '?');
    return out;
}

std::string entry_lines(const std::vector<Entry>& entries) {
    std::string out;
    for (const Entry& e : entries)
        out += "    " + toml_string(e.value) + ",  # " + comment_text(e.comment) + "\n";
    return out;
}

std::string new_key(std::string_view prefix, std::string_view key, const std::vector<Entry>& entries) {
    return std::string(prefix) + std::string(key) + " = [\n" + entry_lines(entries) + "]\n";
}

// Whether the last thing before `end` in `text`, comments and blanks aside, is `[` or `,`.
bool ends_open(std::string_view text, std::size_t end) {
    std::size_t line_end = end;
    while (true) {
        const std::size_t start = text.rfind('\n', line_end == 0 ? 0 : line_end - 1);
        const std::size_t from = start == std::string_view::npos || line_end == 0 ? 0 : start + 1;
        std::string_view line = text.substr(from, line_end - from);
        // A '#' outside a string starts a comment (array elements here are strings without '#' mostly;
        // a '#' inside quotes is skipped by counting them).
        bool quoted = false;
        for (std::size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '"' && (i == 0 || line[i - 1] != '\\')) quoted = !quoted;
            if (line[i] == '#' && !quoted) {
                line = line.substr(0, i);
                break;
            }
        }
        const std::size_t last = line.find_last_not_of(" \t\r");
        if (last != std::string_view::npos) return line[last] == '[' || line[last] == ',';
        if (from == 0) return true;
        line_end = from - 1;
    }
}

// Adds `entries` at the end of the array `array`: on lines of their own before its `]`, or, inside an
// inline table (which TOML keeps on one line), on the same line without comments.
void add_to_array(std::string_view text, const Lines& lines, const toml::node& array, bool inline_table,
                  const std::vector<Entry>& entries, std::vector<Edit>& edits) {
    const std::size_t close = lines.offset(array.source().end) - 1;  // the ']'
    std::string insert = ends_open(text, close) ? "" : ",";
    if (inline_table) {
        for (const Entry& e : entries)
            insert += " " + toml_string(e.value) + ",";
        edits.push_back({close, insert + " "});
        return;
    }
    const std::size_t line_start =
        text.rfind('\n', close - 1) == std::string_view::npos ? 0 : text.rfind('\n', close - 1) + 1;
    const bool alone =
        text.substr(line_start, close - line_start).find_first_not_of(" \t") == std::string_view::npos;
    if (alone) {
        if (!insert.empty())
            edits.push_back({close, insert});  // never happens for a ']' alone: kept for safety
        edits.push_back({line_start, entry_lines(entries)});
    } else {
        edits.push_back({close, insert + "\n" + entry_lines(entries)});
    }
}

struct ProfileText {
    const toml::table* table;
    std::string prefix;       // "" under [profile.NAME], else the dotted prefix of its keys
    std::size_t end_of_keys;  // where new keys go
};

ProfileText locate_profile(std::string_view text, const Lines& lines, const toml::table& table,
                           std::string_view name) {
    ProfileText p{&table, "", 0};
    const std::size_t header = lines.offset(table.source().begin);
    const std::string_view first = text.substr(header);
    if (!first.starts_with("[profile."))
        p.prefix = (first.starts_with("profile.") ? "profile." : "") + std::string(name) + ".";
    std::size_t last_line = table.source().begin.line;
    for (const auto& [key, value] : table)
        if (!(value.is_table() && !value.as_table()->is_inline()) && !(value.is_array_of_tables()))
            last_line = std::max<std::size_t>(last_line, value.source().end.line);
    p.end_of_keys = lines.after_line(last_line);
    return p;
}

}  // namespace

std::string toml_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", u);
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string starting_policy(std::string_view profile) {
    return "# Written by fdbroker learn: every rule says which calls needed it. Check it with\n"
           "# `fdbroker check`, read it, and narrow what is broader than the program's purpose.\n"
           "version = 1\n\n[profile." +
           std::string(profile) + "]\n";
}

namespace {

// Parses `text`, with a [profile.NAME] table added at its end when it has none.
bool parse_with_profile(std::string& text, std::string_view file, std::string_view profile, toml::table& root,
                        std::string& error) {
    for (int pass = 0; pass < 2; ++pass) {
        try {
            root = toml::parse(text, std::string(file));
        } catch (const toml::parse_error& e) {
            error = std::string(e.description());
            return false;
        }
        if (root["profile"][profile].as_table() != nullptr) return true;
        if (!text.empty() && text.back() != '\n') text += '\n';
        text += "\n[profile." + std::string(profile) + "]\n";
    }
    error = "cannot add profile '" + std::string(profile) + "'";
    return false;
}

}  // namespace

std::string add_to_profile(std::string_view text_in, std::string_view file, std::string_view profile,
                           const Additions& add, std::string& error) {
    std::string with_profile(text_in);
    toml::table root;
    if (!parse_with_profile(with_profile, file, profile, root, error)) return {};
    const std::string_view text = with_profile;
    const toml::table* table = root["profile"][profile].as_table();
    std::string out(text);
    const Lines lines(text);
    const ProfileText where = locate_profile(text, lines, *table, profile);
    std::vector<Edit> edits;
    std::string keys;  // new keys, at the end of the profile's own keys
    auto array_key = [&](const toml::table& in, std::string_view key, const std::vector<Entry>& entries,
                         std::string_view prefix) {
        if (entries.empty()) return true;
        const toml::node* node = in.get(key);
        if (node == nullptr) {
            keys += new_key(prefix, key, entries);
            return true;
        }
        if (!node->is_array()) return false;
        add_to_array(text, lines, *node, in.is_inline(), entries, edits);
        return true;
    };
    const std::vector<Entry> runtime = add.include_runtime.empty()
                                           ? std::vector<Entry>{}
                                           : std::vector<Entry>{{"runtime", add.include_runtime}};
    bool ok = array_key(*table, "include", runtime, where.prefix) &&
              array_key(*table, "read", add.read, where.prefix) &&
              array_key(*table, "write", add.write, where.prefix) &&
              array_key(*table, "create", add.create, where.prefix) &&
              array_key(*table, "connect", add.connect, where.prefix) &&
              array_key(*table, "listen", add.listen, where.prefix);
    if (ok && !add.syscalls.empty()) {
        if (const toml::table* syscalls = table->get_as<toml::table>("syscalls"))
            ok = array_key(*syscalls, "allow", add.syscalls, "");
        else
            keys += new_key(where.prefix + "syscalls.", "allow", add.syscalls);
    }
    if (ok && !add.exec.empty()) {
        if (const toml::node* exec = table->get("exec")) {
            const std::size_t from = lines.offset(exec->source().begin);
            const std::size_t to = lines.offset(exec->source().end);
            edits.push_back({from, "true", to - from});
        } else {
            keys += where.prefix + "exec = true  # " + comment_text(add.exec) + "\n";
        }
    }
    if (!ok) {
        error = "profile '" + std::string(profile) + "' has a key that is not an array where rules go";
        return {};
    }
    if (!keys.empty())
        edits.push_back({where.end_of_keys,
                         (where.end_of_keys > 0 && text[where.end_of_keys - 1] != '\n' ? "\n" : "") + keys});
    std::stable_sort(edits.begin(), edits.end(),
                     [](const Edit& a, const Edit& b) { return a.offset > b.offset; });
    for (const Edit& e : edits)
        out.replace(e.offset, e.erase, e.text);
    return out;
}

std::string line_diff(std::string_view before, std::string_view after, std::string_view a_name,
                      std::string_view b_name) {
    auto split = [](std::string_view text) {
        std::vector<std::string_view> lines;
        while (!text.empty()) {
            const std::size_t nl = text.find('\n');
            lines.push_back(text.substr(0, nl));
            if (nl == std::string_view::npos) break;
            text.remove_prefix(nl + 1);
        }
        return lines;
    };
    const auto a = split(before);
    const auto b = split(after);
    if (a == b) return {};
    // Longest common subsequence, from the end: policy files are short.
    std::vector<std::vector<std::size_t>> lcs(a.size() + 1, std::vector<std::size_t>(b.size() + 1, 0));
    for (std::size_t i = a.size(); i-- > 0;)
        for (std::size_t j = b.size(); j-- > 0;)
            lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    std::string out = "--- " + std::string(a_name) + "\n+++ " + std::string(b_name) + "\n";
    std::size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        if (i < a.size() && j < b.size() && a[i] == b[j]) {
            out += " " + std::string(a[i++]) + "\n";
            ++j;
        } else if (i < a.size() && (j == b.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
            out += "-" + std::string(a[i++]) + "\n";
        } else {
            out += "+" + std::string(b[j++]) + "\n";
        }
    }
    return out;
}

}  // namespace fdbroker::broker::learn
