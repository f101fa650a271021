// sleep, usleep, nanosleep, clock_nanosleep: each must be hooked, because
// glibc's sleep() and usleep() reach the clock_nanosleep syscall internally
// where no preload sees them.
//
// A sleeping fiber parks on its hub's timer. Differences from unpatched, by
// design: a signal does not cut a fiber's sleep short (the hub, not the fiber,
// takes signals), so `rem` is left untouched and EINTR never occurs.
#include <time.h>
#include <unistd.h>

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

void sleep_fiber(detail::Hub*, Clock::time_point until) {
    // A cancel from the runtime API ends the sleep early, like a signal
    // would; pthread_cancel unwinds the thread-fiber here.
    cancel_point();
    if (green::wait_until(until) == WaitResult::Cancelled) cancel_point();
}

}  // namespace

extern "C" {

int nanosleep(const timespec* req, timespec* rem) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h || !valid(req)) return real_nanosleep()(req, rem);
    sleep_fiber(h, Clock::now() + to_duration(*req));
    return 0;
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
    sleep_fiber(h, Clock::now() + d);
    return 0;
}

int usleep(useconds_t usec) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h) return real_usleep()(usec);
    sleep_fiber(h, Clock::now() + std::chrono::microseconds(usec));
    return 0;
}

unsigned sleep(unsigned seconds) {
    count_call(Family::Sleep);
    detail::Hub* h = fiber_context();
    if (!h) return real_sleep()(seconds);
    sleep_fiber(h, Clock::now() + std::chrono::seconds(seconds));
    return 0;
}

}  // extern "C"
