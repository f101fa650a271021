// Small helpers shared by the runtime test modules.
//
// Rule for every test here: no sleep is ever used to order events between
// fibers or threads; ordering comes from green primitives, std::latch or
// atomics. Timing assertions are lower bounds only; which deadline or event
// ended a wait is told by its result, and "returns at once" by counting the
// fiber switches made meanwhile (switches_during).
#pragma once

#include <green/green.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "../common/proc.hpp"

namespace green_test {

using namespace std::chrono_literals;
using green::Clock;

inline pid_t gettid_now() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Runs `body` as the "test-main" fiber under green::run, so that a deadlock in
// a test surfaces as a green::Deadlock exception (a test failure with the
// report) instead of the process exiting with status 3.
template <class F>
auto in_green(F&& body) {
    return green::run(std::forward<F>(body), "test-main");
}

inline double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A connected AF_UNIX stream socket pair, both ends non-blocking.
struct SocketPair {
    int fd[2] = {-1, -1};
    SocketPair() {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) != 0) {
            ADD_FAILURE() << "socketpair: " << std::strerror(errno);
        }
    }
    ~SocketPair() { close_both(); }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
    SocketPair(SocketPair&& o) noexcept : fd{std::exchange(o.fd[0], -1), std::exchange(o.fd[1], -1)} {}
    void close_both() {
        for (int& f : fd) {
            if (f >= 0) {
                green::notify_fd_closing(f);
                ::close(f);
                f = -1;
            }
        }
    }
    int a() const { return fd[0]; }
    int b() const { return fd[1]; }
};

// Resident set size of this process in KiB.
inline long rss_kib() { return green::test::proc_status_field(::getpid(), "VmRSS"); }

// Spawns and joins an empty fiber. The run queue is FIFO, so every fiber
// that was runnable before the call has run up to its next suspension point
// by the time this returns.
inline void let_runnable_fibers_run() { green::spawn([] {}).join(); }

// How many fiber switches the process made while `op` ran: 0 means the
// calling fiber never suspended, so nothing else ran meanwhile.
template <class F>
std::uint64_t switches_during(F&& op) {
    const std::uint64_t before = green::stats().switches;
    op();
    return green::stats().switches - before;
}

// For the few places where a fiber must know that something happened on
// another thread and no green primitive can tell it (e.g. "the other hub's
// fiber is parked in wait_fd now"): polls `pred`, yielding the fiber and the
// CPU between polls. Not a sleep: it returns as soon as `pred` holds. Fails
// (returns false) only after `limit`, which means the test is broken.
template <class Pred>
bool spin_until(Pred pred, std::chrono::seconds limit = std::chrono::seconds(20)) {
    auto give_up = Clock::now() + limit;
    while (!pred()) {
        if (Clock::now() > give_up) return false;
        green::this_fiber::yield();
        ::sched_yield();
    }
    return true;
}

// For a death-test child that sets GREEN_* itself: the configuration it
// reads on its first green call is then exactly what it set.
inline void clear_green_env() {
    for (const char* v : {"GREEN_STACK_SIZE", "GREEN_POOL_SIZE", "GREEN_STACK_GUARD", "GREEN_STATS", "GREEN_HUBS",
                          "GREEN_DUMP_SIGNAL", "GREEN_BALANCE"})
        ::unsetenv(v);
}

inline bool write_byte(int fd, char c = 'x') { return ::write(fd, &c, 1) == 1; }

inline int read_byte(int fd) {
    char c = 0;
    ssize_t n = ::read(fd, &c, 1);
    return n == 1 ? static_cast<unsigned char>(c) : -1;
}

}  // namespace green_test
