// `fdbroker doctor`: what the running kernel offers (sandbox/kernel_features.hpp), what fdbroker does
// without each feature, whether this user can run each mode, and, given a policy, whether everything
// that policy needs is there.
#pragma once

#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "sandbox/kernel_features.hpp"

namespace fdbroker::broker {

struct ModeReport {
    std::string mode;  // "run", "run --transparent", "serve"
    bool possible = true;
    std::vector<std::string> missing;  // features it cannot do without
    std::vector<std::string> notes;    // what is reduced, for this user
};

struct DoctorReport {
    sandbox::KernelFeatures kernel;
    std::vector<ModeReport> modes;
    bool has_policy = false;
    std::vector<std::string> policy_needs;    // feature names (and "root") the policy needs
    std::vector<std::string> policy_missing;  // the reasons it cannot be served as written
    [[nodiscard]] bool ok() const noexcept;   // the policy's needs (without one: `run`'s) are all met
};

// `policy` may be null. `root`: whether this process runs as root (a parameter, for tests).
[[nodiscard]] DoctorReport diagnose(const sandbox::KernelFeatures& kernel, const policy::Policy* policy,
                                    bool root);

// What fdbroker does without `f`.
[[nodiscard]] const char* without(sandbox::Feature f) noexcept;

[[nodiscard]] std::string render_doctor_text(const DoctorReport& r);
[[nodiscard]] std::string render_doctor_json(const DoctorReport& r);

}  // namespace fdbroker::broker
