// Hooks that create fds or set their options: socket, socketpair, pipe,
// pipe2, accept, accept4, connect, shutdown, setsockopt, getsockopt.
//
// Created fds keep exactly the flags the program asked for; the fd table
// records their kind and the program's SOCK_NONBLOCK / O_NONBLOCK.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hook_context.hpp"
#include "real.hpp"
#include "shim_fds.hpp"

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
    int fd = real_socket()(domain, type, protocol);
    if (fd >= 0) fd_adopt(fd, kind_of_socket_type(type), (type & SOCK_NONBLOCK) != 0);
    return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
    count_call(Family::Socket);
    int r = real_socketpair()(domain, type, protocol, sv);
    if (r == 0) {
        fd_adopt(sv[0], kind_of_socket_type(type), (type & SOCK_NONBLOCK) != 0);
        fd_adopt(sv[1], kind_of_socket_type(type), (type & SOCK_NONBLOCK) != 0);
    }
    return r;
}

int pipe2(int fds[2], int flags) noexcept {
    count_call(Family::Socket);
    int r = real_pipe2()(fds, flags);
    if (r != 0) return r;
    if (runtime_caller()) {  // libev's async pipe where eventfd is missing
        fds[0] = adopt_shim_fd(fds[0]);
        fds[1] = adopt_shim_fd(fds[1]);
        return r;
    }
    fd_adopt(fds[0], FdKind::Pollable, (flags & O_NONBLOCK) != 0, true);
    fd_adopt(fds[1], FdKind::Pollable, (flags & O_NONBLOCK) != 0, true);
    return r;
}

int pipe(int fds[2]) noexcept { return pipe2(fds, 0); }

// No per-call "don't wait" exists for accept: wait for readability, then
// accept. Another process sharing the listening socket (a pre-forked server)
// may take the connection in between; this accept then blocks the hub until
// the next connection, as documented.
int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    count_call(Family::Accept);
    detail::Hub* h = fiber_context();
    Description* d = waitable_description(h, fd);
    const FdKind kind = d && is_socket(d->kind) ? d->kind : FdKind::StreamSocket;
    if (d && is_socket(d->kind)) {
        const auto deadline = deadline_after_ns(d->recv_timeout_ns.load());
        while (!ready_now(fd, POLLIN))
            if (WaitResult w = wait_blocking(h, fd, kReadable, deadline); w != WaitResult::Ready) return fail_with(errno_for(w));
    }
    int newfd = real_accept4()(fd, addr, len, flags);
    if (newfd >= 0) fd_adopt(newfd, kind, (flags & SOCK_NONBLOCK) != 0);
    return newfd;
}

int accept(int fd, sockaddr* addr, socklen_t* len) { return accept4(fd, addr, len, 0); }

// connect has no per-call flag either and no readiness to wait for before it
// starts. The socket is made non-blocking for the one connect() syscall only
// (no fiber switch happens in between, so no fork of this hub can see it),
// then waited on while blocking again; a second connect() on the then
// established socket reports the outcome and leaves the state a blocking
// connect leaves (a later connect() says EISCONN).
int connect(int fd, const sockaddr* addr, socklen_t len) {
    count_call(Family::Connect);
    detail::Hub* h = fiber_context();
    Description* d = waitable_description(h, fd);
    if (!d || !is_socket(d->kind)) return real_connect()(fd, addr, len);
    const int fl = real_fcntl()(fd, F_GETFL);
    if (fl < 0) return -1;
    const int saved_errno = errno;
    const auto deadline = deadline_after_ns(d->send_timeout_ns.load());
    for (;;) {
        real_fcntl()(fd, F_SETFL, fl | O_NONBLOCK);
        int r = real_connect()(fd, addr, len);
        const int err = errno;
        real_fcntl()(fd, F_SETFL, fl);
        if (r == 0) {
            errno = saved_errno;
            return 0;
        }
        if (err != EAGAIN && err != EINPROGRESS) return fail_with(err);
        // EAGAIN: AF_UNIX with a full backlog; a blocking connect waits for room.
        const WaitResult w = wait_blocking(h, fd, kWritable, deadline);
        if (w == WaitResult::TimedOut && err == EINPROGRESS) {
            // What Linux's blocking connect reports when SO_SNDTIMEO expires;
            // the handshake goes on in the background, as it does there.
            return fail_with(EINPROGRESS);
        }
        if (w != WaitResult::Ready) return fail_with(errno_for(w));
        if (err == EAGAIN) continue;
        int r2 = real_connect()(fd, addr, len);
        if (r2 == 0 || errno == EISCONN) {
            errno = saved_errno;
            return 0;
        }
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
            if (real_getsockopt()(fd, level, name, &tv, &tl) == 0)
                (name == SO_RCVTIMEO ? d->recv_timeout_ns : d->send_timeout_ns).store(timeout_ns(tv));
        }
    }
    if (r == 0 && level == SOL_SOCKET && name == SO_LINGER && len >= sizeof(linger))
        if (Description* d = fd_lookup(fd)) {
            const auto* lg = static_cast<const linger*>(value);
            d->linger.store(lg->l_onoff && lg->l_linger > 0);
        }
    return r;
}

int getsockopt(int fd, int level, int name, void* value, socklen_t* len) noexcept {
    return real_getsockopt()(fd, level, name, value, len);
}

}  // extern "C"
