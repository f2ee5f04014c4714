#include "broker/cli/cli.hpp"

#include <unistd.h>
#include <algorithm>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "broker/cli/doctor.hpp"
#include "broker/core/log.hpp"
#include "broker/explain/audit_summary.hpp"
#include "broker/explain/explanation.hpp"
#include "broker/explain/request.hpp"
#include "broker/learn/learn_mode.hpp"
#include "broker/run/run_mode.hpp"
#include "broker/serve/serve_mode.hpp"
#include "policy/accounts.hpp"
#include "policy/policy.hpp"

namespace po = boost::program_options;

namespace fdbroker::broker {

namespace {

constexpr int kUsageRun = 125;  // `run` reserves 126/127 and the worker's own codes
constexpr int kUsageOther = 2;

const char* const kUsage =
    "Usage: fdbroker run   --policy FILE [--profile NAME] [--transparent] [--audit FILE|-] [-v] [--]\n"
    "                      PROGRAM [ARG...]\n"
    "       fdbroker serve --policy FILE [--socket PATH|@NAME] [--socket-mode MODE] [--socket-group GROUP]\n"
    "                      [--audit FILE|-] [-v]\n"
    "       fdbroker check FILE...\n"
    "       fdbroker explain --policy FILE [--profile NAME] [--json] OP TARGET... [MODE]\n"
    "       fdbroker explain --policy FILE --audit FILE [--json]\n"
    "       fdbroker doctor [--policy FILE] [--json]\n"
    "       fdbroker learn [--policy FILE [--profile NAME]] [--transparent] -o OUT.toml [--append]\n"
    "                      [--group N] [--] PROGRAM [ARG...]\n"
    "       fdbroker --help | --version\n"
    "\n"
    "A privilege-separation broker: PROGRAM runs unprivileged and asks fdbroker for the files and\n"
    "sockets its policy grants, through libfdbroker or, with --transparent, without knowing it: any\n"
    "unmodified program's opens, path calls, connects and binds are decided by the same policy.\n"
    "\n"
    "Example (a profile with include = [\"runtime\"] and read = [\"/etc/hostname\"]):\n"
    "  fdbroker run --transparent --policy p.toml -- /bin/cat /etc/hostname   # works\n"
    "  fdbroker run --transparent --policy p.toml -- /bin/cat /etc/shadow     # Permission denied\n"
    "  fdbroker run --transparent -v --policy p.toml -- make                  # shows each denial\n"
    "  fdbroker learn --transparent -o p.toml -- make                          # writes the policy\n"
    "\n"
    "See fdbroker COMMAND --help, fdbroker(1) and fdbroker.toml(5).\n";

po::options_description run_options() {
    po::options_description d(
        "fdbroker run [OPTIONS] [--] PROGRAM [ARG...]\n\n"
        "Runs PROGRAM as a worker under a policy profile and serves its requests. Exits with\n"
        "PROGRAM's status (128+N if killed by signal N); 125 if fdbroker failed, 126 if\n"
        "PROGRAM is not executable, 127 if it was not found.\n\nOptions");
    d.add_options()("help,h", "show this help")(
        "policy", po::value<std::string>()->required()->value_name("FILE"), "the policy file (TOML)")(
        "profile", po::value<std::string>()->default_value("default")->value_name("NAME"),
        "the profile to apply")("transparent",
                                "broker PROGRAM's own opens, path calls, connects and binds through "
                                "seccomp user notification: any unmodified program, no libfdbroker needed "
                                "(pair with include = [\"runtime\"] in the profile)")(
        "audit", po::value<std::string>()->value_name("FILE|-"),
        "write one JSON line per decision to FILE, or with - to standard error (standard output is "
        "PROGRAM's)")("verbose,v", "print one line per distinct denial on standard error");
    return d;
}

// Splits `run`'s arguments into fdbroker's options and the program's argv: the program starts at "--"
// or at the first word that is neither an option nor an option's value, so `run --policy p ./w -v`
// passes -v to ./w.
void split_run_args(const po::options_description& desc, const std::vector<std::string>& args,
                    std::vector<std::string>& ours, std::vector<std::string>& program) {
    std::size_t i = 0;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.size() < 2 || a[0] != '-') break;
        ours.push_back(a);
        // "--name VALUE", and "-o VALUE" (a short option alone, whose value is the next word).
        const bool long_alone = a.starts_with("--") && a.find('=') == std::string::npos;
        const bool short_alone = a.size() == 2 && a[1] != '-';
        if (long_alone || short_alone) {
            const po::option_description* opt = nullptr;
            if (long_alone) {
                opt = desc.find_nothrow(a.substr(2), false);
            } else {
                for (const auto& candidate : desc.options())
                    if (candidate->canonical_display_name(po::command_line_style::allow_dash_for_short) == a)
                        opt = candidate.get();
            }
            if (opt && opt->semantic()->max_tokens() > 0 && i + 1 < args.size()) ours.push_back(args[++i]);
        }
    }
    program.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
}

// Parses a command's options into vm. Returns the exit status when the command ends here (0 after
// --help, `usage_error` after a mistake, logged), or nothing when it should go on.
std::optional<int> parse_options(const char* command, const po::options_description& desc,
                                 const std::vector<std::string>& args, po::variables_map& vm,
                                 int usage_error) {
    try {
        po::store(po::command_line_parser(args).options(desc).run(), vm);
        if (vm.count("help")) {
            std::cout << desc;
            return 0;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        log("%s: %s (see fdbroker %s --help)", command, e.what(), command);
        return usage_error;
    }
    return std::nullopt;
}

int command_run(const std::vector<std::string>& args) {
    const po::options_description desc = run_options();
    std::vector<std::string> ours;
    RunOptions options;
    split_run_args(desc, args, ours, options.argv);
    po::variables_map vm;
    if (const auto done = parse_options("run", desc, ours, vm, kUsageRun)) return *done;
    if (options.argv.empty()) {
        log("run: no PROGRAM given (see fdbroker run --help)");
        return kUsageRun;
    }
    options.policy_file = vm["policy"].as<std::string>();
    options.profile = vm["profile"].as<std::string>();
    if (vm.count("audit")) options.audit = vm["audit"].as<std::string>();
    options.transparent = vm.count("transparent") > 0;
    options.verbose = vm.count("verbose") > 0;
    return run(options);
}

po::options_description learn_options() {
    po::options_description d(
        "fdbroker learn [OPTIONS] -o OUT.toml [--] PROGRAM [ARG...]\n\n"
        "Runs PROGRAM as fdbroker run does, in complain mode: what the profile (or an empty one)\n"
        "refuses is performed anyway with the worker user's own credentials and recorded; exec and\n"
        "harmless system calls outside the filter go through and are recorded; fatal calls stay\n"
        "fatal. At exit the profile with the rules it lacked is written to OUT.toml, each rule with a\n"
        "comment saying which calls needed it (and, when it changes a file, the diff on standard\n"
        "error). Exits with PROGRAM's status; 125 if fdbroker failed.\n\nOptions");
    d.add_options()("help,h", "show this help")("policy", po::value<std::string>()->value_name("FILE"),
                                                "the policy to start from (default: an empty profile)")(
        "profile", po::value<std::string>()->default_value("default")->value_name("NAME"),
        "the profile to learn into")("output,o", po::value<std::string>()->required()->value_name("OUT.toml"),
                                     "where to write the learned policy")(
        "append", "start from OUT.toml when it exists, so that several runs (a test suite) accumulate")(
        "group", po::value<std::size_t>()->default_value(4)->value_name("N"),
        "N paths touched in one directory make it DIR/** (creating a file there always does)")(
        "transparent", "broker PROGRAM's own system calls (as fdbroker run --transparent)")(
        "audit", po::value<std::string>()->value_name("FILE|-"), "write one JSON line per decision")(
        "verbose,v", "print one line per distinct denial on standard error");
    return d;
}

int command_learn(const std::vector<std::string>& args) {
    const po::options_description desc = learn_options();
    std::vector<std::string> ours;
    learn::LearnCommand command;
    split_run_args(desc, args, ours, command.argv);
    po::variables_map vm;
    if (const auto done = parse_options("learn", desc, ours, vm, kUsageRun)) return *done;
    if (command.argv.empty()) {
        log("learn: no PROGRAM given (see fdbroker learn --help)");
        return kUsageRun;
    }
    if (vm.count("policy")) command.base = vm["policy"].as<std::string>();
    command.profile = vm["profile"].as<std::string>();
    command.output = vm["output"].as<std::string>();
    command.append = vm.count("append") > 0;
    command.group = std::max<std::size_t>(1, vm["group"].as<std::size_t>());
    if (vm.count("audit")) command.audit = vm["audit"].as<std::string>();
    command.transparent = vm.count("transparent") > 0;
    command.verbose = vm.count("verbose") > 0;
    return learn::learn(command);
}

constexpr int kServeFailed = 1;

po::options_description serve_options() {
    po::options_description d(
        "fdbroker serve [OPTIONS]\n\n"
        "Serves workers that connect to a unix socket, each under the profile whose 'clients' names\n"
        "its user or group, and runs the pools of workers the policy declares. Uses the socket\n"
        "systemd passes (LISTEN_FDS) when there is one. SIGHUP reloads the policy (a broken file\n"
        "keeps the old one); SIGTERM answers the requests in flight and exits 0. Exits 1 if set-up\n"
        "fails, 2 on a usage error.\n\nOptions");
    d.add_options()("help,h", "show this help")(
        "policy", po::value<std::string>()->required()->value_name("FILE"), "the policy file (TOML)")(
        "socket", po::value<std::string>()->value_name("PATH|@NAME"),
        "where to listen (default /run/fdbroker/fdbroker.sock as root, else $XDG_RUNTIME_DIR/fdbroker.sock)")(
        "socket-mode", po::value<std::string>()->default_value("0660")->value_name("MODE"),
        "permissions of the socket file, in octal")("socket-group",
                                                    po::value<std::string>()->value_name("GROUP"),
                                                    "group of the socket file (name or number)")(
        "audit", po::value<std::string>()->value_name("FILE|-"),
        "write one JSON line per decision to FILE, or to standard output with -")(
        "verbose,v", "print one line per distinct denial on standard error");
    return d;
}

// An octal permission mode such as 0660 or 660.
bool parse_mode(const std::string& text, mode_t& mode) {
    if (text.empty() || text.size() > 4) return false;
    mode = 0;
    for (const char c : text) {
        if (c < '0' || c > '7') return false;
        mode = static_cast<mode_t>(mode * 8 + static_cast<mode_t>(c - '0'));
    }
    return mode <= 0777;
}

bool parse_group(const std::string& text, gid_t& gid) {
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 10) {
        const unsigned long value = std::stoul(text);
        if (value > 0xfffffffeUL) return false;
        gid = static_cast<gid_t>(value);
        return true;
    }
    policy::LookupError error;
    return policy::find_group(text, gid, error) == policy::Lookup::found;
}

int command_serve(const std::vector<std::string>& args) {
    const po::options_description desc = serve_options();
    po::variables_map vm;
    if (const auto done = parse_options("serve", desc, args, vm, kUsageOther)) return *done;
    ServeOptions options;
    options.policy_file = vm["policy"].as<std::string>();
    if (vm.count("socket")) options.socket = vm["socket"].as<std::string>();
    if (vm.count("audit")) options.audit = vm["audit"].as<std::string>();
    options.verbose = vm.count("verbose") > 0;
    if (!parse_mode(vm["socket-mode"].as<std::string>(), options.socket_mode)) {
        log("serve: --socket-mode must be an octal mode such as 0660");
        return kUsageOther;
    }
    if (vm.count("socket-group")) {
        gid_t gid = 0;
        if (!parse_group(vm["socket-group"].as<std::string>(), gid)) {
            log("serve: --socket-group: no group '%s'", vm["socket-group"].as<std::string>().c_str());
            return kServeFailed;
        }
        options.socket_group = gid;
    }
    return serve(options);
}

int command_check(const std::vector<std::string>& args) {
    po::options_description desc(
        "fdbroker check FILE...\n\nValidates policy files. Prints FILE:LINE:COL: error: MESSAGE for each "
        "problem\n"
        "to standard error; exits 0 if every file is valid, 1 if not.\n\nOptions");
    desc.add_options()("help,h", "show this help");
    po::options_description hidden;
    hidden.add_options()("file", po::value<std::vector<std::string>>());
    po::options_description all;
    all.add(desc).add(hidden);
    po::positional_options_description positional;
    positional.add("file", -1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    } catch (const po::error& e) {
        log("check: %s (see fdbroker check --help)", e.what());
        return kUsageOther;
    }
    if (vm.count("help")) {
        std::cout << desc;
        return 0;
    }
    if (!vm.count("file")) {
        log("check: no policy file given (see fdbroker check --help)");
        return kUsageOther;
    }
    bool all_valid = true;
    for (const std::string& file : vm["file"].as<std::vector<std::string>>()) {
        const policy::LoadResult r = policy::Policy::load_file(file);
        for (const auto& d : r.errors)
            std::fprintf(stderr, "%s\n", d.str().c_str());
        if (r.policy)
            std::printf("%s: ok (%zu profile%s)\n", file.c_str(), r.policy->profiles().size(),
                        r.policy->profiles().size() == 1 ? "" : "s");
        else
            all_valid = false;
    }
    return all_valid ? 0 : 1;
}

constexpr int kExplainDenied = 1;

po::options_description explain_options() {
    po::options_description d(
        "fdbroker explain --policy FILE [--profile NAME] [--json] OP TARGET... [MODE]\n"
        "fdbroker explain --policy FILE --audit FILE [--json]\n\n"
        "Says how the policy decides one request, with the broker's own decision code: the decision,\n"
        "every matching rule (FILE:LINE:COL), the one that decides and why, and which layer enforces\n"
        "it. The path is judged as written (lexically normalised); nothing needs to exist. OP is one of:\n"
        "  open PATH [r|w|rw, with c (create), t (truncate), a (append)]   access PATH [r|w|x|f]\n"
        "  stat, readlink, mkdir, unlink, rmdir, mknod, symlink, chmod, chown, truncate, utimens,\n"
        "  getxattr, listxattr, setxattr, removexattr PATH   rename FROM TO   link FROM TO   exec PATH\n"
        "  connect ADDRESS   listen ADDRESS   (tcp:HOST:PORT, udp:HOST:PORT, unix:/path, unix:@name)\n"
        "With --audit, summarises the denials of an audit stream instead: grouped by profile, operation\n"
        "and directory, each judged again, with the rule that would grant it and where it would go.\n"
        "Exits 0 if the request is allowed (with --audit: if no denial is still refused), 1 if it is\n"
        "denied, 2 on a usage error or a policy that does not load.\n\nOptions");
    d.add_options()("help,h", "show this help")(
        "policy", po::value<std::string>()->required()->value_name("FILE"), "the policy file (TOML)")(
        "profile", po::value<std::string>()->default_value("default")->value_name("NAME"),
        "the profile that judges the request")(
        "audit", po::value<std::string>()->value_name("FILE"),
        "summarise the denials of this audit stream (- for standard input)")(
        "json", "print one JSON object instead of text");
    return d;
}

int explain_audit(const policy::Policy& policy, const std::string& file, bool json) {
    std::ifstream stream;
    if (file != "-") {
        stream.open(file);
        if (!stream) {
            log("explain: cannot read audit stream %s: %s", file.c_str(), std::strerror(errno));
            return kUsageOther;
        }
    }
    const explain::AuditSummary s = explain::summarise_audit(file == "-" ? std::cin : stream, policy);
    std::fputs((json ? explain::render_summary_json(s) : explain::render_summary_text(s)).c_str(), stdout);
    const bool refused = !s.syscalls.empty() || std::any_of(s.groups.begin(), s.groups.end(),
                                                            [](const auto& g) { return !g.now_allowed; });
    return refused ? kExplainDenied : 0;
}

int command_explain(const std::vector<std::string>& args) {
    const po::options_description desc = explain_options();
    po::options_description hidden;
    hidden.add_options()("request", po::value<std::vector<std::string>>());
    po::options_description all;
    all.add(desc).add(hidden);
    po::positional_options_description positional;
    positional.add("request", -1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
        if (vm.count("help")) {
            std::cout << desc;
            return 0;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        log("explain: %s (see fdbroker explain --help)", e.what());
        return kUsageOther;
    }
    const std::vector<std::string> words =
        vm.count("request") ? vm["request"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const bool audit = vm.count("audit") > 0;
    if (audit == !words.empty()) {
        log("explain: give either a request (OP TARGET...) or --audit FILE (see fdbroker explain --help)");
        return kUsageOther;
    }
    std::string error;
    const std::optional<explain::Request> request =
        audit ? std::nullopt : explain::parse_request(words, error);
    if (!audit && !request) {
        log("explain: %s", error.c_str());
        return kUsageOther;
    }
    const std::string file = vm["policy"].as<std::string>();
    const policy::LoadResult loaded = policy::Policy::load_file(file);
    for (const auto& d : loaded.errors)
        std::fprintf(stderr, "%s\n", d.str().c_str());
    if (!loaded.policy) return kUsageOther;
    const bool json = vm.count("json") > 0;
    if (audit) return explain_audit(*loaded.policy, vm["audit"].as<std::string>(), json);
    const std::string name = vm["profile"].as<std::string>();
    const policy::Profile* profile = loaded.policy->profile(name);
    if (profile == nullptr) {
        std::string names;
        for (const policy::Profile& p : loaded.policy->profiles())
            names += (names.empty() ? "" : ", ") + p.name();
        log("explain: %s has no profile '%s' (it has: %s)", file.c_str(), name.c_str(),
            names.empty() ? "none" : names.c_str());
        return kUsageOther;
    }
    const explain::Explanation e = explain::explain_request(*profile, *request);
    const std::string out =
        json ? explain::render_json(e, file, *profile) : explain::render_text(e, file, *profile);
    std::fputs(out.c_str(), stdout);
    return e.allowed ? 0 : kExplainDenied;
}

int command_doctor(const std::vector<std::string>& args) {
    po::options_description desc(
        "fdbroker doctor [--policy FILE] [--json]\n\n"
        "Probes what the running kernel offers fdbroker (Landlock, seccomp user notification and its\n"
        "flags, pidfd_getfd, openat2, SO_PEERPIDFD, cgroup v2, user namespaces), says what fdbroker\n"
        "does without each, and whether this user can use each mode. With --policy, checks what that\n"
        "policy needs. Exits 0 if everything the policy needs (without --policy: what fdbroker run\n"
        "needs) is there, 1 if not, 2 on a usage error or a policy that does not load.\n\nOptions");
    desc.add_options()("help,h", "show this help")("policy", po::value<std::string>()->value_name("FILE"),
                                                   "the policy file whose needs to check")(
        "json", "print one JSON object instead of text");
    po::variables_map vm;
    if (const auto done = parse_options("doctor", desc, args, vm, kUsageOther)) return *done;
    std::shared_ptr<const policy::Policy> policy;
    if (vm.count("policy")) {
        const policy::LoadResult loaded = policy::Policy::load_file(vm["policy"].as<std::string>());
        for (const auto& d : loaded.errors)
            std::fprintf(stderr, "%s\n", d.str().c_str());
        if (!loaded.policy) return kUsageOther;
        policy = loaded.policy;
    }
    const DoctorReport report = diagnose(sandbox::probe_kernel(), policy.get(), ::geteuid() == 0);
    std::fputs((vm.count("json") ? render_doctor_json(report) : render_doctor_text(report)).c_str(), stdout);
    return report.ok() ? 0 : 1;
}

}  // namespace

int main_cli(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::fputs(kUsage, stderr);
        return kUsageOther;
    }
    const std::string command = args.front();
    args.erase(args.begin());
    if (command == "--help" || command == "-h" || command == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (command == "--version") {
        std::printf("fdbroker %s\n", FDBROKER_VERSION);
        return 0;
    }
    if (command == "run") return command_run(args);
    if (command == "serve") return command_serve(args);
    if (command == "check") return command_check(args);
    if (command == "explain") return command_explain(args);
    if (command == "doctor") return command_doctor(args);
    if (command == "learn") return command_learn(args);
    log("unknown command '%s' (see fdbroker --help)", command.c_str());
    return kUsageOther;
}

}  // namespace fdbroker::broker
