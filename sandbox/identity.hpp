// The identity a worker runs as, and the irreversible switch to it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace fdbroker::sandbox {

class Identity {
  public:
    // The identity for a worker: the profile's uid/gid when given, "nobody" otherwise. Only root can
    // switch identity, so a broker that is not root keeps its own (and says why in `note`).
    [[nodiscard]] static Identity for_worker(std::optional<uid_t> uid, std::optional<gid_t> gid,
                                             std::string& note);

    [[nodiscard]] uid_t uid() const noexcept { return uid_; }
    [[nodiscard]] gid_t gid() const noexcept { return gid_; }
    // Whether applying it changes anything (the broker is root).
    [[nodiscard]] bool switches() const noexcept { return switches_; }

    // In a forked child, before exec: become uid/gid with no supplementary groups, no capabilities in
    // any set (bounding and ambient included), then prove the old ids cannot be regained. Returns 0 or
    // an errno value. Async-signal-safety is not needed: the broker is single-threaded when it forks.
    [[nodiscard]] int apply() const noexcept;

  private:
    Identity(uid_t uid, gid_t gid, bool switches) : uid_(uid), gid_(gid), switches_(switches) {}
    uid_t uid_;
    gid_t gid_;
    bool switches_;
};

}  // namespace fdbroker::sandbox
