// Data transfer hooks: read, readv, recv, recvfrom, recvmsg (and glibc's
// _FORTIFY_SOURCE entry points __read_chk, __recv_chk, __recvfrom_chk), write,
// writev, send, sendto, sendmsg, sendfile.
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
    bool wait = false;           // false: make the real call as it is
    detail::Hub* hub = nullptr;  // null while waiting: block the OS thread in poll()
    FdKind kind{};
    Clock::time_point deadline{};
};

// Decides, once per call, whether it may wait; copies what it needs from the
// description because the fd may be closed by another fiber while we wait.
Plan plan_for(int fd, bool receiving, int flags = 0) noexcept {
    Plan p;
    if (flags & MSG_DONTWAIT) return p;
    Description* d = blocking_description(fd);
    if (!d) return p;
    p.wait = true;
    p.hub = fiber_context();
    p.kind = d->kind;
    p.deadline = deadline_after_ns((receiving ? d->recv_timeout_ns : d->send_timeout_ns).load(std::memory_order_relaxed));
    return p;
}

ssize_t receive(int fd, int flags, const auto& attempt) {
    count_call(Family::Read);
    Plan p = plan_for(fd, true, flags);
    if (!p.wait) return attempt(0);
    return retry_until_ready(p.hub, fd, kReadable, p.deadline, [&] { return attempt(0); });
}

// Sends `total` bytes with attempt(offset) sending what is left from offset.
ssize_t send_all(const Plan& p, int fd, std::size_t total, const auto& attempt) {
    if (p.kind == FdKind::DatagramSocket)
        return retry_until_ready(p.hub, fd, kWritable, p.deadline, [&] { return attempt(0); });
    const int saved_errno = errno;
    std::size_t done = 0;
    for (;;) {
        ssize_t r = attempt(done);
        if (r > 0) {
            done += static_cast<std::size_t>(r);
            if (done >= total) break;
            continue;
        }
        if (r == 0) break;  // zero-length request
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            if (done > 0) break;  // the kernel reports what it wrote before the error
            return -1;
        }
        if (p.hub) signals_wait_begins();
        WaitResult w = wait_ready(p.hub, fd, kWritable, p.deadline);
        if (w != WaitResult::Ready) {
            if (done > 0) break;
            if (w == WaitResult::Cancelled && p.hub && !signals_eintr(p.deadline == Clock::time_point::max())) continue;
            errno = errno_for(w);
            return -1;
        }
    }
    errno = saved_errno;
    return static_cast<ssize_t>(done);
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

ssize_t recv_waitall(int fd, char* buf, std::size_t len, int flags) {
    count_call(Family::Read);
    Plan p = plan_for(fd, true, flags);
    if (!p.wait || p.kind != FdKind::StreamSocket) {
        if (!p.wait) return real_recv()(fd, buf, len, flags);
        return retry_until_ready(p.hub, fd, kReadable, p.deadline, [&] { return real_recv()(fd, buf, len, flags); });
    }
    const int saved_errno = errno;
    std::size_t got = 0;
    while (got < len) {
        ssize_t r = real_recv()(fd, buf + got, len - got, flags & ~MSG_WAITALL);
        if (r > 0) {
            got += static_cast<std::size_t>(r);
            continue;
        }
        if (r == 0) break;  // EOF: return what arrived
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            if (got > 0) break;
            return -1;
        }
        if (p.hub) signals_wait_begins();
        WaitResult w = wait_ready(p.hub, fd, kReadable, p.deadline);
        if (w != WaitResult::Ready) {
            if (got > 0) break;
            if (w == WaitResult::Cancelled && p.hub && !signals_eintr(p.deadline == Clock::time_point::max())) continue;
            errno = errno_for(w);
            return -1;
        }
    }
    errno = saved_errno;
    return static_cast<ssize_t>(got);
}

}  // namespace

extern "C" {

ssize_t read(int fd, void* buf, size_t len) {
    return receive(fd, 0, [&](std::size_t) { return real_read()(fd, buf, len); });
}

ssize_t __read_chk(int fd, void* buf, size_t len, size_t buflen) {
    if (len > buflen) __builtin_trap();  // what glibc's __chk_fail amounts to: never continue
    return read(fd, buf, len);
}

ssize_t readv(int fd, const iovec* iov, int n) {
    return receive(fd, 0, [&](std::size_t) { return real_readv()(fd, iov, n); });
}

ssize_t recv(int fd, void* buf, size_t len, int flags) {
    if (flags & MSG_WAITALL) return recv_waitall(fd, static_cast<char*>(buf), len, flags);
    return receive(fd, flags, [&](std::size_t) { return real_recv()(fd, buf, len, flags); });
}

ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
    if (len > buflen) __builtin_trap();
    return recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* addr, socklen_t* alen) {
    if ((flags & MSG_WAITALL) && addr == nullptr) return recv_waitall(fd, static_cast<char*>(buf), len, flags);
    return receive(fd, flags, [&](std::size_t) { return real_recvfrom()(fd, buf, len, flags, addr, alen); });
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags, sockaddr* addr, socklen_t* alen) {
    if (len > buflen) __builtin_trap();
    return recvfrom(fd, buf, len, flags, addr, alen);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    return receive(fd, flags, [&](std::size_t) { return real_recvmsg()(fd, msg, flags); });
}

ssize_t write(int fd, const void* buf, size_t len) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false);
    if (!p.wait) return real_write()(fd, buf, len);
    return send_all(p, fd, len,
                    [&](std::size_t off) { return real_write()(fd, static_cast<const char*>(buf) + off, len - off); });
}

ssize_t writev(int fd, const iovec* iov, int n) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false);
    if (!p.wait) return real_writev()(fd, iov, n);
    std::vector<iovec> rest;
    return send_all(p, fd, iov_total(iov, n), [&](std::size_t off) {
        if (off == 0) return real_writev()(fd, iov, n);
        iov_skip(iov, n, off, rest);
        return real_writev()(fd, rest.data(), static_cast<int>(rest.size()));
    });
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false, flags);
    if (!p.wait) return real_send()(fd, buf, len, flags);
    return send_all(p, fd, len, [&](std::size_t off) {
        return real_send()(fd, static_cast<const char*>(buf) + off, len - off, flags);
    });
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* addr, socklen_t alen) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false, flags);
    if (!p.wait) return real_sendto()(fd, buf, len, flags, addr, alen);
    return send_all(p, fd, len, [&](std::size_t off) {
        return real_sendto()(fd, static_cast<const char*>(buf) + off, len - off, flags, addr, alen);
    });
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    count_call(Family::Write);
    Plan p = plan_for(fd, false, flags);
    if (!p.wait) return real_sendmsg()(fd, msg, flags);
    std::vector<iovec> rest;
    const int n = static_cast<int>(msg->msg_iovlen);
    return send_all(p, fd, iov_total(msg->msg_iov, n), [&](std::size_t off) {
        if (off == 0) return real_sendmsg()(fd, msg, flags);
        // Ancillary data (SCM_RIGHTS...) went with the first part only.
        iov_skip(msg->msg_iov, n, off, rest);
        msghdr tail = *msg;
        tail.msg_iov = rest.data();
        tail.msg_iovlen = rest.size();
        tail.msg_control = nullptr;
        tail.msg_controllen = 0;
        return real_sendmsg()(fd, &tail, flags);
    });
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
    count_call(Family::Write);
    Plan p = plan_for(out_fd, false);
    if (!p.wait) return real_sendfile()(out_fd, in_fd, offset, count);
    // With offset == null the file position advances by itself; with an
    // offset, the kernel advances *offset, so each attempt sends what is left.
    return send_all(p, out_fd, count, [&](std::size_t off) {
        return real_sendfile()(out_fd, in_fd, offset, count - off);
    });
}

ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) { return sendfile(out_fd, in_fd, offset, count); }

}  // extern "C"
