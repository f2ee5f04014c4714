// Socket addresses, as rules write them and as workers ask for them (docs/policy.md, "Socket rules"):
//
//   tcp:HOST:PORT   udp:HOST:PORT   unix:/path   unix:@abstract
//
// HOST is an IPv4 address or an IPv6 address in brackets. In a rule HOST may also be a CIDR block
// (10.0.0.0/8, [fd00::/8]) and PORT a range (8000-8100) or '*'; a unix path in a rule is a pattern with
// the same syntax as file rules. A request names exactly one address and is parsed without allocating.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "policy/matcher.hpp"

namespace fdbroker::policy {

enum class Transport : std::uint8_t { tcp, udp, unix_path, unix_abstract };

// The longest name a unix socket address holds: sun_path less its terminating (or, for an abstract
// name, leading) NUL.
inline constexpr std::size_t kMaxUnixName = 107;

// One concrete address, as a worker asks for it. `name` views the text it was parsed from.
struct SocketAddress {
    Transport transport{};
    bool ipv6 = false;                  // written as [IPv6]
    std::array<std::uint8_t, 16> ip{};  // network byte order; an IPv4 address uses the first 4 bytes
    std::uint16_t port = 0;
    std::string_view name;  // unix_path: the path · unix_abstract: the name without its '@'

    [[nodiscard]] bool is_inet() const noexcept {
        return transport == Transport::tcp || transport == Transport::udp;
    }
};

// Parses the address of a request. False when it is malformed (a rule form such as a CIDR, a range or
// '*'; a host name; a port above 65535; a unix address that is neither "/..." nor "@name"; an abstract
// name longer than kMaxUnixName). A unix path is not judged here: one that is not absolute and normal
// parses, and then matches no rule. Never allocates.
[[nodiscard]] bool parse_socket_address(std::string_view text, SocketAddress& out) noexcept;

// Whether an address written as [IPv6] is an IPv4-mapped one (::ffff:a.b.c.d), which reaches IPv4.
[[nodiscard]] bool is_v4_mapped(const SocketAddress& address) noexcept;

// The kernel connects to an unspecified destination (0.0.0.0, [::], [::ffff:0.0.0.0]) as if it named
// the local host. So that a connect rule is judged on what it really reaches, such an address is
// replaced by the loopback address the kernel would use: 127.0.0.1, [::1], [::ffff:127.0.0.1]. True
// when the address was changed. Never allocates.
bool reach_unspecified_as_loopback(SocketAddress& address) noexcept;

// A tcp or udp address in request syntax ("tcp:127.0.0.1:80", "udp:[::1]:53"), held without allocating.
class InetText {
  public:
    explicit InetText(const SocketAddress& address) noexcept;
    [[nodiscard]] std::string_view view() const noexcept { return {text_.data(), size_}; }

  private:
    std::array<char, 64> text_{};  // "udp:[" + 45 characters of IPv6 + "]:" + 5 digits, and a NUL
    std::size_t size_ = 0;
};

// A compiled rule address. Only AddressPattern::parse makes one.
class AddressPattern {
  public:
    struct Error {
        std::string message;     // completes "'connect' address 'TEXT' ...", e.g. "has no port"
        std::size_t offset = 0;  // byte offset in the address text where the problem is
    };
    [[nodiscard]] static std::optional<AddressPattern> parse(std::string_view text, Error& error);

    [[nodiscard]] Transport transport() const noexcept { return transport_; }
    // The lowest port a tcp or udp rule covers (0 for unix rules).
    [[nodiscard]] std::uint16_t lowest_port() const noexcept { return port_low_; }
    // Whether the rule names exactly the IPv6 any-address [::] (with any port): the one address whose
    // socket can also accept IPv4 clients (`dual_stack`).
    [[nodiscard]] bool is_ipv6_any() const noexcept;
    // Does this rule cover `address`? An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches IPv4, so it
    // is judged as the IPv4 address: IPv4 rules cover it, IPv6 rules never do. Never allocates.
    [[nodiscard]] bool matches(const SocketAddress& address) const noexcept;

  private:
    AddressPattern() = default;
    Transport transport_{};
    bool ipv6_ = false;
    std::array<std::uint8_t, 16> network_{};  // host bits are zero
    unsigned prefix_ = 0;                     // bits of network_ that must match
    std::uint16_t port_low_ = 0;
    std::uint16_t port_high_ = 0;
    std::optional<Pattern> path_;  // unix_path
    std::string abstract_;         // unix_abstract: the exact name, without '@'
};

// Whether a normal absolute path matches a pattern (the whole path: '*' and '?' within a component,
// '**' as zero or more components). Never allocates.
[[nodiscard]] bool pattern_matches(const Pattern& pattern, std::string_view path) noexcept;

// How a unix listening socket's file is set up (a `listen` entry written as a table). Unset parts take
// the defaults described in docs/policy.md.
struct SocketFile {
    std::optional<mode_t> mode;  // permission bits, at most 0777
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
};

// One `connect` or `listen` entry.
struct AddressRule {
    std::string text;  // as written, for diagnostics and audit lines
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    AddressPattern address;
    SocketFile file;  // listen, unix paths only
    // listen, [::] only: the socket also accepts IPv4 clients (IPV6_V6ONLY off). Otherwise every IPv6
    // socket the broker binds is IPv6-only, so that an IPv6 rule never grants IPv4.
    bool dual_stack = false;
};

// The first rule, in file order, that covers `address`; nullptr when none does. Never allocates.
[[nodiscard]] const AddressRule* find_address_rule(std::span<const AddressRule> rules,
                                                   const SocketAddress& address) noexcept;

}  // namespace fdbroker::policy
