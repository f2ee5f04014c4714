#include "policy/pool.hpp"

#include <toml++/toml.h>

#include "policy/path.hpp"

namespace fdbroker::policy {

bool load_pool_setting(std::string_view key, const toml::node& value, Pool& out, const ErrorSink& error) {
    if (key == "command") {
        const toml::array* array = value.as_array();
        const char* const shape =
            "'command' must be a non-empty array of strings: the program's absolute path, "
            "then its arguments";
        if (array == nullptr || array->empty()) {
            error(value.source().begin, shape);
            return true;
        }
        out.command.clear();
        for (const toml::node& element : *array) {
            const auto* s = element.as_string();
            if (s == nullptr) {
                error(element.source().begin, shape);
                out.command.clear();
                return true;
            }
            out.command.push_back(s->get());
        }
        // The broker resolves nothing through PATH for a service: which program runs must be plain
        // from the policy alone.
        if (!is_normal_absolute(out.command.front()))
            error(array->front().source().begin, "'command' must start with an absolute, normal path");
    } else if (key == "instances") {
        const auto* n = value.as_integer();
        if (n == nullptr || n->get() < 1 || n->get() > static_cast<std::int64_t>(kMaxInstances))
            error(value.source().begin,
                  "'instances' must be an integer from 1 to " + std::to_string(kMaxInstances));
        else
            out.instances = static_cast<std::uint32_t>(n->get());
    } else if (key == "restart") {
        const auto* s = value.as_string();
        if (s && s->get() == "always")
            out.restart = Restart::always;
        else if (s && s->get() == "on-failure")
            out.restart = Restart::on_failure;
        else if (s && s->get() == "never")
            out.restart = Restart::never;
        else
            error(value.source().begin, "'restart' must be \"always\", \"on-failure\" or \"never\"");
    } else {
        return false;
    }
    return true;
}

std::string_view restart_name(Restart restart) noexcept {
    switch (restart) {
        case Restart::always:
            return "always";
        case Restart::on_failure:
            return "on-failure";
        case Restart::never:
            break;
    }
    return "never";
}

}  // namespace fdbroker::policy
