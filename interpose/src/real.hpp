// The libc functions behind every hook.
//
// Each hook forwards to the real function when it must not or need not
// suspend. Real functions are resolved with dlsym(RTLD_NEXT) — the next
// definition after this library, i.e. libc's — on first use, so a hook that
// runs before our constructor (another library's constructor calling
// socket(), say) still works. dlsym on an existing symbol does not allocate.
//
// Each slot is an atomic that starts null (constant-initialised), never a
// function-local static with a dynamic initializer: that takes a guard
// whose contended wait is a futex call, which from a fiber goes through the
// shim's own futex hook and left EAGAIN in the caller's errno when threads
// on two hubs made their first call of a hook at the same moment. Racing
// first calls both resolve the same pointer; errno is kept across dlsym.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <atomic>
#include <cerrno>

namespace green::interpose {

void* resolve_next(const char* name) noexcept;

inline void* next_in(std::atomic<void*>& slot, const char* name) noexcept {
    void* fn = slot.load(std::memory_order_acquire);
    if (fn) [[likely]]
        return fn;
    const int saved_errno = errno;
    fn = resolve_next(name);
    slot.store(fn, std::memory_order_release);
    errno = saved_errno;
    return fn;
}

// One function-pointer slot per hooked symbol, resolved lazily.
#define GREEN_REAL(ret, name, params)                                            \
    inline auto real_##name() noexcept {                                         \
        using Fn = ret(*) params;                                                \
        static std::atomic<void*> fn{nullptr};                                   \
        return reinterpret_cast<Fn>(next_in(fn, #name));                         \
    }

GREEN_REAL(int, socket, (int, int, int))
GREEN_REAL(int, socketpair, (int, int, int, int*))
GREEN_REAL(int, pipe, (int*))
GREEN_REAL(int, pipe2, (int*, int))
GREEN_REAL(int, accept, (int, sockaddr*, socklen_t*))
GREEN_REAL(int, accept4, (int, sockaddr*, socklen_t*, int))
GREEN_REAL(int, connect, (int, const sockaddr*, socklen_t))
GREEN_REAL(ssize_t, read, (int, void*, size_t))
GREEN_REAL(ssize_t, readv, (int, const iovec*, int))
GREEN_REAL(ssize_t, write, (int, const void*, size_t))
GREEN_REAL(ssize_t, writev, (int, const iovec*, int))
GREEN_REAL(ssize_t, recv, (int, void*, size_t, int))
GREEN_REAL(ssize_t, recvfrom, (int, void*, size_t, int, sockaddr*, socklen_t*))
GREEN_REAL(ssize_t, recvmsg, (int, msghdr*, int))
GREEN_REAL(ssize_t, send, (int, const void*, size_t, int))
GREEN_REAL(ssize_t, sendto, (int, const void*, size_t, int, const sockaddr*, socklen_t))
GREEN_REAL(ssize_t, sendmsg, (int, const msghdr*, int))
GREEN_REAL(ssize_t, sendfile, (int, int, off_t*, size_t))
GREEN_REAL(int, close, (int))
GREEN_REAL(int, shutdown, (int, int))
GREEN_REAL(int, dup, (int))
GREEN_REAL(int, dup2, (int, int))
GREEN_REAL(int, dup3, (int, int, int))
GREEN_REAL(int, fcntl, (int, int, ...))
GREEN_REAL(int, ioctl, (int, unsigned long, ...))
GREEN_REAL(int, setsockopt, (int, int, int, const void*, socklen_t))
GREEN_REAL(int, getsockopt, (int, int, int, void*, socklen_t*))
GREEN_REAL(int, poll, (pollfd*, nfds_t, int))
GREEN_REAL(int, ppoll, (pollfd*, nfds_t, const timespec*, const sigset_t*))
GREEN_REAL(int, select, (int, fd_set*, fd_set*, fd_set*, timeval*))
GREEN_REAL(int, pselect, (int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*))
GREEN_REAL(int, epoll_wait, (int, epoll_event*, int, int))
GREEN_REAL(int, epoll_pwait, (int, epoll_event*, int, int, const sigset_t*))
GREEN_REAL(unsigned, sleep, (unsigned))
GREEN_REAL(int, usleep, (useconds_t))
GREEN_REAL(int, nanosleep, (const timespec*, timespec*))
GREEN_REAL(int, clock_nanosleep, (clockid_t, int, const timespec*, timespec*))
GREEN_REAL(int, getaddrinfo, (const char*, const char*, const addrinfo*, addrinfo**))
GREEN_REAL(int, getnameinfo, (const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int))
GREEN_REAL(hostent*, gethostbyname, (const char*))
GREEN_REAL(int, gethostbyname_r, (const char*, hostent*, char*, size_t, hostent**, int*))
GREEN_REAL(hostent*, gethostbyaddr, (const void*, socklen_t, int))

#undef GREEN_REAL

// The next definition of `name` (libc's), for hooks whose real function
// has no slot above; looked up once per call site.
#define GREEN_NEXT(name)                                                              \
    ([] {                                                                             \
        static std::atomic<void*> fn{nullptr};                                        \
        return reinterpret_cast<decltype(&name)>(::green::interpose::next_in(fn, #name)); \
    }())

}  // namespace green::interpose
