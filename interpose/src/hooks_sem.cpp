// POSIX unnamed semaphores (sem_init/wait/trywait/timedwait/clockwait/post/
// getvalue/destroy) with fiber waiters, state inside the caller's sem_t.
//
// Named semaphores (sem_open) live in shared memory with glibc's layout and
// may be shared with other processes: a magic word that only sem_init writes
// tells ours apart, and anything else goes to glibc (blocking the hub while
// it waits). sem_init with pshared=1 also stays glibc's, for the same reason.
#include <semaphore.h>
#include <time.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include "hook_context.hpp"
#include "lock_self.hpp"
#include "real.hpp"
#include "spinlock.hpp"
#include "wait_queue.hpp"

using namespace green;
using namespace green::interpose;
using detail::SpinGuard;
using detail::Waiter;
using detail::WaitKind;
using detail::WakeReason;

namespace {

constexpr std::uint32_t kSemMagic = 0x67536d31;  // "gSm1"

struct PSem {
    std::atomic<std::uint32_t> lock;
    std::uint32_t value;
    Waiter* head;
    Waiter* tail;
    std::uint32_t magic;
};
static_assert(sizeof(PSem) <= sizeof(sem_t));

PSem* ours(sem_t* s) {
    auto* p = reinterpret_cast<PSem*>(s);
    return p->magic == kSemMagic ? p : nullptr;
}



int sem_wait_until(PSem* s, Clock::time_point deadline, bool try_only) {
    const LockSelf me = lock_self();
    Waiter w(me.fiber, WaitKind::Sem, s);
    bool busy = false;
    auto taken = [&] {
        if (s->value > 0) {
            --s->value;
            return true;
        }
        return busy = try_only;
    };
    auto park = [&](Waiter& linked, const detail::ParkOptions& o) {
        std::optional<ExternalWaker> rescuable;
        if (me.hub) {
            signals_wait_begins();
            // Only a signal handler may end this wait: not a deadlock then.
            if (signals_could_interrupt()) rescuable.emplace();
        }
        return detail::park_waiter(linked, o);
    };
    WakeReason r = detail::wait_in(*s, w, detail::ParkOptions::signal_interruptible(deadline), taken, park);
    // Woken: a unit taken, or handed over by the poster.
    if (r == WakeReason::Woken) return busy ? fail_with(EAGAIN) : 0;
    if (r != WakeReason::Interrupted) return fail_with(ETIMEDOUT);
    // A handler ran: EINTR without SA_RESTART, else wait on (the kernel
    // restarts the futex wait underneath glibc's sem_wait).
    if (signals_eintr(true)) return fail_with(EINTR);
    return sem_wait_until(s, deadline, try_only);
}

}  // namespace

extern "C" {

int sem_init(sem_t* sem, int pshared, unsigned value) noexcept {
    auto real = GREEN_NEXT(sem_init);
    if (pshared) return real(sem, pshared, value);
    if (value > SEM_VALUE_MAX) return fail_with(EINVAL);
    std::memset(sem, 0, sizeof *sem);
    auto* s = reinterpret_cast<PSem*>(sem);
    s->value = value;
    s->magic = kSemMagic;
    return 0;
}

int sem_destroy(sem_t* sem) noexcept {
    auto real = GREEN_NEXT(sem_destroy);
    PSem* s = ours(sem);
    if (!s) return real(sem);
    s->magic = 0;
    return 0;
}

int sem_wait(sem_t* sem) {
    auto real = GREEN_NEXT(sem_wait);
    PSem* s = ours(sem);
    return s ? sem_wait_until(s, Clock::time_point::max(), false) : real(sem);
}

int sem_trywait(sem_t* sem) noexcept {
    auto real = GREEN_NEXT(sem_trywait);
    PSem* s = ours(sem);
    return s ? sem_wait_until(s, Clock::time_point::max(), true) : real(sem);
}

int sem_timedwait(sem_t* sem, const timespec* abstime) {
    auto real = GREEN_NEXT(sem_timedwait);
    PSem* s = ours(sem);
    if (!s) return real(sem, abstime);
    if (!valid_timespec(abstime)) return fail_with(EINVAL);
    return sem_wait_until(s, deadline_at(CLOCK_REALTIME, abstime), false);
}

int sem_clockwait(sem_t* sem, clockid_t clock, const timespec* abstime) {
    auto real = GREEN_NEXT(sem_clockwait);
    PSem* s = ours(sem);
    if (!s) return real(sem, clock, abstime);
    if (!valid_timespec(abstime) || !lock_clock(clock)) return fail_with(EINVAL);
    return sem_wait_until(s, deadline_at(clock, abstime), false);
}

int sem_post(sem_t* sem) noexcept {
    auto real = GREEN_NEXT(sem_post);
    PSem* s = ours(sem);
    if (!s) return real(sem);
    detail::WakesAfterUnlock wakes;
    SpinGuard g(s->lock);
    if (detail::list_wake_one(*s, WakeReason::Woken, wakes)) return 0;
    if (s->value == SEM_VALUE_MAX) return fail_with(EOVERFLOW);
    ++s->value;
    return 0;
}

int sem_getvalue(sem_t* sem, int* value) noexcept {
    auto real = GREEN_NEXT(sem_getvalue);
    PSem* s = ours(sem);
    if (!s) return real(sem, value);
    SpinGuard g(s->lock);
    *value = static_cast<int>(s->value);
    return 0;
}

}  // extern "C"
