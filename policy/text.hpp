// How text from a policy file appears in diagnostics: quoting values safely, and finding the column of
// a byte inside a TOML string so an error can point at the offending character.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fdbroker::policy {

// `text` in single quotes, with control bytes escaped (a pattern may hold a NUL or a newline that would
// break a one-line diagnostic) and very long values shortened.
[[nodiscard]] std::string quote(std::string_view text);

// The column (1-based, in code points like toml++'s own positions) of byte `offset` of the decoded
// value of the TOML string that starts at `line`:`column` of `source`. Exact for single-line basic and
// literal strings, escapes included; for anything else it returns `column`, the string's own start.
[[nodiscard]] std::uint32_t string_value_column(std::string_view source, std::uint32_t line,
                                                std::uint32_t column, std::size_t offset) noexcept;

}  // namespace fdbroker::policy
