// P6: how long policy::Profile::decide() takes, by rule count and by path depth.
//
// The rules mimic a real policy at scale: per-application trees, globbed files, recursive globs and
// single files, plus a few deny rules, each under its own prefix. The target is a median under 1 µs
// at 10 000 rules that grows with path depth, not with rule count.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "policy/policy.hpp"

namespace {

using fdbroker::policy::Policy;
using fdbroker::policy::Profile;

std::string policy_text(int rules) {
    std::string text = "version = 1\n[profile.default]\nread = [\n";
    std::string deny = "deny = [\n";
    for (int i = 0; i < rules; ++i) {
        const std::string n = std::to_string(i);
        switch (i % 4) {
            case 0:
                text += "  \"/srv/app" + n + "/**\",\n";
                break;
            case 1:
                text += "  \"/srv/app" + n + "/data/*.txt\",\n";
                break;
            case 2:
                text += "  \"/var/log/svc" + n + "/**/*.log\",\n";
                break;
            default:
                text += "  \"/etc/conf" + n + "\",\n";
                break;
        }
        if (i % 100 == 0) deny += "  \"/srv/app" + n + "/secret/**\",\n";
    }
    return text + "]\n" + deny + "]\n";
}

// Profiles are loaded once per rule count and shared by every benchmark that uses that count.
const Profile& profile(int rules) {
    static std::map<int, std::shared_ptr<const Policy>> cache;
    auto& slot = cache[rules];
    if (!slot) {
        auto result = Policy::load_string(policy_text(rules), "bench.toml");
        if (!result.policy) {
            for (const auto& e : result.errors)
                std::fprintf(stderr, "%s\n", e.str().c_str());
            std::abort();
        }
        slot = result.policy;
    }
    return *slot->profile("default");
}

// A path of `depth` components beneath `prefix` (which counts for its own components), ending in
// `leaf`; depth is the total number of components.
std::string deep_path(const std::string& prefix, int prefix_depth, int depth, const std::string& leaf) {
    std::string path = prefix;
    for (int d = prefix_depth; d < depth - 1; ++d)
        path += "/d" + std::to_string(d);
    if (depth > prefix_depth) path += "/" + leaf;
    return path;
}

void run(benchmark::State& state, const std::string& path, bool expect) {
    const Profile& p = profile(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        auto decision = p.decide(path, fdbroker::policy::need_read);
        benchmark::DoNotOptimize(decision);
    }
    if (p.decide(path, fdbroker::policy::need_read).allowed != expect)
        state.SkipWithError(("unexpected decision for " + path).c_str());
}

// Granted by a "/srv/appN/**" rule near the middle of the list.
void BM_decide_hit_tree(benchmark::State& state) {
    const int target = static_cast<int>(state.range(0)) / 2 / 4 * 4;
    run(state, deep_path("/srv/app" + std::to_string(target), 2, static_cast<int>(state.range(1)), "f"),
        true);
}

// Granted by a "/var/log/svcN/**/*.log" rule: the recursive glob must walk the whole depth.
void BM_decide_hit_glob(benchmark::State& state) {
    const int target = static_cast<int>(state.range(0)) / 2 / 4 * 4 + 2;
    const int depth = std::max(4, static_cast<int>(state.range(1)));
    run(state, deep_path("/var/log/svc" + std::to_string(target), 3, depth, "x.log"), true);
}

// Granted by nothing: the default deny, the case a hostile worker can trigger at will.
void BM_decide_miss(benchmark::State& state) {
    run(state, deep_path("/srv/nothere", 2, static_cast<int>(state.range(1)), "f"), false);
}

void args(benchmark::internal::Benchmark* b) {
    for (int rules : {10, 1000, 10000})
        for (int depth : {2, 6, 12})
            b->Args({rules, depth});
    b->ArgNames({"rules", "depth"});
}

}  // namespace

BENCHMARK(BM_decide_hit_tree)->Apply(args);
BENCHMARK(BM_decide_hit_glob)->Apply(args);
BENCHMARK(BM_decide_miss)->Apply(args);
BENCHMARK_MAIN();
