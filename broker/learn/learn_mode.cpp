#include "broker/learn/learn_mode.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "broker/core/log.hpp"
#include "broker/learn/learned_rules.hpp"
#include "broker/learn/observations.hpp"
#include "broker/learn/policy_text.hpp"
#include "broker/run/run_mode.hpp"
#include "fdbroker/unique_fd.hpp"

namespace fdbroker::broker::learn {

namespace {

constexpr int kFailed = 125;

// What complain mode performs a refused request under: everything, the worker's own identity being
// what limits it (perform.hpp). Devices only where the runtime include names them, as ever.
constexpr const char* kPermissive = R"(version = 1
[profile.complain]
include = ["runtime"]
read = ["/**"]
write = ["/**"]
create = ["/**"]
connect = ["tcp:0.0.0.0/0:*", "tcp:[::/0]:*", "udp:0.0.0.0/0:*", "udp:[::/0]:*", "unix:/**"]
listen = ["tcp:0.0.0.0/0:*", "tcp:[::/0]:*", "udp:0.0.0.0/0:*", "udp:[::/0]:*", "unix:/**"]
datagram_reach = "any"
)";

bool read_file(const std::string& name, std::string& text) {
    std::ifstream in(name, std::ios::binary);
    if (!in) return false;
    std::ostringstream all;
    all << in.rdbuf();
    text = all.str();
    return true;
}

// Writes `text` to `name` whole or not at all (a temporary file beside it, renamed over it).
bool write_file(const std::string& name, const std::string& text) {
    const std::string temporary = name + ".tmp";
    const fdbroker::unique_fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return false;
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return ::fsync(fd.get()) == 0 && ::rename(temporary.c_str(), name.c_str()) == 0;
}

// The policy text the run starts from, and the name it goes by in diagnostics.
bool starting_text(const LearnCommand& c, std::string& text, std::string& name) {
    if (c.append && ::access(c.output.c_str(), F_OK) == 0) {
        name = c.output;
    } else if (!c.base.empty()) {
        name = c.base;
    } else {
        name = c.output;
        text = starting_policy(c.profile);
        return true;
    }
    if (read_file(name, text)) return true;
    log("learn: cannot read %s: %s", name.c_str(), std::strerror(errno));
    return false;
}

// Writes what was learned into `text`, checks it, and saves it as the output file.
bool save(const LearnCommand& c, const std::string& text, const std::string& name,
          const policy::Profile& profile, const Observations& seen) {
    const Additions add = plan_additions(seen, profile, {.group = c.group});
    std::string error;
    const std::string learned = add_to_profile(text, name, c.profile, add, error);
    if (learned.empty()) {
        log("learn: cannot write the rules into %s: %s", name.c_str(), error.c_str());
        return false;
    }
    const policy::LoadResult check = policy::Policy::load_string(learned, c.output);
    for (const policy::Diagnostic& d : check.errors)
        log("learn: the learned policy is not valid: %s", d.str().c_str());
    if (!check.policy) return false;
    if (!write_file(c.output, learned)) {
        log("learn: cannot write %s: %s", c.output.c_str(), std::strerror(errno));
        return false;
    }
    const std::size_t rules = add.read.size() + add.write.size() + add.create.size() + add.connect.size() +
                              add.listen.size() + add.syscalls.size() + (add.exec.empty() ? 0 : 1) +
                              (add.include_runtime.empty() ? 0 : 1);
    if (name != c.output || c.append) {
        const std::string diff = line_diff(text, learned, name, c.output);
        std::fputs(diff.c_str(), stderr);
    }
    log("learn: %zu rule%s added to profile '%s' in %s", rules, rules == 1 ? "" : "s", c.profile.c_str(),
        c.output.c_str());
    return true;
}

}  // namespace

int learn(const LearnCommand& command) {
    std::string text;
    std::string name;
    if (!starting_text(command, text, name)) return kFailed;
    std::string error;
    // A profile the file lacks is made, empty, at its end.
    text = add_to_profile(text, name, command.profile, {}, error);
    policy::LoadResult loaded = policy::Policy::load_string(text, name);
    for (const policy::Diagnostic& d : loaded.errors)
        log("%s", d.str().c_str());
    if (!loaded.policy) return kFailed;
    const policy::LoadResult complain = policy::Policy::load_string(kPermissive, "<complain>");
    for (const policy::Diagnostic& d : complain.errors)
        log("%s", d.str().c_str());
    const std::shared_ptr<const policy::Policy> permissive = complain.policy;
    const policy::Profile* profile = loaded.policy->profile(command.profile);
    if (permissive == nullptr || profile == nullptr) {
        log("learn: no profile '%s' to learn into", command.profile.c_str());
        return kFailed;
    }

    Collector collector;
    RunOptions options;
    options.policy_file = name;
    options.loaded = loaded.policy;
    options.profile = command.profile;
    options.audit = command.audit;
    options.transparent = command.transparent;
    options.verbose = command.verbose;
    options.argv = command.argv;
    options.permissive = &permissive->profiles().front();
    options.recorder = &collector;
    const int status = run(options);
    if (status == kFailed && collector.observations().empty()) return kFailed;
    if (!save(command, text, name, *profile, collector.observations())) return kFailed;
    return status;
}

}  // namespace fdbroker::broker::learn
