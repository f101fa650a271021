// pthread mutexes, condition variables, rwlocks and barriers, owned by
// fibers instead of kernel thread ids.
//
// Why all of them: glibc's own implementations record owners by TID (two
// fibers of one hub would look like one owner: a recursive mutex would let
// the second in, an error-checking one would report EDEADLK) and block the
// whole OS thread; and glibc's pthread_cond_wait relocks the mutex through
// an internal call no preload sees. So the shim implements the whole family
// and keeps its state inside the caller's object (no side table, no
// allocation), in a layout whose all-zero state is the static initializer.
//
// Layout invariants (checked by static_assert below):
//   pthread_mutex_t (40 bytes): the type stays at glibc's __kind offset, so
//   PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP and friends keep working.
//   pthread_cond_t (48), pthread_rwlock_t (56), pthread_barrier_t (32).
// Process-shared objects (PTHREAD_PROCESS_SHARED) are not supported: their
// waiters in another process could not be woken by this one's hubs.
//
// Every lock waits through the runtime's wait queue (wait_queue.hpp): link a
// Waiter under the object's spinlock, park, and be handed ownership by the
// unlocker, which wins the Waiter with a compare-exchange.
#include <pthread.h>
#include <time.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>

#include "hook_context.hpp"
#include "hooks_cancel.hpp"
#include "lock_self.hpp"
#include "spinlock.hpp"
#include "wait_queue.hpp"

using namespace green;
using namespace green::interpose;
using detail::ParkOptions;
using detail::SpinGuard;
using detail::Waiter;
using detail::WaitKind;
using detail::WakeReason;

namespace {

// owner word: the owning fiber's id, plus kWaiters while the waiter list is
// non-empty (so the uncontended unlock is one compare-exchange, me -> 0, and
// fails over to the slow path exactly when someone must be handed the lock).
constexpr std::uint64_t kWaiters = std::uint64_t{1} << 63;

struct PMutex {
    std::atomic<std::uint32_t> lock;
    std::uint32_t depth;             // recursion depth, touched by the owner only
    std::atomic<std::uint64_t> owner;  // fiber id | kWaiters, 0 = free
    int kind;                        // glibc's __kind: PTHREAD_MUTEX_{NORMAL,RECURSIVE,ERRORCHECK,...}
    std::uint32_t unused;
    Waiter* head;
    Waiter* tail;
};
static_assert(sizeof(PMutex) <= sizeof(pthread_mutex_t));
static_assert(offsetof(PMutex, kind) == offsetof(pthread_mutex_t, __data.__kind));

struct PCond {
    std::atomic<std::uint32_t> lock;
    clockid_t clock;  // 0 = CLOCK_REALTIME, the static initializer's
    Waiter* head;
    Waiter* tail;
};
static_assert(sizeof(PCond) <= sizeof(pthread_cond_t));

struct PRwlock {
    std::atomic<std::uint32_t> lock;
    std::int32_t readers;
    std::atomic<std::uint64_t> writer;  // fiber id, 0 = none
    Waiter* head;  // Waiter::kind says whether it wants to read or to write
    Waiter* tail;
};
static_assert(sizeof(PRwlock) <= sizeof(pthread_rwlock_t));

struct PBarrier {
    std::atomic<std::uint32_t> lock;
    std::uint32_t count;
    std::uint32_t arrived;
    std::uint32_t unused;
    Waiter* head;
    Waiter* tail;
};
static_assert(sizeof(PBarrier) <= sizeof(pthread_barrier_t));

PMutex* pm(pthread_mutex_t* m) { return reinterpret_cast<PMutex*>(m); }
PCond* pc(pthread_cond_t* c) { return reinterpret_cast<PCond*>(c); }
PRwlock* prw(pthread_rwlock_t* l) { return reinterpret_cast<PRwlock*>(l); }
PBarrier* pb(pthread_barrier_t* b) { return reinterpret_cast<PBarrier*>(b); }

int type_of(const PMutex* m) { return m->kind & 3; }

// The one attribute an init keeps (the rest of the object starts as the
// all-zero static initializer): `get` from `attr`, or the default without one.
template <class Attr, class V>
V attribute(const Attr* attr, int (*get)(const Attr*, V*), V fallback) {
    if (attr) get(attr, &fallback);
    return fallback;
}

// The calling context's fiber, or its own record on a thread without a hub
// (lock_self.hpp): such threads block in the kernel, as with glibc's locks.
detail::FiberRecord* me() { return lock_self().fiber; }



// --- mutex -------------------------------------------------------------------

int mutex_lock(PMutex* m, Clock::time_point deadline, bool try_only) {
    const LockSelf me = lock_self();
    detail::FiberRecord* self = me.fiber;
    std::uint64_t expected = 0;
    if (m->owner.compare_exchange_strong(expected, self->id, std::memory_order_acquire)) [[likely]] {
        m->depth = 1;
        return 0;
    }
    if ((expected & ~kWaiters) == self->id) {
        switch (type_of(m)) {
            case PTHREAD_MUTEX_RECURSIVE:
                if (m->depth == UINT32_MAX) return EAGAIN;
                ++m->depth;
                return 0;
            case PTHREAD_MUTEX_ERRORCHECK: return EDEADLK;
            default: break;  // a normal mutex relocked by its owner deadlocks, as unpatched
        }
    }
    if (try_only) return EBUSY;
    count_call(Family::Lock);  // contended locks only
    Waiter w(self, WaitKind::PthreadMutex, m);
    w.holder = &m->owner;
    // Take it if free; otherwise announce a waiter in the owner word before
    // linking, so the owner's fast unlock fails and hands over.
    auto taken = [&] {
        std::uint64_t cur = m->owner.load(std::memory_order_relaxed);
        for (;;) {
            if (cur == 0) {
                if (m->owner.compare_exchange_weak(cur, self->id, std::memory_order_acquire)) return true;
                continue;
            }
            if (m->owner.compare_exchange_weak(cur, cur | kWaiters, std::memory_order_relaxed)) return false;
        }
    };
    // A waiter that gives up leaves no announcement for an empty list.
    auto left = [&] {
        if (!m->head) m->owner.fetch_and(~kWaiters, std::memory_order_relaxed);
    };
    WakeReason r = detail::wait_in(*m, w, ParkOptions::uncancellable(deadline), taken, detail::ParkWaiter{}, left);
    if (r != WakeReason::Woken) return ETIMEDOUT;
    m->depth = 1;  // taken, or handed over by the unlocker
    return 0;
}

int mutex_unlock(PMutex* m) {
    detail::FiberRecord* rec = me();
    rec->woken_by_cond = nullptr;
    const std::uint64_t self = rec->id;
    const int type = type_of(m);
    std::uint64_t cur = m->owner.load(std::memory_order_relaxed);
    if ((cur & ~kWaiters) != self) {
        // glibc checks ownership only for these types; a normal mutex is
        // simply released.
        if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) return EPERM;
        if (cur == 0) return 0;
    }
    if (type == PTHREAD_MUTEX_RECURSIVE && --m->depth > 0) return 0;
    if (!(cur & kWaiters) && m->owner.compare_exchange_strong(cur, 0, std::memory_order_release)) [[likely]]
        return 0;
    detail::WakesAfterUnlock wakes;
    SpinGuard g(m->lock);
    // Handed over before the wake is delivered: the woken fiber finds itself
    // the owner.
    Waiter* next = detail::list_wake_one(*m, WakeReason::Woken, wakes);
    m->owner.store(next ? next->fiber->id | (m->head ? kWaiters : 0) : 0, std::memory_order_release);
    return 0;
}

// --- rwlock ------------------------------------------------------------------

bool wants_to_read(const Waiter& w) { return w.kind == detail::WaitKind::PthreadRwlockRead; }

// Caller holds l->lock and has just released: hand the lock on. Reader
// preference, as glibc's default: all waiting readers, else one writer.
void rwlock_grant(PRwlock* l, detail::WakesAfterUnlock& wakes) {
    if (l->writer.load(std::memory_order_relaxed) != 0) return;
    bool readers_waiting = false;
    for (Waiter* w = l->head; w; w = w->next) readers_waiting |= wants_to_read(*w);
    if (readers_waiting) {
        auto woken = detail::list_wake_if(*l, WakeReason::Woken, wakes, wants_to_read);
        l->readers += static_cast<std::int32_t>(woken);
        // Readers whose timeout won the race refuse the lock; if all of them
        // did, a waiting writer is next, or it would wait on a free lock.
        if (woken != 0) return;
    }
    if (l->readers != 0) return;
    Waiter* next = detail::list_wake_one(*l, WakeReason::Woken, wakes);
    l->writer.store(next ? next->fiber->id : 0, std::memory_order_release);
}

int rwlock_lock(PRwlock* l, bool write, Clock::time_point deadline, bool try_only) {
    const LockSelf me = lock_self();
    const std::uint64_t self = me.fiber->id;
    Waiter w(me.fiber, write ? WaitKind::PthreadRwlockWrite : WaitKind::PthreadRwlockRead, l);
    int refused = 0;
    auto over = [&]() -> bool {
        std::uint64_t writer = l->writer.load(std::memory_order_relaxed);
        if (writer == self) {
            refused = EDEADLK;
            return true;
        }
        if (!write && writer == 0) {
            ++l->readers;
            return true;
        }
        if (write && writer == 0 && l->readers == 0) {
            l->writer.store(self, std::memory_order_release);
            return true;
        }
        if (try_only) {
            refused = EBUSY;
            return true;
        }
        if (writer != 0) w.holder = &l->writer;
        return false;
    };
    if (detail::wait_in(*l, w, ParkOptions::uncancellable(deadline), over) != WakeReason::Woken) return ETIMEDOUT;
    return refused;
}

// --- cond --------------------------------------------------------------------

// A cancellation point for thread-fibers (hooks_cancel.hpp): a cancel that
// is pending at entry acts with the mutex held, one that arrives during the
// wait after the mutex is taken again, as glibc does.
int cond_wait(PCond* c, PMutex* m, Clock::time_point deadline) {
    const LockSelf me = lock_self();
    detail::FiberRecord* self = me.fiber;
    if ((m->owner.load(std::memory_order_relaxed) & ~kWaiters) != self->id && type_of(m) == PTHREAD_MUTEX_ERRORCHECK)
        return EPERM;
    const bool cancellable = me.hub && current_cancel_state();
    if (cancellable) cancel_point();
    Waiter w(self, WaitKind::PthreadCond, c);
    // Woken from this wait and waiting again without having released the
    // mutex: the predicate loop found what the signal announced already
    // taken (a thread that kept running, where unpatched the woken thread
    // would have run at once on another CPU). Back to the head of the line,
    // not behind every thread that arrived since.
    w.first_in_line = self->woken_by_cond == c;
    // A recursive mutex is released completely for the wait and restored.
    const std::uint32_t depth = m->depth;
    auto release_and_park = [&](Waiter& linked, const ParkOptions& o) {
        if (type_of(m) == PTHREAD_MUTEX_RECURSIVE) m->depth = 1;
        mutex_unlock(m);
        return detail::park_waiter(linked, o);
    };
    const ParkOptions o =
        cancellable ? ParkOptions::pthread_cancellable(deadline) : ParkOptions::uncancellable(deadline);
    WakeReason r = detail::wait_in(*c, w, o.parks_even_if_due(), detail::NeverDone{}, release_and_park);
    mutex_lock(m, Clock::time_point::max(), false);
    if (type_of(m) == PTHREAD_MUTEX_RECURSIVE) m->depth = depth;
    self->woken_by_cond = r == WakeReason::Woken ? c : nullptr;
    if (r == WakeReason::Cancelled) {
        cancel_point();
        return 0;  // cancellation was disabled meanwhile: a spurious wakeup
    }
    return r == WakeReason::Woken ? 0 : ETIMEDOUT;
}

}  // namespace

extern "C" {

// --- mutex -------------------------------------------------------------------

int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr) noexcept {
    std::memset(m, 0, sizeof *m);
    pm(m)->kind = attribute(attr, pthread_mutexattr_gettype, int{PTHREAD_MUTEX_NORMAL});
    return 0;
}

int pthread_mutex_destroy(pthread_mutex_t* m) noexcept {
    return pm(m)->owner.load(std::memory_order_relaxed) != 0 ? EBUSY : 0;
}

int pthread_mutex_lock(pthread_mutex_t* m) noexcept { return mutex_lock(pm(m), Clock::time_point::max(), false); }
int pthread_mutex_trylock(pthread_mutex_t* m) noexcept { return mutex_lock(pm(m), Clock::time_point::max(), true); }
int pthread_mutex_unlock(pthread_mutex_t* m) noexcept { return mutex_unlock(pm(m)); }

int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) noexcept {
    if (!valid_timespec(abstime)) return EINVAL;
    return mutex_lock(pm(m), deadline_at(CLOCK_REALTIME, abstime), false);
}

int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const timespec* abstime) noexcept {
    if (!valid_timespec(abstime) || !lock_clock(clock)) return EINVAL;
    return mutex_lock(pm(m), deadline_at(clock, abstime), false);
}

int pthread_mutex_consistent(pthread_mutex_t*) noexcept { return EINVAL; }  // robust mutexes are not supported

// --- cond --------------------------------------------------------------------

int pthread_cond_init(pthread_cond_t* c, const pthread_condattr_t* attr) noexcept {
    std::memset(c, 0, sizeof *c);
    pc(c)->clock = attribute(attr, pthread_condattr_getclock, clockid_t{CLOCK_REALTIME});
    return 0;
}

int pthread_cond_destroy(pthread_cond_t* c) noexcept { return pc(c)->head ? EBUSY : 0; }

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
    return cond_wait(pc(c), pm(m), Clock::time_point::max());
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const timespec* abstime) {
    if (!valid_timespec(abstime)) return EINVAL;
    return cond_wait(pc(c), pm(m), deadline_at(pc(c)->clock, abstime));
}

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* abstime) {
    if (!valid_timespec(abstime) || !lock_clock(clock)) return EINVAL;
    return cond_wait(pc(c), pm(m), deadline_at(clock, abstime));
}

int pthread_cond_signal(pthread_cond_t* c) noexcept {
    detail::notify_one(*pc(c));
    return 0;
}

int pthread_cond_broadcast(pthread_cond_t* c) noexcept {
    detail::notify_all(*pc(c));
    return 0;
}

// --- rwlock ------------------------------------------------------------------

int pthread_rwlock_init(pthread_rwlock_t* l, const pthread_rwlockattr_t*) noexcept {
    std::memset(l, 0, sizeof *l);
    return 0;
}
int pthread_rwlock_destroy(pthread_rwlock_t* l) noexcept {
    return (prw(l)->readers || prw(l)->writer.load()) ? EBUSY : 0;
}
int pthread_rwlock_rdlock(pthread_rwlock_t* l) noexcept { return rwlock_lock(prw(l), false, Clock::time_point::max(), false); }
int pthread_rwlock_wrlock(pthread_rwlock_t* l) noexcept { return rwlock_lock(prw(l), true, Clock::time_point::max(), false); }
int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) noexcept { return rwlock_lock(prw(l), false, Clock::time_point::max(), true); }
int pthread_rwlock_trywrlock(pthread_rwlock_t* l) noexcept { return rwlock_lock(prw(l), true, Clock::time_point::max(), true); }
int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const timespec* t) noexcept {
    return valid_timespec(t) ? rwlock_lock(prw(l), false, deadline_at(CLOCK_REALTIME, t), false) : EINVAL;
}
int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const timespec* t) noexcept {
    return valid_timespec(t) ? rwlock_lock(prw(l), true, deadline_at(CLOCK_REALTIME, t), false) : EINVAL;
}
int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock, const timespec* t) noexcept {
    return valid_timespec(t) && lock_clock(clock) ? rwlock_lock(prw(l), false, deadline_at(clock, t), false) : EINVAL;
}
int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock, const timespec* t) noexcept {
    return valid_timespec(t) && lock_clock(clock) ? rwlock_lock(prw(l), true, deadline_at(clock, t), false) : EINVAL;
}

int pthread_rwlock_unlock(pthread_rwlock_t* lock) noexcept {
    PRwlock* l = prw(lock);
    const std::uint64_t self = me()->id;
    detail::WakesAfterUnlock wakes;
    SpinGuard g(l->lock);
    if (l->writer.load(std::memory_order_relaxed) == self) {
        l->writer.store(0, std::memory_order_release);
    } else if (l->readers > 0) {
        --l->readers;
    } else {
        return EPERM;
    }
    rwlock_grant(l, wakes);
    return 0;
}

// --- barrier -----------------------------------------------------------------

int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t*, unsigned count) noexcept {
    if (count == 0) return EINVAL;
    std::memset(b, 0, sizeof *b);
    pb(b)->count = count;
    return 0;
}

int pthread_barrier_destroy(pthread_barrier_t* b) noexcept { return pb(b)->head ? EBUSY : 0; }

int pthread_barrier_wait(pthread_barrier_t* barrier) noexcept {
    PBarrier* b = pb(barrier);
    const LockSelf me = lock_self();
    Waiter w(me.fiber, WaitKind::PthreadBarrier, b);
    detail::WakesAfterUnlock wakes;  // outlives wait_in's lock: delivered after it is released
    bool last = false;
    detail::wait_in(*b, w, ParkOptions::uncancellable(), [&] {
        if (++b->arrived != b->count) return false;
        b->arrived = 0;
        detail::list_wake_all(*b, WakeReason::Woken, wakes);
        return last = true;
    });
    return last ? PTHREAD_BARRIER_SERIAL_THREAD : 0;
}

}  // extern "C"
