#include "policy/path.hpp"

namespace fdbroker::policy {

namespace {

// "." and ".." are refused rather than resolved: a lexical resolution could disagree with what the
// kernel does through symlinks, so neither patterns nor requests may use them.
bool is_dot_component(std::string_view component) noexcept {
    return component == "." || component == "..";
}

}  // namespace

bool is_normal_absolute(std::string_view path) noexcept {
    if (path.empty() || path.front() != '/') return false;
    if (path.size() == 1) return true;
    if (path.back() == '/') return false;
    std::size_t start = 1;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        const std::string_view component = path.substr(start, end - start);
        if (component.empty() || is_dot_component(component)) return false;
        if (component.find('\0') != std::string_view::npos) return false;
        start = end + 1;
    }
    return true;
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

}  // namespace fdbroker::policy
