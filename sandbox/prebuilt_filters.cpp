#include "sandbox/prebuilt_filters.hpp"

#include <seccomp.h>

#include <array>

namespace fdbroker::sandbox {

namespace {

// With a broker (run and serve mode) and without one (fdbroker_lockdown(), a pid namespace's init):
// each exec setting, datagram reach and terminal. Transparent mode's filter names the brokered calls
// and is compiled at run time.
constexpr auto kVariants = [] {
    std::array<PrebuiltVariant, 24> all{};
    std::size_t i = 0;
    for (const FilterAction action : {FilterAction::notify, FilterAction::kill})
        for (const bool exec : {false, true})
            for (const auto reach : {policy::DatagramReach::peer, policy::DatagramReach::any})
                for (const auto terminal :
                     {policy::Terminal::shared, policy::Terminal::job_control, policy::Terminal::detached})
                    all[i++] = {action, exec, reach, terminal};
    return all;
}();

bool same(const PrebuiltVariant& v, const FilterOptions& o) noexcept {
    return v.action == o.action && v.exec == o.exec && v.datagram_reach == o.datagram_reach &&
           v.terminal == o.terminal && o.brokered.empty();
}

bool built_for_this_library() noexcept {
    const PrebuiltTable& table = kPrebuiltFilters;
    const scmp_version* v = seccomp_version();
    return table.programs.size() == kVariants.size() && table.broker.size() == kBrokerVariants &&
           !table.keeper.empty() && table.arch == seccomp_arch_native() && v != nullptr &&
           v->major == table.major && v->minor == table.minor && v->micro == table.micro;
}

}  // namespace

std::span<const PrebuiltVariant> prebuilt_variants() noexcept {
    return kVariants;
}

std::span<const sock_filter> prebuilt_worker_filter(const policy::SyscallRules& rules,
                                                    const FilterOptions& options) noexcept {
    if (rules.preset != "default" || !rules.allow.empty() || !rules.deny.empty() || !built_for_this_library())
        return {};
    for (std::size_t i = 0; i < kVariants.size(); ++i)
        if (same(kVariants[i], options)) return kPrebuiltFilters.programs[i];
    return {};
}

std::span<const sock_filter> prebuilt_keeper_filter() noexcept {
    return built_for_this_library() ? kPrebuiltFilters.keeper : std::span<const sock_filter>();
}

std::span<const sock_filter> prebuilt_broker_filter(std::size_t variant) noexcept {
    if (!built_for_this_library() || variant >= kBrokerVariants) return {};
    return kPrebuiltFilters.broker[variant];
}

}  // namespace fdbroker::sandbox
