// sleep, usleep, nanosleep, clock_nanosleep: each must be hooked, because
// glibc's sleep() and usleep() reach the clock_nanosleep syscall internally
// where no preload sees them.
//
// A sleeping fiber parks on its hub's timer. A signal handler run for the
// thread ends the sleep early with EINTR and the time left, as the kernel
// does (sleeps are never restarted, whatever SA_RESTART says).
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "hook_context.hpp"
#include "hooks_cancel.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

namespace {

bool valid(const timespec* ts) noexcept { return ts && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000 && ts->tv_sec >= 0; }

Clock::duration to_duration(const timespec& ts) noexcept {
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Returns the time left when a signal handler (or a cancel, runtime API
// only) ended the sleep early, else zero. A cancellation point:
// pthread_cancel unwinds the thread-fiber here.
Clock::duration sleep_fiber(detail::Hub*, Clock::time_point until) {
    cancel_point();
    signals_wait_begins();
    if (green::wait_until(until) != WaitResult::Cancelled) return Clock::duration::zero();
    cancel_point();
    signals_eintr(false);
    return std::max(until - Clock::now(), Clock::duration(1));
}

void to_timespec(Clock::duration d, timespec* out) noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    out->tv_sec = static_cast<time_t>(ns / 1000000000);
    out->tv_nsec = static_cast<long>(ns % 1000000000);
}

}  // namespace

extern "C" {

int nanosleep(const timespec* req, timespec* rem) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h || !valid(req)) return real_nanosleep()(req, rem);
    Clock::duration left = sleep_fiber(h, Clock::now() + to_duration(*req));
    if (left == Clock::duration::zero()) return 0;
    if (rem) to_timespec(left, rem);
    return fail_with(EINTR);
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h || !valid(req) ||
        (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME && clock != CLOCK_BOOTTIME))
        return real_clock_nanosleep()(clock, flags, req, rem);
    Clock::duration d = to_duration(*req);
    if (flags & TIMER_ABSTIME) {
        timespec now{};
        clock_gettime(clock, &now);
        d -= to_duration(now);
        if (d.count() < 0) d = Clock::duration::zero();
    }
    Clock::duration left = sleep_fiber(h, Clock::now() + d);
    if (left == Clock::duration::zero()) return 0;
    if (rem && !(flags & TIMER_ABSTIME)) to_timespec(left, rem);
    return EINTR;  // clock_nanosleep reports its error as the result
}

int usleep(useconds_t usec) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h) return real_usleep()(usec);
    if (sleep_fiber(h, Clock::now() + std::chrono::microseconds(usec)) != Clock::duration::zero()) return fail_with(EINTR);
    return 0;
}

unsigned sleep(unsigned seconds) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h) return real_sleep()(seconds);
    Clock::duration left = sleep_fiber(h, Clock::now() + std::chrono::seconds(seconds));
    // glibc's sleep() returns the whole seconds nanosleep left.
    return static_cast<unsigned>(std::chrono::duration_cast<std::chrono::seconds>(left).count());
}

}  // extern "C"
