#include "broker/core/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

#include "broker/core/log.hpp"
#include "policy/rule_query.hpp"

namespace fdbroker::broker {

namespace {

void append_number(std::string& out, long long v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

void append_time(std::string& out) {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    char buf[40];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    out.append(buf, n);
    std::snprintf(buf, sizeof buf, ".%06ldZ", ts.tv_nsec / 1000);
    out.append(buf);
}

void append_field(std::string& out, const char* key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":\"";
    append_json_escaped(out, value);
    out += '"';
}

const char* errno_name(int e) {
    // strerrorname_np is glibc >= 2.32; it names the errno the worker saw, e.g. "EACCES".
    const char* name = ::strerrorname_np(e);
    return name ? name : "E?";
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
}

Audit Audit::open(const std::string& target, std::string& error, int dash) {
    int fd = target == "-"
                 ? ::fcntl(dash, F_DUPFD_CLOEXEC, 3)
                 : ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        error = "cannot open audit stream " + target + ": " + std::strerror(errno);
        return Audit();
    }
    return Audit(unique_fd(fd));
}

void Audit::record(const AuditRecord& r) {
    if (denials_ != nullptr) denials_->note(r, policy_file_);
    if (!enabled()) return;
    std::string& out = buffer_;
    out += "{\"time\":\"";
    append_time(out);
    out += "\",\"pid\":";
    append_number(out, r.pid);
    out += ",\"uid\":";
    append_number(out, r.uid);
    append_field(out, "profile", r.profile);
    append_field(out, "op", r.op);
    append_field(out, "path", r.path);
    if (!r.path2.empty()) append_field(out, "path2", r.path2);
    if (!r.syscall.empty()) append_field(out, "syscall", r.syscall);
    if (r.flags != 0) {
        out += ",\"flags\":";
        append_number(out, r.flags);
    }
    out += r.allowed ? ",\"decision\":\"allow\"" : ",\"decision\":\"deny\"";
    if (r.complained) out += ",\"complain\":true";
    out += ",\"rule\":";
    if (r.rule) {
        out += '"';
        append_json_escaped(out, policy_file_);
        out += ':';
        append_number(out, r.rule->line);
        out += "\",\"pattern\":\"";
        append_json_escaped(out, r.rule->pattern.text());
        out += "\",\"kind\":\"";
        out += policy::kind_name(r.rule->kind);
        out += '"';
    } else if (r.address_rule) {
        out += '"';
        append_json_escaped(out, policy_file_);
        out += ':';
        append_number(out, r.address_rule->line);
        out += "\",\"pattern\":\"";
        append_json_escaped(out, r.address_rule->text);
        out += "\",\"kind\":\"";
        out += r.op;  // a socket rule's kind is its list: connect or listen
        out += '"';
    } else {
        out += "null";
    }
    out += ",\"errno\":";
    append_number(out, r.error);
    if (r.error != 0) append_field(out, "error", errno_name(r.error));
    if (r.killed) out += ",\"killed\":true";
    // Added after the fields scripts already read, for `fdbroker explain --audit`: the permission
    // asked, and the deciding rule's column (with "rule", its file:line:col).
    if (r.needs != 0) append_field(out, "need", policy::needs_text(r.needs));
    if (r.rule || r.address_rule) {
        out += ",\"column\":";
        append_number(out, r.rule ? r.rule->column : r.address_rule->column);
    }
    out += "}\n";
}

void Audit::flush() noexcept {
    if (denials_ != nullptr) denials_->flush();
    std::size_t done = 0;
    while (done < buffer_.size()) {
        const ssize_t n = ::write(fd_.get(), buffer_.data() + done, buffer_.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            // A full disk must not stop the broker: the lines are dropped, decisions go on, and the
            // administrator hears about it once.
            if (!write_failed_)
                log("audit stream unwritable, dropping audit lines: %s",
                    n < 0 ? std::strerror(errno) : "short write");
            write_failed_ = true;
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
}

}  // namespace fdbroker::broker
