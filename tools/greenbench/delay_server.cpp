// `greenbench delay-server`: the backend the examples' /upstream route calls.
// Every request waits N ms (?ms=N, at most 60 s) and is answered with
// "Connection: close" and closed by the server, so that the TIME_WAIT state
// stays on this side and the caller's ephemeral ports are not used up.
// It runs on green (one fiber per connection), so it is never the bottleneck of
// an I/O-bound scenario: thousands of waiting requests cost fibers, not threads.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "net.hpp"

namespace greenbench {

using namespace std::chrono_literals;

namespace {

long delay_ms(std::string_view request_line) {
    std::size_t at = request_line.find("ms=");
    if (at == std::string_view::npos) return 0;
    long v = 0;
    for (std::size_t i = at + 3; i < request_line.size() && std::isdigit(static_cast<unsigned char>(request_line[i])); ++i)
        v = std::min(60000L, v * 10 + (request_line[i] - '0'));
    return v;
}

void serve(int fd) {
    std::string buf;
    char chunk[4096];
    auto deadline = Clock::now() + 30s;
    int err = 0;
    while (buf.find("\r\n\r\n") == std::string::npos && buf.size() < 65536) {
        std::size_t got = 0;
        if (read_some(fd, chunk, sizeof chunk, got, deadline, err) != Io::Ok) {
            close_fd(fd);
            return;
        }
        buf.append(chunk, got);
    }
    long ms = delay_ms(std::string_view(buf).substr(0, buf.find("\r\n")));
    if (ms > 0) green::this_fiber::sleep_for(std::chrono::milliseconds(ms));
    std::string body = "delayed " + std::to_string(ms) + " ms\n";
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n\r\n" + body;
    write_all(fd, resp.data(), resp.size(), Clock::now() + 30s, err);
    close_fd(fd);
}

}  // namespace

int run_delay_server(int port) {
    int bound = 0;
    int lfd = listen_loopback(port, bound);
    if (lfd < 0) {
        std::fprintf(stderr, "greenbench delay-server: cannot listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
        return 1;
    }
    std::printf("listening on %d\n", bound);
    std::fflush(stdout);
    for (;;) {
        int fd = accept_fiber(lfd);
        if (fd < 0) return 1;
        green::spawn([fd] {
            try {
                serve(fd);
            } catch (const green::Cancelled&) {
                close_fd(fd);
            }
        }, {"delay-conn", 64 * 1024}).detach();
    }
}

}  // namespace greenbench
