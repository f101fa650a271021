// The address every local server here listens on and every local client
// connects to: 127.0.0.1, never a wildcard, so that a test or benchmark
// server is not reachable from outside the machine. Plain POSIX, no green:
// the synchronous examples use it as well as greenbench.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>

namespace green_tools {

// 127.0.0.1:port (0: any free port, for bind).
inline sockaddr_in loopback_address(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

}  // namespace green_tools
