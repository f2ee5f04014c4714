#include "programs/runs.hpp"

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "programs/snapshot.hpp"
#include "support/harness.hpp"

namespace fdbroker::test::programs {

namespace {

// What both runs start with: `env -i -C WORK VARS... PROGRAM...`, so that neither inherits the test's
// environment or directory.
std::vector<std::string> in_work_dir(const std::vector<std::string>& argv, const std::string& work,
                                     const std::vector<std::string>& env) {
    std::vector<std::string> out{"/usr/bin/env", "-i", "-C", work};
    out.insert(out.end(), env.begin(), env.end());
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

CommandRun timed(const std::vector<std::string>& argv) {
    const auto start = std::chrono::steady_clock::now();
    Outcome o = run_command(argv);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    return {o.status, std::move(o.out), std::move(o.err), {}, took.count()};
}

// The broker's lines and the program's share one standard error: fdbroker prefixes its own. Both runs
// pass through here, so that the program's lines are compared in the same form.
void split_log(CommandRun& run) {
    std::istringstream in(run.err);
    std::string program;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("fdbroker: "))
            run.log.push_back(line);
        else
            program += line + "\n";
    }
    run.err = std::move(program);
}

// The value of "key":"value" in a JSON line, or "".
std::string json_field(const std::string& line, const std::string& key) {
    const std::string open = "\"" + key + "\":\"";
    const std::size_t start = line.find(open);
    if (start == std::string::npos) return {};
    const std::size_t from = start + open.size();
    return line.substr(from, line.find('"', from) - from);
}

}  // namespace

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    if (from.empty()) return text;
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

std::vector<std::string> environment(const ProgramCase& c, const std::string& work) {
    std::vector<std::string> env{"PATH=/usr/bin:/bin", "LANG=C", "TZ=UTC"};
    bool home = false;
    for (const std::string& e : c.env) {
        env.push_back(replace_all(e, kWorkDir, work));
        home = home || e.starts_with("HOME=");
    }
    if (!home) env.push_back("HOME=" + work);
    return env;
}

CommandRun run_native(const std::vector<std::string>& argv, const std::string& work,
                      const std::vector<std::string>& env) {
    // setpriv: nobody and nogroup, no supplementary groups, as fdbroker makes its workers.
    std::vector<std::string> command{"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    const std::vector<std::string> rest = in_work_dir(argv, work, env);
    command.insert(command.end(), rest.begin(), rest.end());
    CommandRun run = timed(command);
    split_log(run);
    return run;
}

CommandRun run_brokered(const std::vector<std::string>& argv, const std::string& work,
                        const std::vector<std::string>& env, const Broker& broker) {
    std::vector<std::string> command{fdbroker_bin(), "run",     "--transparent", "--policy",
                                     broker.policy,  "--audit", broker.audit};
    if (!broker.profile.empty()) command.insert(command.end(), {"--profile", broker.profile});
    command.emplace_back("--");
    command.insert(command.end(), argv.begin(), argv.end());
    CommandRun run = timed(in_work_dir(command, work, env));
    split_log(run);
    return run;
}

CommandRun run_learning(const std::vector<std::string>& argv, const std::string& work,
                        const std::vector<std::string>& env, const std::string& policy) {
    std::vector<std::string> command{fdbroker_bin(), "learn", "--transparent", "--append", "-o",
                                     policy,         "--"};
    command.insert(command.end(), argv.begin(), argv.end());
    CommandRun run = timed(in_work_dir(command, work, env));
    split_log(run);
    return run;
}

std::vector<std::string> denials(const std::string& audit) {
    std::vector<std::string> out;
    std::ifstream in(audit);
    for (std::string line; std::getline(in, line);) {
        if (json_field(line, "decision") != "deny") continue;
        // The path, a socket's address, or for a call the filter refused, which call.
        std::string what = json_field(line, "path");
        if (what.empty()) what = json_field(line, "address");
        if (what.empty()) what = json_field(line, "syscall");
        out.push_back(json_field(line, "op") + " " + what);
    }
    return out;
}

std::vector<std::string> differences(const ProgramCase& c, const Side& n, const Side& b,
                                     const std::string& dir, const std::vector<std::string>& denied) {
    std::vector<std::string> out;
    const std::string nw = dir + "/native", bw = dir + "/broker";
    for (std::size_t i = 0; i < c.commands.size(); ++i) {
        const CommandRun& nr = n.runs[i];
        const CommandRun& br = b.runs[i];
        const std::string cmd = "command " + std::to_string(i + 1) + " (" + c.commands[i][0] + ")";
        if (nr.status != br.status)
            out.push_back(cmd + ": status native " + std::to_string(nr.status) + " vs brokered " +
                          std::to_string(br.status));
        if (replace_all(nr.out, nw, kWorkDir) != replace_all(br.out, bw, kWorkDir))
            out.push_back(cmd + ": stdout native `" + nr.out + "` vs brokered `" + br.out + "`");
        if (replace_all(nr.err, nw, kWorkDir) != replace_all(br.err, bw, kWorkDir))
            out.push_back(cmd + ": stderr native `" + nr.err + "` vs brokered `" + br.err + "`");
        for (const std::string& line : br.log)
            out.push_back(std::string(cmd).append(": fdbroker logged `").append(line).append("`"));
    }
    if (n.files != b.files)
        out.push_back("files: native `" + only_in(n.files, b.files) + "` vs brokered `" +
                      only_in(b.files, n.files) + "`");
    for (const std::string& d : std::set<std::string>(denied.begin(), denied.end()))
        out.push_back("denied: " + d);
    return out;
}

}  // namespace fdbroker::test::programs
