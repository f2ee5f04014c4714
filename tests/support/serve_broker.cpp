#include "support/serve_broker.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdio>

namespace fdbroker::test {

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    return sa;
}

NotifySocket::NotifySocket(const std::string& path) : path_(path) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const sockaddr_un sa = unix_address(path);
    // A socket that cannot be bound receives nothing: every wait_for then fails and says so.
    if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) fd_.reset();
    ::chmod(path.c_str(), 0666);
}

std::string NotifySocket::next(std::chrono::milliseconds timeout) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool NotifySocket::wait_for(const std::string& what) {
    for (std::string m = next(); !m.empty(); m = next())
        if (m.find(what) != std::string::npos) {
            matched_ = m;
            return true;
        }
    return false;
}

ServeBroker::ServeBroker(const TempDir& dir, const std::string& policy,
                         const std::vector<std::string>& wrapper)
    : dir_(dir), notify_(dir / "notify.sock") {
    write_file(dir / "policy.toml", "version = 1\n" + policy);
    std::vector<std::string> argv{"/usr/bin/env", "NOTIFY_SOCKET=" + notify_.path()};
    argv.insert(argv.end(), wrapper.begin(), wrapper.end());
    for (const std::string& word :
         {std::string(fdbroker_bin()), std::string("serve"), std::string("--policy"), dir / "policy.toml",
          std::string("--socket"), socket(), std::string("--socket-mode"), std::string("0666")})
        argv.push_back(word);
    process_ = std::make_unique<Process>(argv);
    ready_ = notify_.wait_for("READY=1");
}

ServeBroker::~ServeBroker() {
    if (process_) stop();
}

bool ServeBroker::reload(const std::string& policy) {
    write_file(dir_ / "policy.toml", "version = 1\n" + policy);
    ::kill(process_->pid(), SIGHUP);
    return notify_.wait_for("RELOADING=1") && notify_.wait_for("READY=1");
}

std::vector<std::string> ServeBroker::client(unsigned uid, unsigned gid, const Script& script) const {
    return client_argv(socket(), uid, gid, script);
}

std::vector<std::string> client_argv(const std::string& socket, unsigned uid, unsigned gid,
                                     const Script& script) {
    std::vector<std::string> argv{"/usr/bin/env",
                                  "FDBROKER_SOCKET=" + socket,
                                  "/usr/bin/setpriv",
                                  "--reuid=" + std::to_string(uid),
                                  "--regid=" + std::to_string(gid),
                                  "--clear-groups",
                                  "--"};
    const auto w = worker_argv(script);
    argv.insert(argv.end(), w.begin(), w.end());
    return argv;
}

Outcome ServeBroker::run_client(unsigned uid, unsigned gid, const Script& script) const {
    return run_command(client(uid, gid, script));
}

Outcome ServeBroker::stop() {
    ::kill(process_->pid(), SIGTERM);
    Outcome o = process_->wait();
    process_.reset();
    return o;
}

}  // namespace fdbroker::test
