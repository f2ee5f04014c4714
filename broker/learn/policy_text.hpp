// Writing learned rules into a policy file's text, where an administrator reads them: each rule one
// line with its provenance comment, added to the profile's arrays (or as new keys at the end of the
// profile), every other line of the file as it was, comments included. Then a diff of the two texts.
#pragma once

#include <string>
#include <string_view>

#include "broker/learn/learned_rules.hpp"

namespace fdbroker::broker::learn {

// `text_in` (a valid policy file named `file`) with `add` written into profile `profile` (made at the end
// of the file if it has none). Empty, with `error` set, when the file cannot be edited that way.
[[nodiscard]] std::string add_to_profile(std::string_view text_in, std::string_view file,
                                         std::string_view profile, const Additions& add, std::string& error);

// The file `fdbroker learn` starts from without a policy: a profile with the runtime include.
[[nodiscard]] std::string starting_policy(std::string_view profile);

// A unified-style diff of two texts ("--- a", "+++ b", lines prefixed with ' ', '-', '+'), empty when
// they are equal.
[[nodiscard]] std::string line_diff(std::string_view before, std::string_view after, std::string_view a_name,
                                    std::string_view b_name);

// `text` as a TOML basic string, quotes included.
[[nodiscard]] std::string toml_string(std::string_view text);

}  // namespace fdbroker::broker::learn
