// What the shim knows about each fd the program uses, so a hook can make a
// blocking call wait in its fiber without touching the fd's kernel flags.
//
// The shim never sets O_NONBLOCK behind the program's back: a description
// may be shared with other processes (children, a shell's terminal) that
// would see the flag. Instead each call is made non-blocking by itself
// (MSG_DONTWAIT on sockets, RWF_NOWAIT on pipes, eventfds, timerfds), or,
// where the kernel offers no per-call flag, readiness is awaited first (see
// hook_context.hpp and ARCHITECTURE.md for the races that leaves).
//
// Any fd is classified on first use by a hook (fstat once), whatever made it:
// the shim's socket/pipe hooks, open(), an inherited fd, a library. Regular
// files, directories and block devices are Passthrough: they never report
// "would block" and cannot be waited on by epoll, so their calls go to libc
// as they are. Shim fds are the runtime's own (libev's epoll and eventfd, the
// GREEN_STATS copy of stderr): to the program they do not exist.
//
// State lives per open file description where the kernel keeps it per
// description: dup'ed fds share one Description, so a cached O_NONBLOCK or
// SO_RCVTIMEO set through one is seen through the other.
//
// Invariants: a Description's memory is never freed, only reused; hooks that
// return a new fd number forget what was cached for it (the number was free,
// so anything cached is stale: an fd closed where no hook sees, by fclose or
// a library's raw syscall); close and dup2/dup3 onto an fd first tell the
// runtime (notify_fd_closing wakes any fiber waiting on it with EBADF), then
// unmap it, then really close. A stale entry degrades safely: a socket entry
// for what is no longer a socket gets ENOTSOCK and is reclassified; a
// Pollable entry only adds a readiness check.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace green::interpose {

enum class FdKind : std::uint8_t {
    Passthrough,     // regular file, directory, block device: never waited on
    StreamSocket,    // SOCK_STREAM / SOCK_SEQPACKET: writes loop until done
    DatagramSocket,  // one attempt per send
    Pollable,        // pipe, FIFO, tty/char device, eventfd, timerfd, signalfd...
    Shim,            // the runtime's own: hidden from the program
};

// Whether the kernel honours RWF_NOWAIT for this description (pipes since
// Linux 5.x, eventfd/timerfd): probed on first use.
enum class NoWait : std::uint8_t { Unknown, Yes, No };

struct Description {
    std::atomic<int> refs{1};
    FdKind kind;
    // The kernel's O_NONBLOCK as the program set it (the shim never changes
    // it), cached so the hot path needs no fcntl.
    std::atomic<bool> nonblock{false};
    std::atomic<NoWait> nowait{NoWait::Unknown};
    bool fifo = false;  // pipe or FIFO: fallback writes are bounded to PIPE_BUF
    // SO_LINGER with a timeout: close may block until unsent data is gone.
    std::atomic<bool> linger{false};
    // SO_RCVTIMEO / SO_SNDTIMEO as the program set them; 0 = none.
    std::atomic<std::int64_t> recv_timeout_ns{0};
    std::atomic<std::int64_t> send_timeout_ns{0};
    Description* next_free = nullptr;  // while on the free list (fd_table.cpp)

    explicit Description(FdKind k, bool nb) : kind(k), nonblock(nb) {}
};

// Records a freshly created fd of a known kind.
void fd_adopt(int fd, FdKind kind, bool nonblock, bool fifo = false) noexcept;
// `newfd` now refers to the same description as `oldfd` (dup family).
void fd_share(int oldfd, int newfd) noexcept;
// The fd is going away (close, or dup2 onto it), or its number was just
// handed out by a call the shim does not classify: unmap and drop.
void fd_forget(int fd) noexcept;
// The description of an fd already seen, or null. Valid while the fd stays open.
Description* fd_lookup(int fd) noexcept;
// The description of `fd`, classifying it (fstat, F_GETFL) if not seen yet;
// null if the fd is not open.
Description* fd_classify(int fd) noexcept;
// Calls fn for every fd in [first, last] that has a description; skips the
// parts of the table never used, so a sweep over ~0u stays cheap.
void fd_each_known(unsigned first, unsigned last, void (*fn)(int fd, Description* d)) noexcept;
// Reclassifies after the cached kind proved wrong (ENOTSOCK).
Description* fd_reclassify(int fd) noexcept;

inline bool is_shim_fd(int fd) noexcept {
    Description* d = fd_lookup(fd);
    return d && d->kind == FdKind::Shim;
}

}  // namespace green::interpose
