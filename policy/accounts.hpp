// Resolving the user and group names of a policy through the system's user database (NSS).
#pragma once

#include <sys/types.h>

#include <string>

namespace fdbroker::policy {

struct Account {
    uid_t uid = 0;
    gid_t primary_gid = 0;
};

// "Not found" and "could not ask" are kept apart so a broken NSS setup is not reported as a typo.
enum class Lookup { found, not_found, failed };

struct LookupError {
    int errno_value = 0;  // set when the answer is Lookup::failed
};

[[nodiscard]] Lookup find_user(const std::string& name, Account& account, LookupError& error);
[[nodiscard]] Lookup find_uid(uid_t uid, Account& account, LookupError& error);
[[nodiscard]] Lookup find_group(const std::string& name, gid_t& gid, LookupError& error);

}  // namespace fdbroker::policy
