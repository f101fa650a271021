// When a hook may suspend the calling fiber, and how one blocking attempt
// becomes "try, wait for readiness, try again" with unpatched semantics.
//
// A hook suspends only when all of these hold; otherwise it is the real call:
//  - the shim finished initialising (calls from other libraries'
//    constructors, or from dlsym's own internals, come earlier);
//  - the calling thread has a hub (threads the shim does not own pass);
//  - the caller is not the hub's scheduler, i.e. not libev or the runtime
//    itself (libev's epoll_wait and eventfd writes must really happen);
//  - for fd calls, the fd can be waited on (fd_table.hpp) and the program did
//    not make it non-blocking itself (then EAGAIN is what it expects).
//
// The wait never changes the fd's kernel flags: each attempt is made
// non-blocking by itself (MSG_DONTWAIT, RWF_NOWAIT), or readiness is checked
// first where the kernel has no per-call flag (hooks_io.cpp).
#pragma once

#include <green/blocking.hpp>
#include <green/io.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>

#include "deadlines.hpp"
#include "fd_table.hpp"
#include "hub.hpp"
#include "signals.hpp"

namespace green::interpose {

extern std::atomic<bool> g_shim_ready;
// Thread-fibers get TLS of their own (GREEN_THREAD_LOCALS, init.cpp).
extern bool g_thread_locals_per_thread;

inline detail::Hub* fiber_context() noexcept {
    if (!g_shim_ready.load(std::memory_order_acquire)) return nullptr;
    detail::Hub* h = detail::Hub::current_if_any();
    return (h && !h->in_scheduler()) ? h : nullptr;
}

// The description of `fd` if a call on it from hub `h` must be made to wait:
// the fd can be waited on (not a regular file, not the runtime's own) and is
// blocking in the program's view. Null: make the real call as it is.
inline Description* waitable_description(detail::Hub* h, int fd) noexcept {
    if (!h) return nullptr;
    Description* d = fd_classify(fd);
    if (!d || d->kind == FdKind::Passthrough || d->kind == FdKind::Shim) return nullptr;
    return d->nonblock.load(std::memory_order_relaxed) ? nullptr : d;
}

inline bool is_socket(FdKind k) noexcept { return k == FdKind::StreamSocket || k == FdKind::DatagramSocket; }

// A zero-timeout poll: true if `fd` reports any of `events` (or an error, so
// that the real call that follows reports it).
bool ready_now(int fd, short events) noexcept;

// errno = err; -1: how a hooked call reports a failure it decided itself.
inline int fail_with(int err) noexcept {
    errno = err;
    return -1;
}

// Counters for GREEN_STATS, by call family.
enum class Family { Socket, Read, Write, Connect, Accept, Close, Poll, Sleep, Dns, Fcntl, Thread, Lock, Count };
void count_call(Family f) noexcept;

// Runs `f` on the blocking pool when called from a fiber (directly
// otherwise), carrying errno to the pool thread and back: results such as
// EAI_SYSTEM or waitpid's ECHILD are reported through it.
template <class F>
auto blocking_keep_errno(F&& f) {
    if (!fiber_context()) return f();
    int err = errno;
    auto r = green::call_blocking([&] {
        errno = err;
        auto v = f();
        err = errno;
        return v;
    });
    errno = err;
    return r;
}

// Maps a wait that did not end in readiness to the errno the kernel would
// have given the blocking call: timeout -> EAGAIN (SO_RCVTIMEO/SO_SNDTIMEO),
// fd closed under us -> EBADF, anything else (a cancel, which only fibers of
// programs that use the runtime API can receive) -> EINTR.
inline int errno_for(WaitResult r) noexcept {
    switch (r) {
        case WaitResult::TimedOut: return EAGAIN;
        case WaitResult::Closed: return EBADF;
        default: return EINTR;
    }
}

// Waits until `fd` may be ready. With a hub, parks the calling fiber. Without
// one (a thread the shim does not own, using a managed fd, whose kernel flag
// is O_NONBLOCK) the thread itself blocks in the real poll(), which is what
// its blocking call would have done.
// From a thread-fiber it is a cancellation point (hooks_cancel.hpp): it may
// unwind the caller, so it is not noexcept.
WaitResult wait_ready(detail::Hub* h, int fd, int events, Clock::time_point deadline);

// wait_ready for a blocking call that found `fd` not ready, framed for
// signal handlers: after one with SA_RESTART the wait goes on, as the kernel
// restarts the call, unless a socket timeout is set (signal(7); `deadline` is
// taken to be one) or the call is not `restartable` (it already moved data:
// it returns that count). Cancelled means EINTR.
WaitResult wait_blocking(detail::Hub* h, int fd, int events, Clock::time_point deadline, bool restartable = true);

// The same, for a call whose `deadline` may be its own timeout rather than a
// socket's (recvmmsg): the caller says whether an SA_RESTART handler restarts
// the call.
WaitResult wait_blocking_restarting(detail::Hub* h, int fd, int events, Clock::time_point deadline,
                                    bool sa_restart_restarts);

// Repeats `attempt` (a real non-blocking call) until it does not fail with
// EAGAIN, waiting for `fd` in between. Returns what the blocking call
// would have returned; errno is left untouched on success.
template <class Attempt>
auto retry_until_ready(detail::Hub* h, int fd, int events, Clock::time_point deadline, Attempt&& attempt) {
    const int saved_errno = errno;
    for (;;) {
        auto r = attempt();
        if (r >= 0) {
            errno = saved_errno;
            return r;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) return r;
        if (WaitResult w = wait_blocking(h, fd, events, deadline); w != WaitResult::Ready) {
            errno = errno_for(w);
            return decltype(r)(-1);
        }
    }
}

}  // namespace green::interpose
