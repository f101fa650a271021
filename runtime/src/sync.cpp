// Event, Semaphore, Mutex, RecursiveMutex, CondVar, WaitGroup.
//
// All follow one pattern: under the primitive's spinlock, either take what is
// wanted or link a Waiter; then park outside the lock. A waker pops a waiter
// under the same lock and wins it with Hub::wake(); ownership (a permit, the
// mutex) is handed to the woken waiter directly, so a wake is never lost to
// a fiber that barges in meanwhile. A waiter that woke for another reason
// (timeout, cancel, deadline) unlinks itself under the lock if still linked;
// if a waker had already popped it, that waker's wake failed and it moved on
// to the next waiter, so nothing was handed to the departed one.
#include <green/sync.hpp>

#include <cerrno>
#include <system_error>

#include "hub.hpp"
#include "os.hpp"
#include "spinlock.hpp"
#include "wait_list.hpp"

namespace green {

using detail::Hub;
using detail::ParkOptions;
using detail::SpinGuard;
using detail::Waiter;
using detail::WakeReason;

namespace {

// Links a waiter on `list` unless `ready()` (evaluated under the lock) says
// the wait is already satisfied, parks, and cleans up. Returns Woken when
// satisfied (immediately or by a waker).
template <class Ready>
WakeReason wait_on(detail::WaitList& list, detail::WaitKind kind, const void* object, const ParkOptions& o,
                   Ready&& ready, const std::atomic<std::uint64_t>* holder = nullptr) {
    Hub& h = Hub::current();
    if (WakeReason r = h.precheck(o); r != WakeReason::Waiting) {
        SpinGuard g(list.lock);
        if (!ready()) return r;
        // Satisfied without suspending, so this was no suspension point.
        // precheck() consumed a pending cancel; put it back for the next
        // real suspension point. (It was lost: a fiber cancelled while a
        // Semaphore it acquired had permits never saw the cancel.)
        if (r == WakeReason::Cancelled) h.running()->cancel_requested.store(true, std::memory_order_release);
        return WakeReason::Woken;
    }
    Waiter me(h.running(), kind, object);
    me.holder = holder;
    {
        SpinGuard g(list.lock);
        if (ready()) return WakeReason::Woken;
        detail::list_push_back(list, me);
    }
    detail::HubCounters::bump(h.counters.sync_waits);
    WakeReason r = h.park(me, o);
    if (r != WakeReason::Woken) {
        SpinGuard g(list.lock);
        if (me.list) detail::list_unlink(list, me);
    }
    return r;
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
    detail::WakesAfterUnlock wakes;
    SpinGuard g(waiters_.lock);
    detail::list_wake_all(waiters_, WakeReason::Woken, wakes);
}

void Event::reset() noexcept { set_.store(false, std::memory_order_release); }

void Event::wait() { wait_until(Clock::time_point::max()); }

bool Event::wait_until(Clock::time_point deadline) {
    if (is_set()) return true;
    return timed_outcome(wait_on(waiters_, detail::WaitKind::Event, this, ParkOptions::cancellable(deadline), [&] { return is_set(); }));
}

// --- Semaphore ---------------------------------------------------------------

void Semaphore::acquire() { acquire_until(Clock::time_point::max()); }

bool Semaphore::try_acquire() noexcept {
    SpinGuard g(waiters_.lock);
    if (count_ == 0) return false;
    --count_;
    return true;
}

bool Semaphore::acquire_until(Clock::time_point deadline) {
    // A woken waiter was handed its permit by release(); `ready` takes one
    // only when it is there at the time of asking.
    return timed_outcome(wait_on(waiters_, detail::WaitKind::Semaphore, this, ParkOptions::cancellable(deadline), [&] {
        if (count_ == 0) return false;
        --count_;
        return true;
    }));
}

void Semaphore::release(std::size_t n) noexcept {
    detail::WakesAfterUnlock wakes;
    SpinGuard g(waiters_.lock);
    for (; n > 0; --n) {
        if (!detail::list_wake_one(waiters_, WakeReason::Woken, wakes)) ++count_;
    }
}

std::size_t Semaphore::value() const noexcept {
    SpinGuard g(const_cast<detail::WaitList&>(waiters_).lock);
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
    WakeReason r = wait_on(waiters_, detail::WaitKind::Mutex, this, ParkOptions::uncancellable(deadline), [&] {
        std::uint64_t free = 0;
        return owner_.compare_exchange_strong(free, me, std::memory_order_acquire);
    }, &owner_);
    return r == WakeReason::Woken;  // handed over by unlock(): owner_ is already `me`
}

void Mutex::unlock() {
    const std::uint64_t me = current_fiber_id();
    if (owner_.load(std::memory_order_relaxed) != me)
        throw std::system_error(EPERM, std::generic_category(), "green::Mutex unlocked by a fiber that does not own it");
    detail::WakesAfterUnlock wakes;
    SpinGuard g(waiters_.lock);
    while (Waiter* w = detail::list_pop_front(waiters_)) {
        owner_.store(w->fiber->id, std::memory_order_release);  // hand over before the wake is visible
        if (wakes.claim(*w, WakeReason::Woken)) return;
    }
    owner_.store(0, std::memory_order_release);
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
    ParkOptions o = ParkOptions::cancellable(deadline);
    if (WakeReason r = h.precheck(o); r != WakeReason::Waiting) return timed_outcome(r);
    Waiter me(h.running(), detail::WaitKind::CondVar, this);
    {
        SpinGuard g(waiters_.lock);
        detail::list_push_back(waiters_, me);
    }
    m.unlock();
    detail::HubCounters::bump(h.counters.sync_waits);
    WakeReason r = h.park(me, o);
    if (r != WakeReason::Woken) {
        SpinGuard g(waiters_.lock);
        if (me.list) detail::list_unlink(waiters_, me);
    }
    m.lock();  // re-acquired before any exception leaves, as POSIX does
    return timed_outcome(r);
}

void CondVar::notify_one() noexcept {
    detail::WakesAfterUnlock wakes;
    SpinGuard g(waiters_.lock);
    detail::list_wake_one(waiters_, WakeReason::Woken, wakes);
}

void CondVar::notify_all() noexcept {
    detail::WakesAfterUnlock wakes;
    SpinGuard g(waiters_.lock);
    detail::list_wake_all(waiters_, WakeReason::Woken, wakes);
}

// --- WaitGroup ---------------------------------------------------------------

void WaitGroup::add(std::ptrdiff_t n) noexcept {
    std::ptrdiff_t now = count_.fetch_add(n, std::memory_order_acq_rel) + n;
    if (now < 0) {
        detail::os::write_stderr("green: WaitGroup counter went negative (done() without add())\n");
        std::abort();
    }
    if (now == 0) {
        detail::WakesAfterUnlock wakes;
        SpinGuard g(waiters_.lock);
        detail::list_wake_all(waiters_, WakeReason::Woken, wakes);
    }
}

void WaitGroup::wait() { wait_until(Clock::time_point::max()); }

bool WaitGroup::wait_until(Clock::time_point deadline) {
    if (count() == 0) return true;
    return timed_outcome(
        wait_on(waiters_, detail::WaitKind::WaitGroup, this, ParkOptions::cancellable(deadline), [&] { return count() == 0; }));
}

}  // namespace green
