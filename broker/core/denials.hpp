// Denials a user can see. The audit stream records every decision for a machine; this turns its
// refusals into lines for the person at the terminal: with -v, one line per distinct denial on stderr,
// `fdbroker: denied write /etc/x.conf (profile default): no rule grants write`; without it, nothing
// until fdbroker run ends, which then names the first denial once if the program failed. Whatever
// reaches the audit stream reaches this too (Audit::record feeds it), also when no audit stream is
// open.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

namespace fdbroker::broker {

struct AuditRecord;

class Denials {
  public:
    // At most kBurst lines per kWindow: a worker must not be able to flood the terminal. What is left
    // out is counted, and the count printed.
    static constexpr int kBurst = 100;
    static constexpr std::chrono::seconds kWindow{10};
    // Distinct denials remembered for deduplication; past this, lines are only rate-limited.
    static constexpr std::size_t kRemembered = 4096;

    explicit Denials(bool verbose) noexcept : verbose_(verbose) {}

    // One decision from the audit stream; `policy_file` names its rule's file.
    void note(const AuditRecord& record, std::string_view policy_file) noexcept;
    // Writes the count of lines left out, if any, once their window has ended (or now, with `force`).
    void flush(bool force = false) noexcept;

    [[nodiscard]] bool verbose() const noexcept { return verbose_; }
    // Decisions of any kind seen: zero means the worker never asked the broker for anything.
    [[nodiscard]] std::uint64_t decisions() const noexcept { return decisions_; }
    [[nodiscard]] std::uint64_t denied() const noexcept { return denied_; }
    // The first denial, as -v would have printed it (without the "fdbroker: " prefix).
    [[nodiscard]] const std::string& first() const noexcept { return first_; }
    // The first denied path that the dynamic loader reads as a program starts (its cache, a shared
    // library), or empty: what a program without `include = ["runtime"]` fails on in transparent mode.
    [[nodiscard]] const std::string& loader_path() const noexcept { return loader_path_; }

    // The line for one denial (without the "fdbroker: " prefix), and the part that makes it distinct.
    [[nodiscard]] static std::string describe(const AuditRecord& record, std::string_view policy_file);
    [[nodiscard]] static std::string key(const AuditRecord& record);

  private:
    void print(const std::string& line) noexcept;

    bool verbose_;
    std::uint64_t decisions_ = 0;
    std::uint64_t denied_ = 0;
    std::string first_;
    std::string loader_path_;
    std::unordered_set<std::string> seen_;
    std::chrono::steady_clock::time_point window_start_{};
    int written_ = 0;
    std::uint64_t left_out_ = 0;
};

// Whether `path` is one the dynamic loader reads before main(): its cache and configuration, or a
// shared library.
[[nodiscard]] bool is_loader_path(std::string_view path) noexcept;

}  // namespace fdbroker::broker
