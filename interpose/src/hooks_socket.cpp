// Hooks that create fds or set their options: socket, socketpair, pipe,
// pipe2, accept, accept4, connect, shutdown, setsockopt, getsockopt.
//
// Created fds get the kernel's O_NONBLOCK and are adopted into the fd table
// with the blocking mode the program asked for (SOCK_NONBLOCK / O_NONBLOCK).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "hook_context.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

namespace {

FdKind kind_of_socket_type(int type) noexcept {
    return (type & 0xf) == SOCK_STREAM || (type & 0xf) == SOCK_SEQPACKET ? FdKind::StreamSocket : FdKind::DatagramSocket;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) noexcept {
    count_call(Family::Socket);
    if (!fiber_context()) return real_socket()(domain, type, protocol);
    int fd = real_socket()(domain, type | SOCK_NONBLOCK, protocol);
    if (fd >= 0) fd_adopt(fd, kind_of_socket_type(type), (type & SOCK_NONBLOCK) != 0);
    return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
    count_call(Family::Socket);
    if (!fiber_context()) return real_socketpair()(domain, type, protocol, sv);
    int r = real_socketpair()(domain, type | SOCK_NONBLOCK, protocol, sv);
    if (r == 0) {
        fd_adopt(sv[0], kind_of_socket_type(type), (type & SOCK_NONBLOCK) != 0);
        fd_adopt(sv[1], kind_of_socket_type(type), (type & SOCK_NONBLOCK) != 0);
    }
    return r;
}

int pipe2(int fds[2], int flags) noexcept {
    count_call(Family::Socket);
    if (!fiber_context()) return real_pipe2()(fds, flags);
    int r = real_pipe2()(fds, flags | O_NONBLOCK);
    if (r == 0) {
        fd_adopt(fds[0], FdKind::Pipe, (flags & O_NONBLOCK) != 0);
        fd_adopt(fds[1], FdKind::Pipe, (flags & O_NONBLOCK) != 0);
    }
    return r;
}

int pipe(int fds[2]) noexcept { return pipe2(fds, 0); }

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    count_call(Family::Accept);
    Description* d = fd_lookup(fd);
    if (!d || !g_shim_ready.load(std::memory_order_acquire)) return real_accept4()(fd, addr, len, flags);
    detail::Hub* h = fiber_context();
    const FdKind kind = d->kind;
    int newfd;
    if (!blocking_description(fd)) {
        newfd = real_accept4()(fd, addr, len, flags | SOCK_NONBLOCK);
    } else {
        newfd = retry_until_ready(h, fd, kReadable, deadline_after_ns(d->recv_timeout_ns.load()),
                                  [&] { return real_accept4()(fd, addr, len, flags | SOCK_NONBLOCK); });
    }
    if (newfd >= 0) fd_adopt(newfd, kind, (flags & SOCK_NONBLOCK) != 0);
    return newfd;
}

int accept(int fd, sockaddr* addr, socklen_t* len) { return accept4(fd, addr, len, 0); }

int connect(int fd, const sockaddr* addr, socklen_t len) {
    count_call(Family::Connect);
    Description* d = blocking_description(fd);
    if (!d) return real_connect()(fd, addr, len);
    detail::Hub* h = fiber_context();
    const int saved_errno = errno;
    const auto deadline = deadline_after_ns(d->send_timeout_ns.load());
    bool started = false;
    for (;;) {
        int r = started ? -1 : real_connect()(fd, addr, len);
        if (started) errno = EINPROGRESS;
        if (r == 0) {
            errno = saved_errno;
            return 0;
        }
        if (errno == EAGAIN) {
            // AF_UNIX with a full backlog: a blocking connect waits for room.
            if (h) signals_wait_begins();
            WaitResult w = wait_ready(h, fd, kWritable, deadline);
            if (w != WaitResult::Ready) {
                if (w == WaitResult::Cancelled && h && !signals_eintr(deadline == Clock::time_point::max())) continue;
                errno = errno_for(w);
                return -1;
            }
            continue;
        }
        if (errno != EINPROGRESS) return -1;
        started = true;
        if (h) signals_wait_begins();
        WaitResult w = wait_ready(h, fd, kWritable, deadline);
        if (w == WaitResult::TimedOut) {
            // What Linux's blocking connect reports when SO_SNDTIMEO expires;
            // the handshake goes on in the background, as it does there.
            errno = EINPROGRESS;
            return -1;
        }
        if (w != WaitResult::Ready) {
            if (w == WaitResult::Cancelled && h && !signals_eintr(deadline == Clock::time_point::max())) continue;
            errno = errno_for(w);
            return -1;
        }
        // Ask connect() itself, not SO_ERROR: it also moves the socket to
        // the connected state, so a later connect() reports EISCONN as
        // after a blocking connect. Still in progress: wait again.
        int r2 = real_connect()(fd, addr, len);
        if (r2 == 0 || errno == EISCONN) {
            errno = saved_errno;
            return 0;
        }
        if (errno == EALREADY || errno == EINPROGRESS) continue;
        return -1;
    }
}

int shutdown(int fd, int how) noexcept {
    count_call(Family::Close);
    return real_shutdown()(fd, how);
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) noexcept {
    int r = real_setsockopt()(fd, level, name, value, len);
    if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) && len >= sizeof(timeval)) {
        if (Description* d = fd_lookup(fd)) {
            // Read back what the kernel stored (it rounds to its tick), so our
            // timeout is exactly the one getsockopt reports.
            timeval tv{};
            socklen_t tl = sizeof tv;
            if (real_getsockopt()(fd, level, name, &tv, &tl) == 0) {
                std::int64_t ns = static_cast<std::int64_t>(tv.tv_sec) * 1000000000 + static_cast<std::int64_t>(tv.tv_usec) * 1000;
                (name == SO_RCVTIMEO ? d->recv_timeout_ns : d->send_timeout_ns).store(ns);
            }
        }
    }
    return r;
}

int getsockopt(int fd, int level, int name, void* value, socklen_t* len) noexcept {
    return real_getsockopt()(fd, level, name, value, len);
}

}  // extern "C"

namespace green::interpose {

WaitResult wait_ready(detail::Hub* h, int fd, int events, Clock::time_point deadline) noexcept {
    if (h) return h->wait_fd(fd, events, deadline);
    pollfd p{fd, static_cast<short>(((events & kReadable) ? POLLIN : 0) | ((events & kWritable) ? POLLOUT : 0)), 0};
    int timeout = -1;
    if (deadline != Clock::time_point::max()) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        timeout = left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
    }
    int r = real_poll()(&p, 1, timeout);
    if (r > 0) return WaitResult::Ready;
    if (r == 0) return WaitResult::TimedOut;
    return WaitResult::Cancelled;  // EINTR: reported as EINTR, as the blocking call would
}

}  // namespace green::interpose
