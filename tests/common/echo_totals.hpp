// The totals examples/echo_threads prints when its --exit-after count of
// connections has closed: connections served, most open at once, bytes
// received, all counted under the server's own mutex. Tests compare them
// with what their clients did, so only the whole line counts (the pipe may
// deliver it in pieces).
#pragma once

#include <chrono>
#include <optional>
#include <regex>
#include <string>

#include "server_child.hpp"

namespace green::test {

struct EchoTotals {
    long connections = 0;
    long max_open = 0;
    unsigned long long bytes = 0;
};

// Waits up to `limit` for the line; nullopt if it does not come.
inline std::optional<EchoTotals> wait_echo_totals(ServerChild& server,
                                                  std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    static const std::regex line("connections ([0-9]+) max_open ([0-9]+) bytes ([0-9]+)\n");
    std::smatch m;
    if (!server.wait_for([&] { return std::regex_search(server.output(), m, line); }, limit)) return std::nullopt;
    return EchoTotals{std::stol(m[1]), std::stol(m[2]), std::stoull(m[3])};
}

}  // namespace green::test
