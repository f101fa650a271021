// syscall(): FUTEX_WAIT/WAIT_BITSET/WAKE/WAKE_BITSET from a fiber go through
// fiber_futex (std::atomic::wait, std::counting_semaphore, std::latch in
// libstdc++ 12 call libc's exported syscall()); every other system call, and
// futex calls from threads without a hub, go to the kernel unchanged.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>

#include <cerrno>
#include <unistd.h>

#include <cstdarg>

#include "fiber_futex.hpp"
#include "hook_context.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

extern "C" long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (number != SYS_futex) {
        // Programs that close fds through syscall() (a daemon's close_range
        // sweep) must keep the shim's own fds and the fd table in step.
        switch (number) {
            case SYS_close: return ::close(static_cast<int>(a1));
            case SYS_close_range: return ::close_range(static_cast<unsigned>(a1), static_cast<unsigned>(a2), static_cast<int>(a3));
            case SYS_dup2: return ::dup2(static_cast<int>(a1), static_cast<int>(a2));
            case SYS_dup3: return ::dup3(static_cast<int>(a1), static_cast<int>(a2), static_cast<int>(a3));
            default: return real_syscall()(number, a1, a2, a3, a4, a5, a6);
        }
    }
    auto* addr = reinterpret_cast<const std::atomic<std::uint32_t>*>(a1);
    const int cmd = static_cast<int>(a2) & FUTEX_CMD_MASK;
    const bool realtime = (a2 & FUTEX_CLOCK_REALTIME) != 0;
    const auto* ts = reinterpret_cast<const timespec*>(a4);
    const bool waits = cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
    if (!fiber_context()) {
        if (!waits) return real_syscall()(number, a1, a2, a3, a4, a5, a6);
        kernel_futex_waiters().fetch_add(1, std::memory_order_seq_cst);
        long r = real_syscall()(number, a1, a2, a3, a4, a5, a6);
        int err = errno;
        kernel_futex_waiters().fetch_sub(1, std::memory_order_seq_cst);
        errno = err;
        return r;
    }
    switch (cmd) {
        case FUTEX_WAIT:
        case FUTEX_WAIT_BITSET: {
            std::uint32_t bitset = cmd == FUTEX_WAIT ? kFutexMatchAny : static_cast<std::uint32_t>(a6);
            if (bitset == 0) return fail_with(EINVAL);
            // The kernel checks the time before the word: a bad one is EINVAL
            // whatever the word holds. (Absolute times too: no negative seconds.)
            if (ts && !valid_interval(ts)) return fail_with(EINVAL);
            auto deadline = cmd == FUTEX_WAIT ? deadline_after(ts) : deadline_at(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, ts);
            int err = fiber_futex_wait(addr, static_cast<std::uint32_t>(a3), deadline, bitset);
            return err ? fail_with(err) : 0;
        }
        case FUTEX_WAKE:
        case FUTEX_WAKE_BITSET: {
            std::uint32_t bitset = cmd == FUTEX_WAKE ? kFutexMatchAny : static_cast<std::uint32_t>(a6);
            if (bitset == 0) return fail_with(EINVAL);
            return fiber_futex_wake(addr, static_cast<int>(a3), bitset);
        }
        default: return real_syscall()(number, a1, a2, a3, a4, a5, a6);
    }
}
