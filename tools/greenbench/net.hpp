// Non-blocking sockets driven by green fibers: each call suspends only the
// calling fiber (green::wait_fd) until the socket is ready or the deadline
// passes. Outcomes are values, because a load generator counts them.
#pragma once

#include <green/green.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace greenbench {

using Clock = green::Clock;

enum class Io { Ok, Eof, Error, Timeout, Cancelled };

struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::string host;
    int port = 0;
};

// Resolves host (name or literal) and port; "" and the error on failure.
std::string resolve(const std::string& host, int port, Endpoint& out);

// Opens a non-blocking TCP connection; fd < 0 unless Ok. `err` gets errno.
Io connect_to(const Endpoint& ep, int& fd, Clock::time_point deadline, int& err);

Io write_all(int fd, const char* data, std::size_t n, Clock::time_point deadline, int& err);

// One read of at most `cap` bytes; Eof when the peer closed.
Io read_some(int fd, char* buf, std::size_t cap, std::size_t& got, Clock::time_point deadline, int& err);

// Tells the hub before closing, as green requires (io.hpp).
void close_fd(int fd) noexcept;

// A listening socket on 127.0.0.1:port (0: any), non-blocking; -1 and errno on failure.
int listen_loopback(int port, int& bound_port);

// accept() for a fiber: waits until a connection arrives; -1 when cancelled.
int accept_fiber(int listen_fd);

}  // namespace greenbench
