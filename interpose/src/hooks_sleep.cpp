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

}  // namespace

extern "C" {

int nanosleep(const timespec* req, timespec* rem) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h || !valid_interval(req)) return real_nanosleep()(req, rem);
    Clock::duration left = sleep_fiber(h, deadline_after(req));
    if (left == Clock::duration::zero()) return 0;
    if (rem) *rem = to_timespec(left);
    return fail_with(EINTR);
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h || !valid_interval(req) || !sleep_clock(clock)) return real_clock_nanosleep()(clock, flags, req, rem);
    const bool absolute = (flags & TIMER_ABSTIME) != 0;
    Clock::duration left = sleep_fiber(h, absolute ? deadline_at(clock, req) : deadline_after(req));
    if (left == Clock::duration::zero()) return 0;
    if (rem && !absolute) *rem = to_timespec(left);
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
