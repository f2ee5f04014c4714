#include "policy/accounts.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace fdbroker::policy {

namespace {

// Entries larger than this are not worth loading a policy for; it bounds the ERANGE retries.
constexpr std::size_t max_buffer = std::size_t{1} << 20;

// getpw*_r and getgr*_r report "no such entry" either as success with a null result or, depending on
// the NSS module, as one of these (see getpwnam_r(3)).
bool means_not_found(int code) noexcept {
    return code == 0 || code == ENOENT || code == ESRCH || code == EBADF || code == EPERM;
}

std::size_t initial_buffer(int sysconf_name) noexcept {
    const long hint = sysconf(sysconf_name);
    return hint > 0 ? static_cast<std::size_t>(hint) : std::size_t{1024};
}

// Runs one reentrant lookup, growing the buffer while the entry does not fit.
template <typename Entry, typename Call>
Lookup lookup(int sysconf_name, Entry& entry, LookupError& error, Call call) {
    std::vector<char> buffer(initial_buffer(sysconf_name));
    for (;;) {
        Entry* result = nullptr;
        const int code = call(&entry, buffer.data(), buffer.size(), &result);
        if (code == ERANGE && buffer.size() < max_buffer) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        if (result != nullptr) return Lookup::found;
        if (means_not_found(code)) return Lookup::not_found;
        error.errno_value = code;
        return Lookup::failed;
    }
}

}  // namespace

Lookup find_user(const std::string& name, Account& account, LookupError& error) {
    passwd entry{};
    const Lookup outcome = lookup(
        _SC_GETPW_R_SIZE_MAX, entry, error,
        [&](passwd* e, char* b, std::size_t n, passwd** r) { return getpwnam_r(name.c_str(), e, b, n, r); });
    if (outcome == Lookup::found) account = {entry.pw_uid, entry.pw_gid};
    return outcome;
}

Lookup find_uid(uid_t uid, Account& account, LookupError& error) {
    passwd entry{};
    const Lookup outcome =
        lookup(_SC_GETPW_R_SIZE_MAX, entry, error,
               [&](passwd* e, char* b, std::size_t n, passwd** r) { return getpwuid_r(uid, e, b, n, r); });
    if (outcome == Lookup::found) account = {entry.pw_uid, entry.pw_gid};
    return outcome;
}

Lookup find_group(const std::string& name, gid_t& gid, LookupError& error) {
    group entry{};
    const Lookup outcome = lookup(
        _SC_GETGR_R_SIZE_MAX, entry, error,
        [&](group* e, char* b, std::size_t n, group** r) { return getgrnam_r(name.c_str(), e, b, n, r); });
    if (outcome == Lookup::found) gid = entry.gr_gid;
    return outcome;
}

}  // namespace fdbroker::policy
