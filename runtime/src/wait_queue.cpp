// The wait of a plain OS thread on the runtime's wait lists (wait_queue.hpp).
//
// Only the shim has such waiters: threads it does not own and a hub's
// scheduler take its locks with a fiber record whose hub is null
// (interpose/src/lock_self.hpp), and they block in the kernel, as with
// glibc's locks. The waker that wins the Waiter sets thread_woken and
// futex-wakes it (Hub::schedule); a deadline is raced for with the same
// compare-exchange as every other wake, so the thread returns exactly once
// per wait, and never before its waker is done with the Waiter's word.
#include "wait_queue.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>

#include <chrono>

#include "os.hpp"

namespace green::detail {

WakeReason park_thread(Waiter& w, Clock::time_point deadline) noexcept {
    for (;;) {
        if (w.thread_woken.load(std::memory_order_acquire)) return w.reason.load(std::memory_order_acquire);
        timespec rel{};
        timespec* timeout = nullptr;
        if (deadline != Clock::time_point::max()) {
            auto left = deadline - Clock::now();
            if (left.count() <= 0) {
                if (Hub::claim(w, WakeReason::TimedOut)) return WakeReason::TimedOut;
                // A waker won first: its wake is on the way.
                deadline = Clock::time_point::max();
                continue;
            }
            auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
            rel.tv_sec = static_cast<time_t>(ns / 1000000000);
            rel.tv_nsec = static_cast<long>(ns % 1000000000);
            timeout = &rel;
        }
        os::raw_syscall6(SYS_futex, reinterpret_cast<long>(&w.thread_woken), FUTEX_WAIT_PRIVATE, 0,
                         reinterpret_cast<long>(timeout), 0, 0);
    }
}

}  // namespace green::detail
