// `fdbroker serve` for tests: the broker in the background, its readiness and reload messages read
// from a NOTIFY_SOCKET the test owns, and clients run as other users with setpriv(1).
#pragma once

#include <sys/un.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "fdbroker/unique_fd.hpp"
#include "support/harness.hpp"

namespace fdbroker::test {

// The NOTIFY_SOCKET end: what the broker tells its service manager.
class NotifySocket {
  public:
    explicit NotifySocket(const std::string& path);
    // The next message, or "" after `timeout`.
    std::string next(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Reads messages until one contains `what`; false if none does in time.
    bool wait_for(const std::string& what);
    // The message wait_for found last.
    [[nodiscard]] const std::string& matched() const { return matched_; }
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    std::string path_;
    unique_fd fd_;
    std::string matched_;
};

// The address of the unix socket at `path` (a serve-mode broker's socket or a NOTIFY_SOCKET), cut
// to what sun_path holds.
sockaddr_un unix_address(const std::string& path);

// The test worker running `script` as uid:gid (no supplementary groups), a client of the broker
// listening on `socket`.
std::vector<std::string> client_argv(const std::string& socket, unsigned uid, unsigned gid,
                                     const Script& script);

// A serve-mode broker on DIR/run/fdbroker.sock (mode 0666) with DIR/policy.toml.
class ServeBroker {
  public:
    // Writes the policy ("version = 1" is prepended) and starts the broker, under `wrapper` if given
    // (prlimit with its options, say); ready() says whether it reported READY=1.
    ServeBroker(const TempDir& dir, const std::string& policy, const std::vector<std::string>& wrapper = {});
    ~ServeBroker();
    ServeBroker(const ServeBroker&) = delete;
    ServeBroker& operator=(const ServeBroker&) = delete;

    [[nodiscard]] bool ready() const { return ready_; }
    [[nodiscard]] std::string socket() const { return dir_ / "run/fdbroker.sock"; }
    // Replaces the policy and reloads it (SIGHUP); true once the broker reports READY=1 again.
    bool reload(const std::string& policy);
    // The test worker running `script` as uid:gid (no supplementary groups), as a client.
    [[nodiscard]] std::vector<std::string> client(unsigned uid, unsigned gid, const Script& script) const;
    Outcome run_client(unsigned uid, unsigned gid, const Script& script) const;
    // SIGTERM, and everything the broker wrote.
    Outcome stop();
    [[nodiscard]] pid_t pid() const { return process_ ? process_->pid() : -1; }

  private:
    const TempDir& dir_;
    NotifySocket notify_;
    std::unique_ptr<Process> process_;
    bool ready_ = false;
};

}  // namespace fdbroker::test
