// Waiting on the outside world: file descriptors and plain deadlines.
//
// These are the primitives the LD_PRELOAD shim is built on, so they report
// outcomes as values instead of throwing: a hooked read() has to turn each one
// into an errno. A wait costs no allocation; each hub keeps one libev watcher
// per fd that stays armed while fibers use the fd (Go's netpoll does the same
// with edge-triggered epoll), and is disarmed lazily when readiness arrives
// that nobody waits for.
//
// The fd's owner must call notify_fd_closing() before close(): every fiber
// waiting on the fd, on any hub, then returns WaitResult::Closed, and a later
// wait on a new fd with the same number can never see the old fd's readiness.
#pragma once

#include <green/fiber.hpp>

#include <cstddef>
#include <cstdint>

namespace green {

enum class WaitResult : std::uint8_t {
    Ready,      // the fd reported an event we waited for (or an error/hangup)
    TimedOut,   // the wait's own deadline passed
    Expired,    // an enclosing green::Deadline passed first
    Cancelled,  // Task::cancel() was called on the waiting fiber
    Closed,     // notify_fd_closing() was called for this fd while waiting
};

const char* to_string(WaitResult r) noexcept;

enum IoEvents : int {
    kReadable = 1,  // same values as EV_READ / EV_WRITE
    kWritable = 2,
};

// Suspends the calling fiber until `fd` is readable/writable (`events` is a
// mask of IoEvents) or `deadline` passes. Clock::time_point::max() waits
// without a deadline. Must be called from a fiber (any thread gets a hub on
// first use).
WaitResult wait_fd(int fd, int events, Clock::time_point deadline = Clock::time_point::max()) noexcept;

// Suspends until any of `n` fds has one of its events (poll/select/epoll
// semantics: the caller re-checks with a zero-timeout call afterwards), or
// `deadline` passes. It waits on the fds' long-lived watchers, like wait_fd
// (no epoll_ctl per wait when the same set is waited on again), and ends
// Ready when one of the fds is closed meanwhile (notify_fd_closing), so the
// caller's recheck reports it.
struct FdInterest {
    int fd;
    int events;  // IoEvents mask; entries with 0 are ignored
};
WaitResult wait_any_fd(const FdInterest* fds, std::size_t n,
                       Clock::time_point deadline = Clock::time_point::max()) noexcept;

// Suspends until `deadline`, without throwing; TimedOut is the normal outcome.
WaitResult wait_until(Clock::time_point deadline) noexcept;

// Tells every hub that `fd` is about to be closed (see above). Cheap when no
// fiber ever waited on it.
void notify_fd_closing(int fd) noexcept;

}  // namespace green
