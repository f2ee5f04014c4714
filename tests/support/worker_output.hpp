// Output and argument helpers shared by the test worker's command files.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fdbroker::test {

// Word i of a command group, or "" past its end.
std::string arg(const std::vector<std::string>& args, std::size_t i);
// "rdonly|creat|0x40" -> open flags.
int parse_flags(const std::string& spec);
// Prints the errno's name ("EACCES").
void print_errno(int e);
// Prints "ok" (plus detail) when rc >= 0, else the name of errno.
void report(int rc, const std::string& detail = "");
// Opens `path` read-only through the broker `count` times; the number of opens that failed.
int open_many(const std::string& path, int count);

}  // namespace fdbroker::test
