// Plain POSIX socket helpers shared by the example servers and client.
//
// Nothing here knows about green: these are the blocking calls an ordinary
// synchronous program makes (socket, bind, accept, read, write, connect). Run
// unpatched they block OS threads; run under greenrun they suspend fibers.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "../tools/common/loopback.hpp"

namespace example {

// Reads a port argument: 0 (ephemeral) to 65535; anything else ends the program.
inline int parse_port(const char* prog, const char* text) {
    char* end = nullptr;
    long v = std::strtol(text, &end, 10);
    if (!*text || *end || v < 0 || v > 65535) {
        std::fprintf(stderr, "%s: '%s' is not a port (0-65535, 0 = any free port)\n", prog, text);
        std::exit(2);
    }
    return static_cast<int>(v);
}

// Listens on 127.0.0.1:port and prints "listening on PORT" (flushed) once
// connections are accepted, so that scripts learn an ephemeral port without
// sleeping. Exits with a message when the port cannot be had.
inline int listen_and_announce(const char* prog, int port) {
    // A peer that goes away mid-response must cost an EPIPE, not the process.
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        std::fprintf(stderr, "%s: socket: %s\n", prog, std::strerror(errno));
        std::exit(1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = green_tools::loopback_address(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::fprintf(stderr, "%s: bind 127.0.0.1:%d: %s\n", prog, port, std::strerror(errno));
        std::exit(1);
    }
    if (listen(fd, 4096) != 0) {
        std::fprintf(stderr, "%s: listen: %s\n", prog, std::strerror(errno));
        std::exit(1);
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("listening on %d\n", ntohs(addr.sin_port));
    std::fflush(stdout);
    return fd;
}

// accept() that retries on the errors a busy server sees (EINTR, a peer that
// reset before we took it, running out of fds for a moment).
inline int accept_retrying(int listen_fd) {
    for (;;) {
        int fd = accept(listen_fd, nullptr, nullptr);
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            usleep(10000);  // out of fds: let connections finish
            continue;
        }
        std::perror("accept");
        std::exit(1);
    }
}

// The thread-per-connection accept loop: each accepted connection gets a
// detached std::thread running serve(fd), which owns (and closes) the fd. Out
// of threads, the connection is refused (closed) rather than the server
// dying, with one line on stderr the first time.
template <class Serve>
[[noreturn]] void serve_thread_per_connection(const char* prog, int listen_fd, Serve serve) {
    bool warned = false;
    for (;;) {
        int fd = accept_retrying(listen_fd);
        try {
            std::thread(serve, fd).detach();
        } catch (const std::system_error& e) {
            if (!warned) std::fprintf(stderr, "%s: cannot start a thread: %s\n", prog, e.what());
            warned = true;
            close(fd);
        }
    }
}

inline int connect_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr = green_tools::loopback_address(port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

inline bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// Appends what one read() returns to `buf`; false at EOF or on an error.
inline bool read_more(int fd, std::string& buf) {
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        buf.append(chunk, static_cast<size_t>(n));
        return true;
    }
}

}  // namespace example
