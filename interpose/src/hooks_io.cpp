// Data transfer hooks: read, readv, recv, recvfrom, recvmsg, recvmmsg (and
// glibc's _FORTIFY_SOURCE entry points __read_chk, __recv_chk,
// __recvfrom_chk), write, writev, send, sendto, sendmsg, sendmmsg, sendfile,
// splice, tee, vmsplice.
//
// Semantics kept exactly as unpatched on a blocking fd:
//  - reads return as soon as any data is there (short reads are returned),
//    0 at EOF; MSG_WAITALL on a stream waits for the whole length;
//  - writes on a stream socket or pipe block until everything is written, as
//    the kernel's blocking write does; when SO_SNDTIMEO expires part way, the
//    count written so far is returned (EAGAIN only if nothing was written);
//  - datagram sends are single attempts;
//  - SO_RCVTIMEO/SO_SNDTIMEO expire with EAGAIN;
//  - a per-call MSG_DONTWAIT, or an fd the program made non-blocking, is
//    never waited on.
//
// How one attempt is made without blocking, the fd's flags untouched:
//  - sockets: the same call with MSG_DONTWAIT (read/readv become recv/recvmsg,
//    which is what the kernel does for them on a socket);
//  - pipes, FIFOs, eventfd, timerfd...: preadv2/pwritev2 with RWF_NOWAIT;
//  - where the kernel refuses RWF_NOWAIT (ttys, older kernels): a
//    zero-timeout poll first, then the plain call; a pipe write then writes
//    at most PIPE_BUF bytes, which fit once poll reports POLLOUT. Another
//    process draining or filling the fd between the two calls makes the call
//    block the hub (ARCHITECTURE.md lists this race).
#include <fcntl.h>
#include <limits.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "hook_context.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

namespace {

struct Plan {
    Description* d = nullptr;    // null: make the real call as it is
    detail::Hub* hub = nullptr;
    FdKind kind{};
    Clock::time_point deadline{};
};

// Decides, once per call, whether it may wait; copies what it needs from the
// description because the fd may be closed by another fiber while we wait.
Plan plan_for(int fd, bool receiving, int flags = 0) noexcept {
    Plan p;
    if (flags & MSG_DONTWAIT) return p;
    detail::Hub* h = fiber_context();
    Description* d = waitable_description(h, fd);
    if (!d) return p;
    p.d = d;
    p.hub = h;
    p.kind = d->kind;
    p.deadline = deadline_after_ns((receiving ? d->recv_timeout_ns : d->send_timeout_ns).load(std::memory_order_relaxed));
    return p;
}

bool would_block(ssize_t r) noexcept { return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK); }

// One attempt on a Pollable fd that does not block: RWF_NOWAIT where the
// kernel honours it, else readiness first. `write` selects the direction.
ssize_t pollable_attempt(Plan& p, int fd, const iovec* iov, int n, bool write) {
    Description* d = p.d;
    if (d->nowait.load(std::memory_order_relaxed) != NoWait::No) {
        ssize_t r = write ? pwritev2(fd, iov, n, -1, RWF_NOWAIT) : preadv2(fd, iov, n, -1, RWF_NOWAIT);
        if (r >= 0 || (errno != EOPNOTSUPP && errno != EINVAL)) {
            if (r >= 0) d->nowait.store(NoWait::Yes, std::memory_order_relaxed);
            return r;
        }
        if (errno == EINVAL && d->nowait.load(std::memory_order_relaxed) == NoWait::Yes) return r;
        d->nowait.store(NoWait::No, std::memory_order_relaxed);
    }
    if (!ready_now(fd, write ? POLLOUT : POLLIN)) {
        errno = EAGAIN;
        return -1;
    }
    if (!write) return real_readv()(fd, iov, n);
    if (!d->fifo) return real_writev()(fd, iov, n);
    // POLLOUT on a pipe promises room for PIPE_BUF bytes, no more.
    for (int i = 0; i < n; ++i)
        if (iov[i].iov_len > 0) return real_write()(fd, iov[i].iov_base, std::min<std::size_t>(iov[i].iov_len, PIPE_BUF));
    return real_writev()(fd, iov, n);
}

// One attempt that does not block, in direction `write`: on a socket the
// call itself with MSG_DONTWAIT (send/recv for one buffer, as read and
// write are on a socket), elsewhere pollable_attempt.
ssize_t try_once(Plan& p, int fd, const iovec* iov, int n, bool write) {
    if (!is_socket(p.kind)) return pollable_attempt(p, fd, iov, n, write);
    ssize_t r;
    if (n == 1) {
        r = write ? real_send()(fd, iov->iov_base, iov->iov_len, MSG_DONTWAIT)
                  : real_recv()(fd, iov->iov_base, iov->iov_len, MSG_DONTWAIT);
    } else {
        msghdr m{};
        m.msg_iov = const_cast<iovec*>(iov);
        m.msg_iovlen = static_cast<std::size_t>(n);
        r = write ? real_sendmsg()(fd, &m, MSG_DONTWAIT) : real_recvmsg()(fd, &m, MSG_DONTWAIT);
    }
    // A stale table entry (the fd number now names something else) shows as
    // ENOTSOCK: classify again and make this one call as it is.
    if (r >= 0 || errno != ENOTSOCK) return r;
    fd_reclassify(fd);
    if (n == 1) return write ? real_write()(fd, iov->iov_base, iov->iov_len) : real_read()(fd, iov->iov_base, iov->iov_len);
    return write ? real_writev()(fd, iov, n) : real_readv()(fd, iov, n);
}

ssize_t receive(const Plan& p, int fd, const auto& attempt) {
    return retry_until_ready(p.hub, fd, kReadable, p.deadline, attempt);
}

// The loop of a blocking call that moves `total` units (bytes, messages)
// in attempts that do not block: attempt(done) moves some of what is left,
// wait(done) waits for the fd when it would block, more(done) may end the
// call early. It ends when all moved, at 0 (EOF, or an empty request), an
// error or a failed wait; a count already moved is returned instead of a
// later error, as the kernel reports a partial transfer.
template <class Attempt, class Wait, class More>
ssize_t move_all(std::size_t total, const Attempt& attempt, const Wait& wait, const More& more) {
    const int saved_errno = errno;
    std::size_t done = 0;
    for (;;) {
        const ssize_t r = attempt(done);
        if (r > 0) {
            done += static_cast<std::size_t>(r);
            if (done >= total || !more(done)) break;
            continue;
        }
        if (r == 0) break;
        if (!would_block(r)) {
            if (done > 0) break;
            return -1;
        }
        if (WaitResult w = wait(done); w != WaitResult::Ready) {
            if (done > 0) break;
            errno = errno_for(w);
            return -1;
        }
    }
    errno = saved_errno;
    return static_cast<ssize_t>(done);
}

// A blocking stream transfer of `total` bytes: until all moved, EOF, an
// error or the timeout; a signal handler with SA_RESTART interrupts it only
// once data moved.
ssize_t transfer_all(const Plan& p, int fd, int events, std::size_t total, const auto& attempt) {
    return move_all(
        total, attempt, [&](std::size_t done) { return wait_blocking(p.hub, fd, events, p.deadline, done == 0); },
        [](std::size_t) { return true; });
}

// Sends `total` bytes with attempt(offset) sending what is left from offset;
// a datagram goes whole or not at all.
ssize_t send_all(const Plan& p, int fd, std::size_t total, const auto& attempt) {
    if (p.kind == FdKind::DatagramSocket)
        return retry_until_ready(p.hub, fd, kWritable, p.deadline, [&] { return attempt(0); });
    return transfer_all(p, fd, kWritable, total, attempt);
}

// Advances an iovec array past `skip` bytes into `out`.
void iov_skip(const iovec* iov, int n, std::size_t skip, std::vector<iovec>& out) {
    out.clear();
    for (int i = 0; i < n; ++i) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        out.push_back({static_cast<char*>(iov[i].iov_base) + skip, iov[i].iov_len - skip});
        skip = 0;
    }
}

std::size_t iov_total(const iovec* iov, int n) {
    std::size_t t = 0;
    for (int i = 0; i < n; ++i) t += iov[i].iov_len;
    return t;
}

// MSG_WAITALL on a stream socket: the first part through recvmsg with the
// caller's name and control buffers, the rest into what is left of the
// iovecs.
ssize_t recvmsg_waitall(const Plan& p, int fd, msghdr* msg, int flags) {
    const int n = static_cast<int>(msg->msg_iovlen);
    const std::size_t len = iov_total(msg->msg_iov, n);
    if (len == 0) return 0;
    const int once = (flags & ~MSG_WAITALL) | MSG_DONTWAIT;
    std::vector<iovec> rest;
    return transfer_all(p, fd, kReadable, len, [&](std::size_t got) {
        if (got == 0) return real_recvmsg()(fd, msg, once);
        iov_skip(msg->msg_iov, n, got, rest);
        msghdr tail{};
        tail.msg_iov = rest.data();
        tail.msg_iovlen = rest.size();
        return real_recvmsg()(fd, &tail, once);
    });
}

ssize_t recvfrom_impl(int fd, void* buf, size_t len, int flags, sockaddr* addr, socklen_t* alen) {
    count_call(Family::Read);
    Plan p = plan_for(fd, true, flags);
    if (!p.d || !is_socket(p.kind)) return real_recvfrom()(fd, buf, len, flags, addr, alen);
    if ((flags & MSG_WAITALL) && p.kind == FdKind::StreamSocket) {
        iovec v{buf, len};
        msghdr m{};
        m.msg_name = addr;
        m.msg_namelen = alen ? *alen : 0;
        m.msg_iov = &v;
        m.msg_iovlen = 1;
        ssize_t r = recvmsg_waitall(p, fd, &m, flags);
        if (r >= 0 && alen && addr) *alen = m.msg_namelen;
        return r;
    }
    return receive(p, fd, [&] { return real_recvfrom()(fd, buf, len, flags | MSG_DONTWAIT, addr, alen); });
}

}  // namespace

extern "C" {

ssize_t read(int fd, void* buf, size_t len) {
    count_call(Family::Read);
    Plan p = plan_for(fd, true);
    if (!p.d) return real_read()(fd, buf, len);
    iovec v{buf, len};
    return receive(p, fd, [&] { return try_once(p, fd, &v, 1, false); });
}

ssize_t __read_chk(int fd, void* buf, size_t len, size_t buflen) {
    if (len > buflen) __builtin_trap();  // what glibc's __chk_fail amounts to: never continue
    return read(fd, buf, len);
}

ssize_t readv(int fd, const iovec* iov, int n) {
    count_call(Family::Read);
    Plan p = plan_for(fd, true);
    if (!p.d) return real_readv()(fd, iov, n);
    return receive(p, fd, [&] { return try_once(p, fd, iov, n, false); });
}

ssize_t recv(int fd, void* buf, size_t len, int flags) { return recvfrom_impl(fd, buf, len, flags, nullptr, nullptr); }

ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
    if (len > buflen) __builtin_trap();
    return recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* addr, socklen_t* alen) {
    return recvfrom_impl(fd, buf, len, flags, addr, alen);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags, sockaddr* addr, socklen_t* alen) {
    if (len > buflen) __builtin_trap();
    return recvfrom(fd, buf, len, flags, addr, alen);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    count_call(Family::Read);
    Plan p = plan_for(fd, true, flags);
    if (!p.d || !is_socket(p.kind)) return real_recvmsg()(fd, msg, flags);
    if ((flags & MSG_WAITALL) && p.kind == FdKind::StreamSocket) return recvmsg_waitall(p, fd, msg, flags);
    return receive(p, fd, [&] { return real_recvmsg()(fd, msg, flags | MSG_DONTWAIT); });
}

// Blocking recvmmsg waits until `vlen` messages arrived (or, with
// MSG_WAITFORONE, one); the timeout is checked after each message. A handler
// with SA_RESTART interrupts it only once a message arrived, or when the
// socket has a timeout (the kernel reports EINTR then); the call's own
// timeout goes on counting across the restart.
int recvmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout) {
    count_call(Family::Read);
    auto real = real_recvmmsg();
    Plan p = plan_for(fd, true, flags);
    if (!p.d || !is_socket(p.kind) || vlen == 0) return real(fd, vec, vlen, flags, timeout);
    const Clock::time_point deadline = std::min(p.deadline, deadline_after(timeout));
    return static_cast<int>(move_all(
        vlen, [&](std::size_t got) { return real(fd, vec + got, vlen - got, (flags & ~MSG_WAITFORONE) | MSG_DONTWAIT, nullptr); },
        [&](std::size_t got) {
            return wait_blocking_restarting(p.hub, fd, kReadable, got > 0 && !timeout ? Clock::time_point::max() : deadline,
                                            got == 0 && p.deadline == Clock::time_point::max());
        },
        [&](std::size_t) { return !(flags & MSG_WAITFORONE) && !(timeout && Clock::now() >= deadline); }));
}

ssize_t write(int fd, const void* buf, size_t len) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false);
    if (!p.d) return real_write()(fd, buf, len);
    return send_all(p, fd, len, [&](std::size_t off) {
        iovec v{const_cast<char*>(static_cast<const char*>(buf)) + off, len - off};
        return try_once(p, fd, &v, 1, true);
    });
}

ssize_t writev(int fd, const iovec* iov, int n) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false);
    if (!p.d) return real_writev()(fd, iov, n);
    std::vector<iovec> rest;
    return send_all(p, fd, iov_total(iov, n), [&](std::size_t off) {
        if (off == 0) return try_once(p, fd, iov, n, true);
        iov_skip(iov, n, off, rest);
        return try_once(p, fd, rest.data(), static_cast<int>(rest.size()), true);
    });
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false, flags);
    if (!p.d || !is_socket(p.kind)) return real_send()(fd, buf, len, flags);
    return send_all(p, fd, len, [&](std::size_t off) {
        return real_send()(fd, static_cast<const char*>(buf) + off, len - off, flags | MSG_DONTWAIT);
    });
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* addr, socklen_t alen) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false, flags);
    if (!p.d || !is_socket(p.kind)) return real_sendto()(fd, buf, len, flags, addr, alen);
    return send_all(p, fd, len, [&](std::size_t off) {
        return real_sendto()(fd, static_cast<const char*>(buf) + off, len - off, flags | MSG_DONTWAIT, addr, alen);
    });
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false, flags);
    if (!p.d || !is_socket(p.kind)) return real_sendmsg()(fd, msg, flags);
    std::vector<iovec> rest;
    const int n = static_cast<int>(msg->msg_iovlen);
    return send_all(p, fd, iov_total(msg->msg_iov, n), [&](std::size_t off) {
        if (off == 0) return real_sendmsg()(fd, msg, flags | MSG_DONTWAIT);
        // Ancillary data (SCM_RIGHTS...) went with the first part only.
        iov_skip(msg->msg_iov, n, off, rest);
        msghdr tail = *msg;
        tail.msg_iov = rest.data();
        tail.msg_iovlen = rest.size();
        tail.msg_control = nullptr;
        tail.msg_controllen = 0;
        return real_sendmsg()(fd, &tail, flags | MSG_DONTWAIT);
    });
}

// Blocking sendmmsg sends every message, each as a blocking sendmsg would;
// a handler with SA_RESTART interrupts it only once a message went.
int sendmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags) {
    count_call(Family::Write);
    auto real = real_sendmmsg();
    Plan p = plan_for(fd, false, flags);
    if (!p.d || !is_socket(p.kind) || vlen == 0) return real(fd, vec, vlen, flags);
    return static_cast<int>(move_all(
        vlen, [&](std::size_t done) { return real(fd, vec + done, vlen - done, flags | MSG_DONTWAIT); },
        [&](std::size_t done) { return wait_blocking(p.hub, fd, kWritable, p.deadline, done == 0); },
        [](std::size_t) { return true; }));
}

// sendfile has no per-call flag: wait until the socket or pipe can take
// data, then send. A blocking out_fd may still block the hub while the peer
// drains what did not fit (documented). Nothing moved while it waits, so a
// handler with SA_RESTART does not end the wait.
ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
    count_call(Family::Write);
    Plan p = plan_for(out_fd, false);
    if (!p.d) return real_sendfile()(out_fd, in_fd, offset, count);
    const auto deadline = p.deadline;
    while (!ready_now(out_fd, POLLOUT)) {
        WaitResult w = wait_blocking(p.hub, out_fd, kWritable, deadline);
        if (w != WaitResult::Ready) return fail_with(errno_for(w));
    }
    return real_sendfile()(out_fd, in_fd, offset, count);
}

ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) { return sendfile(out_fd, in_fd, offset, count); }

}  // extern "C"

namespace {

// splice, tee and vmsplice: SPLICE_F_NONBLOCK makes the pipe side of each
// call non-blocking; the other side (a socket for splice) is waited for
// first. The call is repeated until it moves data, as the blocking one does;
// a handler with SA_RESTART does not end the wait, as the kernel restarts it.
template <class Call>
ssize_t splice_wait(int in_fd, int out_fd, unsigned flags, Call&& call) {
    detail::Hub* h = fiber_context();
    Description* din = in_fd >= 0 ? waitable_description(h, in_fd) : nullptr;
    Description* dout = out_fd >= 0 ? waitable_description(h, out_fd) : nullptr;
    if ((flags & SPLICE_F_NONBLOCK) || (!din && !dout)) return call(flags);
    const int saved_errno = errno;
    for (;;) {
        if (din && !ready_now(in_fd, POLLIN)) {
            WaitResult w = wait_blocking(h, in_fd, kReadable, Clock::time_point::max());
            if (w != WaitResult::Ready) return fail_with(errno_for(w));
            continue;
        }
        if (dout && !ready_now(out_fd, POLLOUT)) {
            WaitResult w = wait_blocking(h, out_fd, kWritable, Clock::time_point::max());
            if (w != WaitResult::Ready) return fail_with(errno_for(w));
            continue;
        }
        ssize_t r = call(flags | SPLICE_F_NONBLOCK);
        if (!would_block(r)) {
            if (r >= 0) errno = saved_errno;
            return r;
        }
        // Both looked ready but the pipe side was taken: wait again.
    }
}

}  // namespace

extern "C" {

ssize_t splice(int in_fd, loff_t* in_off, int out_fd, loff_t* out_off, size_t len, unsigned flags) {
    count_call(Family::Write);
    auto real = real_splice();
    return splice_wait(in_fd, out_fd, flags, [&](unsigned f) { return real(in_fd, in_off, out_fd, out_off, len, f); });
}

ssize_t tee(int in_fd, int out_fd, size_t len, unsigned flags) {
    count_call(Family::Write);
    auto real = real_tee();
    return splice_wait(in_fd, out_fd, flags, [&](unsigned f) { return real(in_fd, out_fd, len, f); });
}

ssize_t vmsplice(int fd, const iovec* iov, size_t n, unsigned flags) {
    count_call(Family::Write);
    auto real = real_vmsplice();
    // The pipe's write end takes user pages; its read end gives them.
    const int mode = real_fcntl()(fd, F_GETFL);
    const bool into_pipe = mode >= 0 && (mode & O_ACCMODE) != O_RDONLY;
    return splice_wait(into_pipe ? -1 : fd, into_pipe ? fd : -1, flags, [&](unsigned f) { return real(fd, iov, n, f); });
}

}  // extern "C"
