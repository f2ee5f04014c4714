#include "policy/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>

#include "policy/path.hpp"

namespace fdbroker::policy {

namespace {

constexpr std::string_view kTcp = "tcp:";
constexpr std::string_view kUdp = "udp:";
constexpr std::string_view kUnix = "unix:";
constexpr std::string_view kGlobstar = "**";

// Where the parts of "SCHEME:HOST:PORT" lie in the text, before they are judged.
struct InetParts {
    std::string_view host;  // without brackets; for a rule it may end in "/PREFIX"
    std::size_t host_at = 0;
    std::string_view port;
    std::size_t port_at = 0;
    bool bracketed = false;
};

// What went wrong splitting an address; empty message when nothing did.
struct Problem {
    std::string_view message;
    std::size_t offset = 0;
};

// Splits what follows "tcp:" / "udp:" (starting at byte `at` of the whole text) into host and port.
Problem split_inet(std::string_view text, std::size_t at, InetParts& out) noexcept {
    std::string_view rest = text.substr(at);
    if (rest.starts_with('[')) {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) return {"has '[' without a closing ']'", at};
        out.bracketed = true;
        out.host = rest.substr(1, close - 1);
        out.host_at = at + 1;
        if (close + 1 >= rest.size() || rest[close + 1] != ':')
            return {"has no port after the host (write tcp:[IPv6]:PORT)", at + close + 1};
        out.port = rest.substr(close + 2);
        out.port_at = at + close + 2;
        return {};
    }
    const std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos)
        return {"has no port after the host (write tcp:HOST:PORT)", text.size()};
    out.host = rest.substr(0, colon);
    out.host_at = at;
    out.port = rest.substr(colon + 1);
    out.port_at = at + colon + 1;
    return {};
}

bool all_digits(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// A decimal number of at most `max`; false for anything else (signs, spaces, hex, overflow).
bool parse_number(std::string_view s, unsigned max, unsigned& out) noexcept {
    if (!all_digits(s) || s.size() > 5) return false;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || value > max) return false;
    out = value;
    return true;
}

// Parses an IP address with inet_pton, which takes only the strict textual forms (no host names, no
// shortened IPv4 such as "10.1", no IPv6 zone index).
bool parse_ip(std::string_view host, bool v6, std::array<std::uint8_t, 16>& out) noexcept {
    char buf[INET6_ADDRSTRLEN + 1];
    if (host.empty() || host.size() >= sizeof buf) return false;
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    out.fill(0);
    return ::inet_pton(v6 ? AF_INET6 : AF_INET, buf, out.data()) == 1;
}

bool mapped_v4(const std::array<std::uint8_t, 16>& ip) noexcept {
    for (int i = 0; i < 10; ++i)
        if (ip[static_cast<std::size_t>(i)] != 0) return false;
    return ip[10] == 0xff && ip[11] == 0xff;
}

// Do the first `bits` bits of a and b agree?
bool same_prefix(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                 unsigned bits) noexcept {
    std::size_t i = 0;
    for (; bits >= 8; bits -= 8, ++i)
        if (a[i] != b[i]) return false;
    if (bits == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xffU << (8 - bits));
    return (a[i] & mask) == (b[i] & mask);
}

void clear_host_bits(std::array<std::uint8_t, 16>& ip, unsigned bits) noexcept {
    for (std::size_t i = 0; i < ip.size(); ++i) {
        const unsigned first_bit = static_cast<unsigned>(i) * 8;
        if (first_bit >= bits) {
            ip[i] = 0;
        } else if (bits - first_bit < 8) {
            ip[i] &= static_cast<std::uint8_t>(0xffU << (8 - (bits - first_bit)));
        }
    }
}

std::string ip_text(const std::array<std::uint8_t, 16>& ip, bool v6) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(v6 ? AF_INET6 : AF_INET, ip.data(), buf, sizeof buf);
    return buf;
}

bool parse_request_unix(std::string_view text, SocketAddress& out) noexcept {
    const std::string_view rest = text.substr(kUnix.size());
    if (rest.starts_with('/')) {
        out.transport = Transport::unix_path;
        out.name = rest;
        return true;
    }
    if (rest.starts_with('@')) {
        out.transport = Transport::unix_abstract;
        out.name = rest.substr(1);
        return !out.name.empty() && out.name.size() <= kMaxUnixName &&
               out.name.find('\0') == std::string_view::npos;
    }
    return false;
}

}  // namespace

bool parse_socket_address(std::string_view text, SocketAddress& out) noexcept {
    out = SocketAddress{};
    if (text.starts_with(kUnix)) return parse_request_unix(text, out);
    if (text.starts_with(kTcp)) {
        out.transport = Transport::tcp;
    } else if (text.starts_with(kUdp)) {
        out.transport = Transport::udp;
    } else {
        return false;
    }
    InetParts parts;
    if (!split_inet(text, kTcp.size(), parts).message.empty()) return false;
    unsigned port = 0;
    if (!parse_number(parts.port, 65535, port)) return false;
    out.ipv6 = parts.bracketed;
    out.port = static_cast<std::uint16_t>(port);
    // A CIDR block is a rule's business; inet_pton refuses the '/' anyway.
    return parse_ip(parts.host, parts.bracketed, out.ip);
}

bool is_v4_mapped(const SocketAddress& address) noexcept {
    return address.is_inet() && address.ipv6 && mapped_v4(address.ip);
}

bool reach_unspecified_as_loopback(SocketAddress& address) noexcept {
    if (!address.is_inet()) return false;
    const bool mapped = is_v4_mapped(address);
    // The address bytes that must all be zero: IPv4's four, IPv6's sixteen, or a mapped address's last four.
    const std::size_t first = mapped ? 12 : 0;
    const std::size_t end = address.ipv6 ? 16 : 4;
    for (std::size_t i = first; i < end; ++i)
        if (address.ip[i] != 0) return false;
    if (address.ipv6 && !mapped) {
        address.ip[15] = 1;  // ::1
    } else {
        const std::size_t at = mapped ? 12 : 0;  // 127.0.0.1, or ::ffff:127.0.0.1
        address.ip[at] = 127;
        address.ip[at + 3] = 1;
    }
    return true;
}

InetText::InetText(const SocketAddress& address) noexcept {
    char ip[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(address.ipv6 ? AF_INET6 : AF_INET, address.ip.data(), ip, sizeof ip);
    const int n = std::snprintf(text_.data(), text_.size(), address.ipv6 ? "%s:[%s]:%u" : "%s:%s:%u",
                                address.transport == Transport::udp ? "udp" : "tcp", ip,
                                static_cast<unsigned>(address.port));
    size_ = n > 0 ? std::min(static_cast<std::size_t>(n), text_.size() - 1) : 0;
}

namespace {

// Sets `error` and says the text is refused.
bool refuse(AddressPattern::Error& error, std::string message, std::size_t offset) {
    error.message = std::move(message);
    error.offset = offset;
    return false;
}

// A rule's HOST or HOST/PREFIX, as the network it names.
struct Network {
    std::array<std::uint8_t, 16> ip{};
    unsigned prefix = 0;
};

bool parse_network(const InetParts& parts, Network& out, AddressPattern::Error& error) {
    const unsigned max_prefix = parts.bracketed ? 128 : 32;
    std::string_view host = parts.host;
    out.prefix = max_prefix;
    if (const std::size_t slash = host.find('/'); slash != std::string_view::npos) {
        const std::string_view bits = host.substr(slash + 1);
        if (!parse_number(bits, max_prefix, out.prefix))
            return refuse(error,
                          "has prefix length '/" + std::string(bits) + "'; it must be a number from 0 to " +
                              std::to_string(max_prefix),
                          parts.host_at + slash + 1);
        host = host.substr(0, slash);
    }
    if (!parse_ip(host, parts.bracketed, out.ip)) {
        if (parts.bracketed)
            return refuse(error, "has '" + std::string(host) + "', which is not an IPv6 address",
                          parts.host_at);
        return refuse(
            error,
            "has '" + std::string(host) +
                "', which is not an IPv4 address (host names are not allowed; write IPv6 as [addr])",
            parts.host_at);
    }
    if (parts.bracketed && mapped_v4(out.ip))
        return refuse(error,
                      "has an IPv4-mapped IPv6 address, which reaches IPv4: write the IPv4 address instead",
                      parts.host_at);
    std::array<std::uint8_t, 16> network = out.ip;
    clear_host_bits(network, out.prefix);
    if (network != out.ip)
        return refuse(error,
                      "has host bits set beyond its /" + std::to_string(out.prefix) +
                          " prefix (the block is " + ip_text(network, parts.bracketed) + "/" +
                          std::to_string(out.prefix) + ")",
                      parts.host_at);
    return true;
}

// A rule's PORT: a number, LOW-HIGH, or '*'.
bool parse_ports(const InetParts& parts, unsigned& lo, unsigned& hi, AddressPattern::Error& error) {
    const std::string_view port = parts.port;
    if (port == "*") {
        lo = 0;
        hi = 65535;
        return true;
    }
    const std::size_t dash = port.find('-');
    const std::string_view low = port.substr(0, dash);
    const std::string_view high = dash == std::string_view::npos ? low : port.substr(dash + 1);
    const std::size_t high_at = dash == std::string_view::npos ? parts.port_at : parts.port_at + dash + 1;
    if (port.empty()) return refuse(error, "has an empty port", parts.port_at);
    for (const auto& [part, at, value] :
         {std::tuple{low, parts.port_at, &lo}, std::tuple{high, high_at, &hi}}) {
        if (!all_digits(part))
            return refuse(error,
                          "has port '" + std::string(port) +
                              "', which is not a number, a range such as 8000-8100, or '*'",
                          at);
        if (!parse_number(part, 65535, *value))
            return refuse(error, "has port " + std::string(part) + ", out of range (0 to 65535)", at);
    }
    if (lo > hi)
        return refuse(error, "has port range " + std::string(port) + " whose start is after its end",
                      parts.port_at);
    return true;
}

}  // namespace

std::optional<AddressPattern> AddressPattern::parse(std::string_view text, Error& error) {
    const auto fail = [&](std::string message, std::size_t offset) {
        refuse(error, std::move(message), offset);
        return std::nullopt;
    };
    AddressPattern pattern;
    if (text.starts_with(kUnix)) {
        const std::string_view rest = text.substr(kUnix.size());
        if (rest.starts_with('@')) {
            pattern.transport_ = Transport::unix_abstract;
            const std::string_view name = rest.substr(1);
            if (name.empty()) return fail("has an empty abstract name", kUnix.size() + 1);
            if (const std::size_t nul = name.find('\0'); nul != std::string_view::npos)
                return fail("must not contain a NUL byte", kUnix.size() + 1 + nul);
            if (name.size() > kMaxUnixName)
                return fail("has an abstract name of " + std::to_string(name.size()) +
                                " bytes; the limit is " + std::to_string(kMaxUnixName),
                            kUnix.size() + 1 + kMaxUnixName);
            pattern.abstract_ = std::string(name);
            return pattern;
        }
        if (!rest.starts_with('/'))
            return fail("must name a path (unix:/path) or an abstract name (unix:@name)", kUnix.size());
        Pattern::Error problem;
        std::optional<Pattern> path = Pattern::parse(rest, problem);
        if (!path)
            return fail("is not a valid socket path: " + problem.message, kUnix.size() + problem.offset);
        pattern.transport_ = Transport::unix_path;
        pattern.path_ = std::move(path);
        return pattern;
    }

    if (text.starts_with(kTcp)) {
        pattern.transport_ = Transport::tcp;
    } else if (text.starts_with(kUdp)) {
        pattern.transport_ = Transport::udp;
    } else {
        return fail("must start with 'tcp:', 'udp:' or 'unix:'", 0);
    }
    InetParts parts;
    if (const Problem p = split_inet(text, kTcp.size(), parts); !p.message.empty())
        return fail(std::string(p.message), p.offset);
    Network network;
    unsigned lo = 0, hi = 0;
    if (!parse_network(parts, network, error) || !parse_ports(parts, lo, hi, error)) return std::nullopt;
    pattern.ipv6_ = parts.bracketed;
    pattern.network_ = network.ip;
    pattern.prefix_ = network.prefix;
    pattern.port_low_ = static_cast<std::uint16_t>(lo);
    pattern.port_high_ = static_cast<std::uint16_t>(hi);
    return pattern;
}

bool AddressPattern::is_ipv6_any() const noexcept {
    if (!ipv6_ || prefix_ != 128) return false;
    for (const std::uint8_t byte : network_)
        if (byte != 0) return false;
    return transport_ == Transport::tcp || transport_ == Transport::udp;
}

bool AddressPattern::matches(const SocketAddress& address) const noexcept {
    if (address.transport != transport_) return false;
    switch (transport_) {
        case Transport::unix_path:
            return is_normal_absolute(address.name) && pattern_matches(*path_, address.name);
        case Transport::unix_abstract:
            return address.name == abstract_;
        case Transport::tcp:
        case Transport::udp:
            break;
    }
    if (address.port < port_low_ || address.port > port_high_) return false;
    bool v6 = address.ipv6;
    std::array<std::uint8_t, 16> ip = address.ip;
    if (v6 && mapped_v4(ip)) {
        v6 = false;
        ip = {ip[12], ip[13], ip[14], ip[15]};
    }
    return v6 == ipv6_ && same_prefix(ip, network_, prefix_);
}

bool pattern_matches(const Pattern& pattern, std::string_view path) noexcept {
    const std::vector<std::string>& globs = pattern.components();
    // The path's components are walked by offset, so that backtracking needs no storage: `at` is
    // where the next component starts, `done` means none is left.
    const std::size_t done = path.size() + 1;
    const auto component_at = [&](std::size_t at, std::string_view& component) {
        std::size_t end = path.find('/', at);
        if (end == std::string_view::npos) end = path.size();
        component = path.substr(at, end - at);
        return end + 1;
    };
    std::size_t at = path.size() > 1 ? 1 : done;
    std::size_t g = 0;
    // Like glob_component_match one level up: '**' is the star, and on a mismatch only the most
    // recent '**' takes one more component.
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (at < done) {
        if (g < globs.size() && globs[g] == kGlobstar) {
            star = g++;
            resume = at;
            continue;
        }
        std::string_view component;
        const std::size_t next = component_at(at, component);
        if (g < globs.size() && glob_component_match(globs[g], component)) {
            ++g;
            at = next;
        } else if (star != std::string_view::npos) {
            g = star + 1;
            resume = component_at(resume, component);
            at = resume;
        } else {
            return false;
        }
    }
    while (g < globs.size() && globs[g] == kGlobstar)
        ++g;
    return g == globs.size();
}

const AddressRule* find_address_rule(std::span<const AddressRule> rules,
                                     const SocketAddress& address) noexcept {
    // Socket rules are few, and a socket operation costs far more than this scan; first match wins so
    // that audit lines name the rule written first.
    for (const AddressRule& rule : rules)
        if (rule.address.matches(address)) return &rule;
    return nullptr;
}

}  // namespace fdbroker::policy
