// See net.hpp.
#include "net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../common/loopback.hpp"

namespace greenbench {

namespace {

// Maps a wait that did not end in readiness to the outcome a caller counts.
Io after_wait(green::WaitResult r) {
    switch (r) {
        case green::WaitResult::Ready: return Io::Ok;
        case green::WaitResult::TimedOut:
        case green::WaitResult::Expired: return Io::Timeout;
        case green::WaitResult::Cancelled: return Io::Cancelled;
        case green::WaitResult::Closed: return Io::Error;
    }
    return Io::Error;
}

}  // namespace

std::string resolve(const std::string& host, int port, Endpoint& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (rc != 0) return std::string("cannot resolve '") + host + "': " + gai_strerror(rc);
    std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
    out.len = res->ai_addrlen;
    out.host = host;
    out.port = port;
    freeaddrinfo(res);
    return {};
}

Io connect_to(const Endpoint& ep, int& fd, Clock::time_point deadline, int& err) {
    fd = socket(ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        return Io::Error;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Io result = Io::Ok;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
            result = Io::Error;
        } else {
            result = after_wait(green::wait_fd(fd, green::kWritable, deadline));
            if (result == Io::Timeout) err = ETIMEDOUT;
            if (result == Io::Ok) {
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) result = Io::Error;
            }
        }
    }
    if (result != Io::Ok) {
        close_fd(fd);
        fd = -1;
    }
    return result;
}

Io write_all(int fd, const char* data, std::size_t n, Clock::time_point deadline, int& err) {
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w > 0) {
            data += w;
            n -= static_cast<std::size_t>(w);
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (errno == EAGAIN) {
                Io r = after_wait(green::wait_fd(fd, green::kWritable, deadline));
                if (r != Io::Ok) return r;
            }
        } else {
            err = w < 0 ? errno : EPIPE;
            return Io::Error;
        }
    }
    return Io::Ok;
}

Io read_some(int fd, char* buf, std::size_t cap, std::size_t& got, Clock::time_point deadline, int& err) {
    for (;;) {
        ssize_t r = recv(fd, buf, cap, 0);
        if (r > 0) {
            got = static_cast<std::size_t>(r);
            return Io::Ok;
        }
        if (r == 0) return Io::Eof;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            err = errno;
            return Io::Error;
        }
        Io w = after_wait(green::wait_fd(fd, green::kReadable, deadline));
        if (w != Io::Ok) return w;
    }
}

void close_fd(int fd) noexcept {
    green::notify_fd_closing(fd);
    close(fd);
}

int listen_loopback(int port, int& bound_port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = green_tools::loopback_address(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    bound_port = ntohs(addr.sin_port);
    return fd;
}

int accept_fiber(int listen_fd) {
    for (;;) {
        int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) {
            if (errno == EAGAIN && green::wait_fd(listen_fd, green::kReadable) == green::WaitResult::Cancelled)
                return -1;
            continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
            // Out of fds: let connections finish.
            if (green::wait_until(Clock::now() + std::chrono::milliseconds(10)) == green::WaitResult::Cancelled)
                return -1;
            continue;
        }
        return -1;
    }
}

}  // namespace greenbench
