#include "policy/text.hpp"

#include <array>

namespace fdbroker::policy {

namespace {

// Long values are cut so one bad 4 KiB pattern does not drown the diagnostic it appears in.
constexpr std::size_t quote_limit = 80;

bool is_continuation(char c) noexcept {
    return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

void append_escaped(std::string& out, char c) {
    static constexpr std::array<char, 16> hex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                 '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7F) {
        out.push_back(c);
        return;
    }
    out += "\\x";
    out.push_back(hex[byte >> 4U]);
    out.push_back(hex[byte & 0x0FU]);
}

// Byte index where 1-based `line` starts, or npos.
std::size_t line_start(std::string_view source, std::uint32_t line) noexcept {
    std::size_t pos = 0;
    for (std::uint32_t current = 1; current < line; ++current) {
        pos = source.find('\n', pos);
        if (pos == std::string_view::npos) return pos;
        ++pos;
    }
    return pos;
}

// Byte index of 1-based code point `column` of the line starting at `pos`, or npos.
std::size_t column_start(std::string_view source, std::size_t pos, std::uint32_t column) noexcept {
    for (std::uint32_t current = 1; current < column; ++current) {
        if (pos >= source.size() || source[pos] == '\n') return std::string_view::npos;
        ++pos;
        while (pos < source.size() && is_continuation(source[pos]))
            ++pos;
    }
    return pos;
}

std::size_t utf8_length(std::uint32_t code_point) noexcept {
    if (code_point < 0x80) return 1;
    if (code_point < 0x800) return 2;
    if (code_point < 0x10000) return 3;
    return 4;
}

// How many bytes of decoded value the escape sequence at raw[0] == '\\' produces, and how many raw
// bytes it spans. toml++ has already validated the escape, so the shape can be trusted.
struct Escape {
    std::size_t decoded = 1;
    std::size_t raw = 2;
};

Escape escape_at(std::string_view raw) noexcept {
    if (raw.size() < 2) return {};
    const std::size_t digits = raw[1] == 'u' ? 4 : raw[1] == 'U' ? 8 : 0;
    if (digits == 0 || raw.size() < 2 + digits) return {};
    std::uint32_t code_point = 0;
    for (std::size_t i = 0; i < digits; ++i) {
        const char c = raw[2 + i];
        const std::uint32_t nibble = c <= '9' ? static_cast<std::uint32_t>(c - '0')
                                              : static_cast<std::uint32_t>((c | 0x20) - 'a' + 10);
        code_point = code_point * 16 + nibble;
    }
    return {utf8_length(code_point), 2 + digits};
}

}  // namespace

std::string quote(std::string_view text) {
    std::string out = "'";
    std::size_t end = text.size();
    if (end > quote_limit) {
        end = quote_limit;
        while (end > 0 && is_continuation(text[end]))
            --end;  // never cut a character in half
    }
    for (std::size_t i = 0; i < end; ++i)
        append_escaped(out, text[i]);
    if (end < text.size()) out += "...";
    out += "'";
    return out;
}

std::uint32_t string_value_column(std::string_view source, std::uint32_t line, std::uint32_t column,
                                  std::size_t offset) noexcept {
    std::size_t pos = line_start(source, line);
    if (pos != std::string_view::npos) pos = column_start(source, pos, column);
    if (pos == std::string_view::npos || pos >= source.size()) return column;
    const char quote_char = source[pos];
    if (quote_char != '"' && quote_char != '\'') return column;
    // Multi-line strings may trim a leading newline and fold lines: no simple mapping, so point at the
    // string itself.
    if (source.substr(pos, 3) == std::string_view(quote_char == '"' ? "\"\"\"" : "'''")) return column;

    std::uint32_t result = column + 1;
    std::size_t decoded = 0;
    pos += 1;
    while (decoded < offset && pos < source.size() && source[pos] != quote_char && source[pos] != '\n') {
        if (quote_char == '"' && source[pos] == '\\') {
            const Escape escape = escape_at(source.substr(pos));
            decoded += escape.decoded;
            pos += escape.raw;
            result += static_cast<std::uint32_t>(escape.raw);  // an escape is written in ASCII
            continue;
        }
        ++decoded;
        ++pos;
        while (pos < source.size() && is_continuation(source[pos])) {
            ++decoded;
            ++pos;
        }
        ++result;
    }
    return result;
}

}  // namespace fdbroker::policy
