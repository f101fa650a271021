// Linking Waiters into a WaitList. Callers hold the list's lock (SpinGuard on
// list.lock) unless the list is private to one hub's thread (fd waiters).
// `w.list` is non-null exactly while `w` is linked, which is how a fiber
// that woke for another reason (timeout, cancel) knows it must unlink itself.
#pragma once

#include <green/sync.hpp>

#include "fiber_record.hpp"

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

// Pops waiters until one accepts `reason` (a waiter that already timed out or
// was cancelled refuses). Returns the winner, or null if none accepted.
template <class L>
inline Waiter* list_wake_one(L& l, WakeReason reason);

}  // namespace green::detail

#include "hub.hpp"

namespace green::detail {

template <class L>
inline Waiter* list_wake_one(L& l, WakeReason reason) {
    while (Waiter* w = list_pop_front(l)) {
        if (Hub::wake(*w, reason)) return w;
    }
    return nullptr;
}

template <class L>
inline void list_wake_all(L& l, WakeReason reason) noexcept {
    while (Waiter* w = list_pop_front(l)) Hub::wake(*w, reason);
}

}  // namespace green::detail
