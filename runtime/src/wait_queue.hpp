// The one way to wait on a list of Waiters, and the wakes that end it (in
// the spirit of Boost.Fiber's wait_queue: suspend_and_wait, notify_one,
// notify_all). Every wait on a locked list of waiters goes through it (the
// runtime's sync primitives and join; the shim's locks, semaphores and futex
// table); only its hooks differ. Fd waits, whose lists belong to one hub's
// thread and take no lock, park directly (io.cpp).
//
//   wait_in:  under the list's lock: `done()` says the wait is already over
//             (a permit taken, the lock free, a mismatch) -> Woken; the wait
//             cannot start (pending cancel, deadline past: the precheck) ->
//             its reason; otherwise link the Waiter. Outside the lock: park
//             (a fiber on its own hub; a plain thread, whose fiber record
//             has no hub, in the kernel). Ended for another reason than
//             Woken: unlink under the lock, unless a waker popped it first
//             (that waker's claim failed and it handed nothing over).
//   notify:   pop and win waiters under the lock; the wakes are delivered
//             once it is released (WakesAfterUnlock), since a woken fiber on
//             another hub may free the object that holds the lock.
//
// Invariants: the Waiter's fiber is set before it is linked (Waiter's
// constructor); a template over the list type (WaitList, or the shim's
// overlays with lock/head/tail inside pthread_mutex_t and friends), inlined
// at each primitive: no allocation, no indirect call.
#pragma once

#include "hub.hpp"
#include "spinlock.hpp"
#include "wait_list.hpp"

namespace green::detail {

// A plain thread's half of the protocol (its waker's is in Hub::schedule):
// blocks in the kernel on w.thread_woken until a waker wins `w` or the
// deadline passes. Only `deadline` of the options applies: nothing can cancel
// or interrupt such a thread.
WakeReason park_thread(Waiter& w, Clock::time_point deadline) noexcept;

// Parks `w`, already linked where its waker will find it, until someone wins
// the race to wake it.
inline WakeReason park_waiter(Waiter& w, const ParkOptions& o) noexcept {
    if (Hub* h = w.fiber->hub) [[likely]]
        return h->park(w, o);
    return park_thread(w, o.deadline);
}

// The `park` hook of wait_in: what to do once `w` is linked and the lock
// released. A primitive passes its own to act in that gap (a condition
// variable releases its mutex) or around the park.
struct ParkWaiter {
    WakeReason operator()(Waiter& w, const ParkOptions& o) const noexcept { return park_waiter(w, o); }
};

// The `left` hook: a waiter gave up (precheck, or ended by anything but its
// waker) and is off the list; runs under the lock. A primitive that keeps a
// "someone waits" flag beside the list clears it here.
struct NothingLeft {
    void operator()() const noexcept {}
};

// `done` for a wait that always parks (a condition variable).
struct NeverDone {
    constexpr bool operator()() const noexcept { return false; }
};

// Hub::precheck for the Waiter's own context. Waiting: the wait may start.
// A plain thread, and a wait that no cancel or scope can end (the options
// are constants at each call site, so this folds), have only the deadline.
inline WakeReason precheck(const Waiter& w, const ParkOptions& o) noexcept {
    if (!o.precheck) return WakeReason::Waiting;
    if (o.ends_on_cancel || o.bounded_by_scope)
        if (Hub* h = w.fiber->hub) [[likely]]
            return h->precheck(o);
    bool due = o.deadline != Clock::time_point::max() && Clock::now() >= o.deadline;
    return due ? WakeReason::TimedOut : WakeReason::Waiting;
}

// Returns Woken when `done()` held under the lock or a waker handed over
// what was waited for; otherwise why the wait ended.
template <class L, class Done, class Park = ParkWaiter, class Left = NothingLeft>
[[gnu::always_inline]] inline WakeReason wait_in(L& l, Waiter& w, const ParkOptions& o, Done&& done, Park&& park = {},
                                                 Left&& left = {}) {
    {
        SpinGuard g(l.lock);
        if (done()) return WakeReason::Woken;
        if (WakeReason r = precheck(w, o); r != WakeReason::Waiting) {
            left();
            return r;
        }
        if (w.first_in_line) [[unlikely]] list_push_front(l, w);
        else list_push_back(l, w);
    }
    if (Hub* h = w.fiber->hub) HubCounters::bump(h->counters.sync_waits);
    WakeReason r = park(w, o);
    if (r != WakeReason::Woken) {
        SpinGuard g(l.lock);
        if (w.list) {
            list_unlink(l, w);
            left();
        }
    }
    return r;
}

// Wakes the oldest waiter still waiting; false if there was none.
template <class L>
[[gnu::always_inline]] inline bool notify_one(L& l, WakeReason reason = WakeReason::Woken) noexcept {
    WakesAfterUnlock wakes;
    SpinGuard g(l.lock);
    return list_wake_one(l, reason, wakes) != nullptr;
}

template <class L>
[[gnu::always_inline]] inline void notify_all(L& l, WakeReason reason = WakeReason::Woken) noexcept {
    WakesAfterUnlock wakes;
    SpinGuard g(l.lock);
    list_wake_all(l, reason, wakes);
}

}  // namespace green::detail
