// Linking Waiters into a WaitList. Callers hold the list's lock (SpinGuard on
// list.lock) unless the list is private to one hub's thread (fd waiters).
// `w.list` is non-null exactly while `w` is linked, which is how a fiber
// that woke for another reason (timeout, cancel) knows it must unlink itself.
#pragma once

#include <green/sync.hpp>

#include "fiber_record.hpp"

#include <cstddef>
#include <cstdint>

namespace green::detail {

// Any list type with `Waiter* head, *tail` works: WaitList, and the shim's
// overlays inside pthread_mutex_t and friends.
template <class L>
inline void list_push_back(L& l, Waiter& w) noexcept {
    w.list = &l;
    w.next = nullptr;
    w.prev = l.tail;
    if (l.tail) l.tail->next = &w;
    else l.head = &w;
    l.tail = &w;
}

template <class L>
inline void list_push_front(L& l, Waiter& w) noexcept {
    w.list = &l;
    w.prev = nullptr;
    w.next = l.head;
    if (l.head) l.head->prev = &w;
    else l.tail = &w;
    l.head = &w;
}

template <class L>
inline void list_unlink(L& l, Waiter& w) noexcept {
    if (w.prev) w.prev->next = w.next;
    else l.head = w.next;
    if (w.next) w.next->prev = w.prev;
    else l.tail = w.prev;
    w.next = w.prev = nullptr;
    w.list = nullptr;
}

template <class L>
inline Waiter* list_pop_front(L& l) noexcept {
    Waiter* w = l.head;
    if (w) list_unlink(l, *w);
    return w;
}

class WakesAfterUnlock;

}  // namespace green::detail

#include "hub.hpp"

namespace green::detail {

// Wakes decided under a lock, delivered once the lock is released. A fiber
// woken on another hub may run at once and free the object that holds the
// lock (a mutex inside a reference-counted object, a condition variable the
// woken thread destroys, as POSIX allows), so the waker must not touch that
// lock, not even to release it, after a wake is delivered. Declare it before
// the SpinGuard: locals are destroyed in reverse order, so the lock is
// released first and the wakes delivered after.
class WakesAfterUnlock {
public:
    WakesAfterUnlock() = default;
    WakesAfterUnlock(const WakesAfterUnlock&) = delete;
    WakesAfterUnlock& operator=(const WakesAfterUnlock&) = delete;
    ~WakesAfterUnlock() {
        for (Waiter* w = head_; w;) {
            Waiter* next = w->next;  // read first: once scheduled, w may be gone
            Hub::schedule(*w);
            w = next;
        }
    }
    // Wins `w` (already unlinked from its list) for `reason`; false if a
    // timeout or cancel won it first.
    bool claim(Waiter& w, WakeReason reason) noexcept {
        if (!Hub::claim(w, reason)) return false;
        w.next = nullptr;
        if (tail_) tail_->next = &w;
        else head_ = &w;
        tail_ = &w;
        return true;
    }

private:
    Waiter* head_ = nullptr;
    Waiter* tail_ = nullptr;
};

// Pops waiters until one accepts `reason` (a waiter that already timed out or
// was cancelled refuses). Returns the winner, or null if none accepted.
template <class L>
inline Waiter* list_wake_one(L& l, WakeReason reason, WakesAfterUnlock& wakes) noexcept {
    while (Waiter* w = list_pop_front(l)) {
        if (wakes.claim(*w, reason)) return w;
    }
    return nullptr;
}

template <class L>
inline void list_wake_all(L& l, WakeReason reason, WakesAfterUnlock& wakes) noexcept {
    while (Waiter* w = list_pop_front(l)) wakes.claim(*w, reason);
}

// Wakes the waiters `match` accepts, oldest first, until `max` of them took
// the wake; the others stay linked. Returns how many took it.
template <class L, class Match>
inline std::size_t list_wake_if(L& l, WakeReason reason, WakesAfterUnlock& wakes, Match&& match,
                                std::size_t max = SIZE_MAX) noexcept {
    std::size_t woken = 0;
    for (Waiter* w = l.head; w && woken < max;) {
        Waiter* next = w->next;
        if (match(static_cast<const Waiter&>(*w))) {
            list_unlink(l, *w);
            if (wakes.claim(*w, reason)) ++woken;
        }
        w = next;
    }
    return woken;
}

}  // namespace green::detail
