#include "policy/path.hpp"

namespace fdbroker::policy {

namespace {

// Appends the components of `path` to `out`, which holds a normal absolute path. False if too long.
bool append_components(std::string_view path, PathBuffer& out) noexcept {
    while (!path.empty()) {
        const std::size_t slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            const std::size_t last = out.view().rfind('/');
            out.truncate(last == 0 ? 1 : last);
            continue;
        }
        if (out.size() > 1 && !out.append("/")) return false;
        if (!out.append(part)) return false;
    }
    return true;
}

}  // namespace

// One pass over the bytes: every request's path is checked here before it is matched.
bool is_normal_absolute(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/') return false;
    if (path.size() == 1) return true;
    std::size_t length = 0;  // of the current component
    std::size_t dots = 0;    // how many of its bytes are '.': all of them, one or two, is "." or ".."
    for (std::size_t i = 1; i < path.size(); ++i) {
        const char c = path[i];
        if (c == '/') {
            if (length == 0 || (dots == length && dots <= 2)) return false;
            dots = length = 0;
            continue;
        }
        if (c == '\0') return false;
        if (c == '.') ++dots;
        ++length;
    }
    return length != 0 && !(dots == length && dots <= 2);
}

std::string_view parent_of(std::string_view path) noexcept {
    if (path.size() <= 1) return {};
    const std::size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) return {};
    return slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
}

std::string_view name_of(std::string_view path) noexcept {
    const std::size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool join_lexically(std::string_view base, std::string_view path, PathBuffer& out) noexcept {
    if (path.empty()) return false;
    out.truncate(0);
    static_cast<void>(out.append("/"));
    if (path.front() != '/' && !append_components(base, out)) return false;
    return append_components(path, out);
}

}  // namespace fdbroker::policy
