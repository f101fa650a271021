// Event, Semaphore, Mutex, RecursiveMutex, CondVar, WaitGroup.
//
// All wait through wait_in (wait_queue.hpp): under the primitive's spinlock,
// either take what is wanted or link a Waiter; then park outside the lock. A
// waker pops a waiter under the same lock and wins it; ownership (a permit,
// the mutex) is handed to the woken waiter directly, so a wake is never lost
// to a fiber that barges in meanwhile. A wait that is satisfied without
// suspending is no suspension point: a pending cancel stays pending.
#include <green/sync.hpp>

#include <cerrno>
#include <system_error>

#include "hub.hpp"
#include "os.hpp"
#include "spinlock.hpp"
#include "wait_queue.hpp"

namespace green {

using detail::Hub;
using detail::ParkOptions;
using detail::Waiter;
using detail::WaitKind;
using detail::WakeReason;

namespace {

// Waits on `list` for the calling fiber until `done()` (evaluated under the
// list's lock) holds or a waker hands over what was waited for (Woken).
template <class Done>
WakeReason wait_on(detail::WaitList& list, WaitKind kind, const void* object, const ParkOptions& o, Done&& done,
                   const std::atomic<std::uint64_t>* holder = nullptr) {
    Waiter me(Hub::current().running(), kind, object);
    me.holder = holder;
    return detail::wait_in(list, me, o, done);
}

bool timed_outcome(WakeReason r) {
    if (r == WakeReason::Woken) return true;
    if (r == WakeReason::TimedOut) return false;
    detail::throw_for(r);
}

std::uint64_t current_fiber_id() { return Hub::current().running()->id; }

}  // namespace

// --- Event -------------------------------------------------------------------

void Event::set() noexcept {
    set_.store(true, std::memory_order_release);
    detail::notify_all(waiters_);
}

void Event::reset() noexcept { set_.store(false, std::memory_order_release); }

void Event::wait() { wait_until(Clock::time_point::max()); }

bool Event::wait_until(Clock::time_point deadline) {
    if (is_set()) return true;
    return timed_outcome(
        wait_on(waiters_, WaitKind::Event, this, ParkOptions::cancellable(deadline), [&] { return is_set(); }));
}

// --- Semaphore ---------------------------------------------------------------

void Semaphore::acquire() { acquire_until(Clock::time_point::max()); }

bool Semaphore::try_acquire() noexcept {
    detail::SpinGuard g(waiters_.lock);
    if (count_ == 0) return false;
    --count_;
    return true;
}

bool Semaphore::acquire_until(Clock::time_point deadline) {
    // A woken waiter was handed its permit by release(); `done` takes one
    // only when it is there at the time of asking.
    return timed_outcome(wait_on(waiters_, WaitKind::Semaphore, this, ParkOptions::cancellable(deadline), [&] {
        if (count_ == 0) return false;
        --count_;
        return true;
    }));
}

void Semaphore::release(std::size_t n) noexcept {
    detail::WakesAfterUnlock wakes;
    detail::SpinGuard g(waiters_.lock);
    for (; n > 0; --n) {
        if (!detail::list_wake_one(waiters_, WakeReason::Woken, wakes)) ++count_;
    }
}

std::size_t Semaphore::value() const noexcept {
    detail::SpinGuard g(const_cast<detail::WaitList&>(waiters_).lock);
    return count_;
}

// --- Mutex -------------------------------------------------------------------

void Mutex::lock() { lock_until(Clock::time_point::max(), false); }

bool Mutex::try_lock() noexcept {
    std::uint64_t expected = 0;
    return owner_.compare_exchange_strong(expected, current_fiber_id(), std::memory_order_acquire);
}

bool Mutex::try_lock_until(Clock::time_point deadline) { return lock_until(deadline, true); }

bool Mutex::lock_until(Clock::time_point deadline, bool) {
    const std::uint64_t me = current_fiber_id();
    std::uint64_t expected = 0;
    if (owner_.compare_exchange_strong(expected, me, std::memory_order_acquire)) return true;
    if (expected == me) throw std::system_error(EDEADLK, std::generic_category(), "green::Mutex already owned by this fiber");
    // Like pthread_mutex_lock: not a cancellation point, and not bounded by
    // an enclosing green::Deadline (only by its own timeout, if any).
    WakeReason r = wait_on(waiters_, WaitKind::Mutex, this, ParkOptions::uncancellable(deadline), [&] {
        std::uint64_t free = 0;
        return owner_.compare_exchange_strong(free, me, std::memory_order_acquire);
    }, &owner_);
    return r == WakeReason::Woken;  // handed over by unlock(): owner_ is already `me`
}

void Mutex::unlock() {
    detail::FiberRecord* self = Hub::current().running();
    self->woken_by_cond = nullptr;  // see CondVar::wait_until
    const std::uint64_t me = self->id;
    if (owner_.load(std::memory_order_relaxed) != me)
        throw std::system_error(EPERM, std::generic_category(), "green::Mutex unlocked by a fiber that does not own it");
    detail::WakesAfterUnlock wakes;
    detail::SpinGuard g(waiters_.lock);
    // Handed over before the wake is delivered: the woken fiber finds itself
    // the owner, and owner_ is never 0 in between for a barging try_lock.
    Waiter* next = detail::list_wake_one(waiters_, WakeReason::Woken, wakes);
    owner_.store(next ? next->fiber->id : 0, std::memory_order_release);
}

// --- RecursiveMutex ----------------------------------------------------------

void RecursiveMutex::lock() {
    if (inner_.owner() == current_fiber_id()) {
        ++depth_;
        return;
    }
    inner_.lock();
    depth_ = 1;
}

bool RecursiveMutex::try_lock() noexcept {
    if (inner_.owner() == current_fiber_id()) {
        ++depth_;
        return true;
    }
    if (!inner_.try_lock()) return false;
    depth_ = 1;
    return true;
}

bool RecursiveMutex::try_lock_until(Clock::time_point deadline) {
    if (inner_.owner() == current_fiber_id()) {
        ++depth_;
        return true;
    }
    if (!inner_.try_lock_until(deadline)) return false;
    depth_ = 1;
    return true;
}

void RecursiveMutex::unlock() {
    if (inner_.owner() != current_fiber_id())
        throw std::system_error(EPERM, std::generic_category(), "green::RecursiveMutex unlocked by a non-owner");
    if (--depth_ == 0) inner_.unlock();
}

// --- CondVar -----------------------------------------------------------------

void CondVar::wait(Mutex& m) { wait_until(m, Clock::time_point::max()); }

bool CondVar::wait_until(Mutex& m, Clock::time_point deadline) {
    Hub& h = Hub::current();
    // Refuse a caller that does not own `m` before linking anything: the
    // m.unlock() below would throw EPERM with our Waiter still linked, and
    // that dangling Waiter (its frame gone) made a later notify crash or be
    // lost.
    if (m.owner() != h.running()->id)
        throw std::system_error(EPERM, std::generic_category(), "green::CondVar wait without owning the mutex");
    Waiter me(h.running(), WaitKind::CondVar, this);
    // Woken from this condvar and waiting on it again without having
    // unlocked a mutex in between: the predicate found what the notify
    // announced already taken (its notifier, running on, took it back before
    // this fiber ran). Back to the head of the line, or a pool of resources
    // under load overtakes some of its callers again and again.
    me.first_in_line = me.fiber->woken_by_cond == this;
    // Linked before the mutex is released, so a notify made under it after
    // this wait began finds this waiter. A wait that cannot start (precheck)
    // never releases it.
    bool released = false;
    WakeReason r = detail::wait_in(waiters_, me, ParkOptions::cancellable(deadline), detail::NeverDone{},
                                   [&](Waiter& w, const ParkOptions& o) {
                                       m.unlock();
                                       released = true;
                                       return detail::park_waiter(w, o);
                                   });
    if (released) m.lock();  // re-acquired before any exception leaves, as POSIX does
    me.fiber->woken_by_cond = r == WakeReason::Woken ? this : nullptr;
    return timed_outcome(r);
}

void CondVar::notify_one() noexcept { detail::notify_one(waiters_); }

void CondVar::notify_all() noexcept { detail::notify_all(waiters_); }

// --- WaitGroup ---------------------------------------------------------------

void WaitGroup::add(std::ptrdiff_t n) noexcept {
    std::ptrdiff_t now = count_.fetch_add(n, std::memory_order_acq_rel) + n;
    if (now < 0) {
        detail::os::write_stderr("green: WaitGroup counter went negative (done() without add())\n");
        std::abort();
    }
    if (now == 0) detail::notify_all(waiters_);
}

void WaitGroup::wait() { wait_until(Clock::time_point::max()); }

bool WaitGroup::wait_until(Clock::time_point deadline) {
    if (count() == 0) return true;
    return timed_outcome(
        wait_on(waiters_, WaitKind::WaitGroup, this, ParkOptions::cancellable(deadline), [&] { return count() == 0; }));
}

}  // namespace green
