// The socket address parsers: a request's address (from a hostile worker) and a rule's address (from
// the policy). A parsed request address matches a rule written as exactly that text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/address.hpp"

using namespace fdbroker::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    SocketAddress address;
    const bool parsed = parse_socket_address(text, address);
    AddressPattern::Error error;
    const std::optional<AddressPattern> rule = AddressPattern::parse(text, error);
    if (!rule && error.offset > text.size()) __builtin_trap();
    if (parsed) {
        if (address.transport == Transport::unix_abstract && address.name.size() > kMaxUnixName)
            __builtin_trap();
        if (rule) {
            if (rule->transport() != address.transport) __builtin_trap();
            // An exact inet address written as a rule covers itself (unix paths are patterns: a path
            // that is not normal parses as an address yet matches nothing, by design).
            if (address.is_inet() && !rule->matches(address)) __builtin_trap();
            if (address.transport == Transport::unix_abstract && !rule->matches(address)) __builtin_trap();
        }
    }
    if (rule && parsed) (void)rule->matches(address);
    return 0;
}
