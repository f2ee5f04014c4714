// How results and file state are printed, the same way by every phase of the runner.
#pragma once

#include <sys/types.h>

#include <string>

namespace fdbroker::conformance {

// Who "self" is in what is printed (the worker's user), and the directories whose names are printed
// as "$DIR" and "$OTHER", so that runs in different directories compare textually.
void set_self(uid_t uid, gid_t gid);
void set_bases(const std::string& dir, const std::string& other);
std::string owner_name(uid_t uid);
std::string group_name(gid_t gid);
std::string normalise(std::string text);
// Long components made of one repeated character (the suite's long names) as "a*255".
std::string compact(const std::string& text);

}  // namespace fdbroker::conformance
