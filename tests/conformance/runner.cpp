// fdbroker_conformance_runner: the conformance suite's cases, made, run and inspected in three phases
// so that only the calls under test ever pass through the broker.
//
//   runner list
//   runner setup DIR [--other ODIR]                      (root: makes DIR/<id>/ for every case)
//   runner run   DIR [--other ODIR] [--user NAME]        (the calls, one line per case)
//   runner state DIR [--other ODIR]                      (root: the resulting files, one line per case)
//
// Every subcommand takes --only PREFIX to keep the cases whose id starts with PREFIX.
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance/case.hpp"
#include "conformance/describe.hpp"
#include "conformance/fixture.hpp"

namespace fdbroker::conformance {
namespace {

// A call that blocks (a FIFO's open gone wrong, a broker that never answers) ends its case, not the run.
constexpr unsigned kCaseSeconds = 60;

struct Options {
    std::string command;
    std::string dir;
    std::string other;
    std::string user;
    std::string only;
};

Options parse(int argc, char** argv) {
    Options o;
    const std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--other" && has_value) {
            o.other = args[++i];
        } else if (args[i] == "--user" && has_value) {
            o.user = args[++i];
        } else if (args[i] == "--only" && has_value) {
            o.only = args[++i];
        } else if (o.command.empty()) {
            o.command = args[i];
        } else if (o.dir.empty()) {
            o.dir = args[i];
        } else {
            throw std::runtime_error("unexpected argument " + args[i]);
        }
    }
    if (o.command.empty() || (o.command != "list" && o.dir.empty()))
        throw std::runtime_error(
            "usage: runner list | setup DIR | run DIR | state DIR  [--other ODIR] "
            "[--user NAME] [--only PREFIX]");
    return o;
}

std::string format(const Result& r) {
    std::string out = "ret=";
    if (r.ret >= 0 && (r.fd || r.length))
        out += r.fd ? "fd" : "len";
    else
        out += std::to_string(r.ret);
    out += " err=" + errno_name(r.err);
    if (!r.detail.empty()) out += " " + normalise(r.detail);
    return out;
}

// In the case's own process: its directory is the working directory, umask 022.
[[noreturn]] void run_child(const Case& c, const Options& o, int out) {
    ::umask(022);
    ::alarm(kCaseSeconds);
    std::string text;
    const std::string case_dir = o.dir + "/" + c.id;
    if (::chdir(case_dir.c_str()) != 0) {
        text = "chdir failed: " + errno_name(errno);
    } else {
        try {
            Env env(case_dir, o.other.empty() ? "" : o.other + "/" + c.id);
            text = format(c.call(env));
        } catch (const std::exception& e) {
            text = std::string("exception: ") + e.what();
        }
    }
    [[maybe_unused]] const ssize_t n = ::write(out, text.data(), text.size());
    ::_exit(0);
}

// Each case in a process of its own: a call the broker answers by killing the caller, a changed
// working directory or umask, or a descriptor left open, ends with the case.
std::string run_case(const Case& c, const Options& o) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) return "pipe failed: " + errno_name(errno);
    unique_fd in(ends[0]), out(ends[1]);
    std::cout.flush();
    const pid_t pid = ::fork();
    if (pid < 0) return "fork failed: " + errno_name(errno);
    if (pid == 0) {
        in.reset();
        run_child(c, o, out.get());
    }
    out.reset();
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(in.get(), buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) {
        const char* sig = ::sigabbrev_np(WTERMSIG(status));
        return "killed by SIG" + std::string(sig != nullptr ? sig : std::to_string(WTERMSIG(status)));
    }
    return text;
}

// Becomes `user` (no supplementary groups) and executes the runner again without --user: a process
// that changed its ids without exec stays undumpable, and its /proc/self would be root's, unlike any
// program started as that user.
[[noreturn]] void become(const std::string& user, int argc, char** argv) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) throw std::runtime_error("no user " + user);
    // Named before the ids change: an undumpable process may not follow its own /proc/self/exe.
    std::string exe(PATH_MAX, '\0');
    const ssize_t len = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
    if (len <= 0) throw std::runtime_error("cannot name the runner's own executable");
    exe.resize(static_cast<std::size_t>(len));
    if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
        throw std::runtime_error("cannot become " + user + ": " + std::strerror(errno));
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
            ++i;
            continue;
        }
        args.push_back(argv[i]);
    }
    args.push_back(nullptr);
    ::execv(exe.c_str(), args.data());
    throw std::runtime_error(std::string("cannot execute the runner again: ") + std::strerror(errno));
}

int run(const Cases& cases, const Options& o) {
    set_self(::geteuid(), ::getegid());
    set_bases(o.dir, o.other);
    for (const Case& c : cases)
        std::cout << c.id << " | " << run_case(c, o) << "\n";
    std::cout.flush();
    return 0;
}

int run_runner(int argc, char** argv) {
    const Options o = parse(argc, argv);
    if (o.command == "run" && !o.user.empty()) become(o.user, argc, argv);
    Cases cases;
    for (const Case& c : all_cases())
        if (c.id.starts_with(o.only)) cases.push_back(c);
    if (o.command == "list") {
        for (const Case& c : cases)
            std::cout << c.id << "\n";
        return 0;
    }
    if (o.command == "setup") return make_fixtures(cases, o.dir, o.other) == 0 ? 0 : 1;
    if (o.command == "run") return run(cases, o);
    if (o.command == "state") {
        print_state(cases, o.dir, o.other, std::cout);
        return 0;
    }
    throw std::runtime_error("unknown command " + o.command);
}

}  // namespace
}  // namespace fdbroker::conformance

int main(int argc, char** argv) {
    try {
        return fdbroker::conformance::run_runner(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "conformance: " << e.what() << "\n";
        return 2;
    }
}
