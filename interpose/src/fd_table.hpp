// What the shim knows about each fd the program owns.
//
// The shim manages only fds it saw created (socket, socketpair, accept, pipe,
// and their dups). For those it keeps the kernel's O_NONBLOCK always set, so
// a call returns EAGAIN instead of blocking the hub, and remembers what the
// program itself asked for. Inherited or foreign fds (stdin, files, eventfds
// made by libraries) are left alone: flipping O_NONBLOCK on a description
// shared with another process (a shell's terminal) would change that
// process's behaviour too.
//
// State lives per open file description, as the kernel's does: dup'ed fds
// share one Description, so F_SETFL(O_NONBLOCK) or SO_RCVTIMEO through one is
// seen through the other, exactly as unpatched.
//
// Invariants: an fd maps to a Description while the fd is open (and a
// Description's memory is never freed, only reused); close and
// dup2/dup3 onto it first tell the runtime (notify_fd_closing, waking any
// fiber waiting on it with EBADF), then unmap it, then really close.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace green::interpose {

enum class FdKind : std::uint8_t { StreamSocket, DatagramSocket, Pipe };

struct Description {
    std::atomic<int> refs{1};
    FdKind kind;
    std::atomic<bool> user_nonblock{false};
    // SO_RCVTIMEO / SO_SNDTIMEO as the program set them; 0 = none.
    std::atomic<std::int64_t> recv_timeout_ns{0};
    std::atomic<std::int64_t> send_timeout_ns{0};
    Description* next_free = nullptr;  // while on the free list (fd_table.cpp)

    explicit Description(FdKind k, bool nonblock) : kind(k), user_nonblock(nonblock) {}
};

// Records a freshly created fd (the kernel flag must already be O_NONBLOCK).
void fd_adopt(int fd, FdKind kind, bool user_nonblock) noexcept;
// `newfd` now refers to the same description as `oldfd` (dup family).
void fd_share(int oldfd, int newfd) noexcept;
// The fd is going away (close, or dup2 onto it): unmap and drop the description.
void fd_forget(int fd) noexcept;
// The description of a managed fd, or null. Valid while the fd stays open.
Description* fd_lookup(int fd) noexcept;

}  // namespace green::interpose
