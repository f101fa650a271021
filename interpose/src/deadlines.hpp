// Time arguments of hooked calls as the runtime's deadlines, and back.
//
// Every hook that takes a timeout converts it here, so that all of them
// check their arguments the way libc and the kernel do (EINVAL for a
// tv_nsec outside [0, 1e9), for a clock the call does not support) and turn
// them into deadlines the same way.
//
// A deadline is a Clock (steady) time point; Clock::time_point::max() means
// none. An absolute time on another clock (CLOCK_REALTIME) is converted
// once, when the call starts: a later step of that clock does not move it.
// No argument overflows the conversion: a time further ahead than Clock can
// count (programs pass tv_sec = LONG_MAX for "never") is no deadline, as the
// kernel saturates it too.
#pragma once

#include <sys/time.h>
#include <time.h>

#include <green/fiber.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace green::interpose {

inline constexpr std::int64_t kNsPerSecond = 1'000'000'000;

// A time libc accepts: tv_nsec within [0, 1e9). Null is not one (the timed
// calls that take it have no "no timeout" form).
inline bool valid_timespec(const timespec* t) noexcept { return t && t->tv_nsec >= 0 && t->tv_nsec < kNsPerSecond; }

// A relative interval nanosleep accepts: valid and not negative.
inline bool valid_interval(const timespec* t) noexcept { return valid_timespec(t) && t->tv_sec >= 0; }

// A select() timeout Linux accepts: whole seconds in tv_usec carry over, and
// the sum may be neither negative nor leave negative microseconds.
inline bool valid_interval(const timeval* t) noexcept {
    return t->tv_sec + t->tv_usec / 1'000'000 >= 0 && t->tv_usec % 1'000'000 >= 0;
}

// The clocks of the timed locks and semaphore waits (pthread_*_clock*,
// sem_clockwait): those glibc's futex waits support; any other is EINVAL.
inline bool lock_clock(clockid_t c) noexcept { return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC; }

// The clocks clock_nanosleep sleeps on as a fiber; others go to the kernel.
inline bool sleep_clock(clockid_t c) noexcept { return c == CLOCK_MONOTONIC || c == CLOCK_REALTIME || c == CLOCK_BOOTTIME; }

// Timeouts of poll, select and their kin that the kernel answers at once:
// zero (they only look, never wait), or one it refuses with EINVAL. Null
// means none (wait as long as it takes).
inline bool answers_at_once(const timespec* t) noexcept {
    return t && ((t->tv_sec == 0 && t->tv_nsec == 0) || !valid_interval(t));
}
inline bool answers_at_once(const timeval* t) noexcept {
    return t && ((t->tv_sec == 0 && t->tv_usec == 0) || !valid_interval(t));
}

// Further ahead than this is never: Clock's 64-bit nanoseconds span 292 years.
inline constexpr std::int64_t kForeverSeconds = std::int64_t{100} * 365 * 24 * 3600;

// `sec` seconds plus `frac` units of 1/`per_second` second from now; whole
// seconds in `frac` carry over, as Linux's select takes its timeval.
inline Clock::time_point deadline_in(std::int64_t sec, std::int64_t frac, std::int64_t per_second = kNsPerSecond) noexcept {
    if (__builtin_add_overflow(sec, frac / per_second, &sec)) return frac > 0 ? Clock::time_point::max() : Clock::now();
    if (sec >= kForeverSeconds) return Clock::time_point::max();
    sec = std::max(sec, -kForeverSeconds);
    return Clock::now() + std::chrono::seconds(sec) + std::chrono::nanoseconds(frac % per_second * (kNsPerSecond / per_second));
}

// An absolute time on `clock` (pthread_*timed*, sem_timedwait, futex
// WAIT_BITSET, clock_nanosleep with TIMER_ABSTIME); null means none.
inline Clock::time_point deadline_at(clockid_t clock, const timespec* abstime) noexcept {
    if (!abstime) return Clock::time_point::max();
    timespec now{};
    clock_gettime(clock, &now);
    std::int64_t sec;
    if (__builtin_sub_overflow(std::int64_t{abstime->tv_sec}, std::int64_t{now.tv_sec}, &sec))
        return abstime->tv_sec > 0 ? Clock::time_point::max() : Clock::now();
    return deadline_in(sec, abstime->tv_nsec - now.tv_nsec);
}

// A relative timeout (nanosleep, futex WAIT, ppoll, sigtimedwait, select);
// null means none.
inline Clock::time_point deadline_after(const timespec* rel) noexcept {
    return rel ? deadline_in(rel->tv_sec, rel->tv_nsec) : Clock::time_point::max();
}
inline Clock::time_point deadline_after(const timeval* rel) noexcept {
    return rel ? deadline_in(rel->tv_sec, rel->tv_usec, 1'000'000) : Clock::time_point::max();
}

// poll's and epoll_wait's timeout: negative means none.
inline Clock::time_point deadline_after_ms(int ms) noexcept {
    return ms < 0 ? Clock::time_point::max() : Clock::now() + std::chrono::milliseconds(ms);
}

// A socket's SO_RCVTIMEO/SO_SNDTIMEO in nanoseconds: 0 means none.
inline Clock::time_point deadline_after_ns(std::int64_t ns) noexcept {
    return ns > 0 ? deadline_in(0, ns) : Clock::time_point::max();
}

// A socket timeout as the kernel reports it, in nanoseconds.
inline std::int64_t timeout_ns(const timeval& tv) noexcept {
    if (tv.tv_sec >= kForeverSeconds) return INT64_MAX;
    return static_cast<std::int64_t>(tv.tv_sec) * kNsPerSecond + static_cast<std::int64_t>(tv.tv_usec) * 1000;
}

// A clock reading in nanoseconds.
inline std::int64_t to_ns(const timespec& t) noexcept { return static_cast<std::int64_t>(t.tv_sec) * kNsPerSecond + t.tv_nsec; }

// What is left until `deadline`, never negative.
inline Clock::duration time_left(Clock::time_point deadline) noexcept {
    return std::max(deadline - Clock::now(), Clock::duration::zero());
}

// A duration as the timespec the kernel takes (futex) or reports
// (nanosleep's time left).
inline timespec to_timespec(Clock::duration d) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    return {static_cast<time_t>(ns / kNsPerSecond), static_cast<long>(ns % kNsPerSecond)};
}

// A duration as select reports the time it did not sleep.
inline timeval to_timeval(Clock::duration d) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    return {static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

// A deadline as poll()'s timeout: -1 for none, else the milliseconds left
// rounded up (a wait never ends before its deadline), at most 2^30.
inline int timeout_ms(Clock::time_point deadline) noexcept {
    if (deadline == Clock::time_point::max()) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

}  // namespace green::interpose
