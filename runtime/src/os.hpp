// The runtime's own door to the operating system.
//
// When libgreen runs under the LD_PRELOAD shim, the shim interposes read,
// write, poll, nanosleep, pthread_create, pthread mutexes and syscall(). The
// runtime must never reach its own hooks (that recurses or parks the hub), so
// every OS facility it needs comes from here: symbols looked up directly in
// libc.so.6 (never RTLD_DEFAULT/RTLD_NEXT, which find the shim first), and
// futex/gettid through the raw syscall instruction.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace green::detail::os {

struct Libc {
    int (*pthread_create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
    int (*pthread_join)(pthread_t, void**);
    int (*pthread_detach)(pthread_t);
    ssize_t (*write)(int, const void*, size_t);
    ssize_t (*read)(int, void*, size_t);
    int (*close)(int);
    int (*nanosleep)(const struct timespec*, struct timespec*);
};

// Resolved on first use; safe before any constructor of ours has run.
const Libc& libc() noexcept;

// Starts a detached plain thread for the runtime itself (blocking pool,
// monitor, the shim's hub threads and balancer): through libc's own
// pthread_create, so the shim cannot make it a fiber, with `stack_size`
// bytes of stack and every blockable signal blocked from its first
// instruction (such a thread must never take a signal meant for the
// program, or a signal the program blocked in all of its threads would run
// its default action there). glibc's own signals stay unblocked: setuid()
// and friends signal every thread and wait for each to answer. Detached,
// unless `joinable` is given, which then receives the thread to join. False
// if it could not be started.
bool start_plain_thread(void* (*fn)(void*), void* arg, std::size_t stack_size, pthread_t* joinable = nullptr) noexcept;

long raw_syscall6(long nr, long a, long b, long c, long d, long e, long f) noexcept;

// Blocks the OS thread while *word == expected (spurious returns possible).
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept;
void futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept;

pid_t gettid() noexcept;

// Writes all of `text` to fd 2 with the real write(); async-signal-safe.
void write_stderr(const char* text, std::size_t len) noexcept;
void write_stderr(const char* text) noexcept;

// True while this thread creates the runtime's own fds (libev's epoll fd and
// async eventfd in a hub's constructor). The shim moves fds created in this
// scope out of the program's way; libgreen alone ignores it.
bool creating_runtime_fds() noexcept;
struct RuntimeFdScope {
    RuntimeFdScope() noexcept;
    ~RuntimeFdScope();
    RuntimeFdScope(const RuntimeFdScope&) = delete;
    RuntimeFdScope& operator=(const RuntimeFdScope&) = delete;
};

// Reads a small /proc or /sys file as an integer; `fallback` on any failure.
long read_long_file(const char* path, long fallback) noexcept;

}  // namespace green::detail::os
