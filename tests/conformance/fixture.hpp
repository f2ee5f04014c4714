// The runner's native phases: making every case's fixture, and printing every case's resulting file
// state. Both run as root, outside any broker, so that what they see is the file system itself.
#pragma once

#include <iosfwd>
#include <string>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

// Makes DIR/<id>/ for every case (and OTHER/<id>/ when `other` is not empty), owned like DIR.
// Returns the number of cases whose fixture could not be made (each named on stderr).
int make_fixtures(const Cases& cases, const std::string& dir, const std::string& other);

// One line per case: "<id> | <entry>; <entry>..." with every entry under DIR/<id> (and OTHER/<id>),
// sorted, described by lstat (and link text, extended attributes, times where the case sets them).
void print_state(const Cases& cases, const std::string& dir, const std::string& other, std::ostream& out);

}  // namespace fdbroker::conformance
