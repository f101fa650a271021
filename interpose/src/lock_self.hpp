// Who is taking a lock: a fiber, or a thread the shim does not own.
//
// The shim's locks (mutexes, condvars, rwlocks, barriers, semaphores, the
// fiber futex table, pthread_once) are shared by fibers and by threads that
// have no hub: threads started before the shim was ready or behind it (libc's
// own pthread_create or clone: jemalloc's background threads, the blocking
// pool, the hub monitor), and a hub's own scheduler (libev callbacks, the
// runtime's allocations under a program's allocator). Such a caller never
// gets a hub and never suspends: it is identified by a per-thread record
// whose hub is null and blocks in the kernel (the runtime's wait queue parks
// such a Waiter with park_thread), exactly like a plain pthread lock. Creating a hub there would allocate inside the program's allocator
// (jemalloc's first malloc takes a pthread mutex) and give a thread that
// cannot run fibers an event loop it never serves.
//
// Invariants: the per-thread record is trivially destructible TLS (no
// allocation, no thread-exit registration, usable before any constructor);
// its id lies above every fiber id (bit 62 set; bit 63 is the mutex's
// waiters flag).
#pragma once

#include "fiber_record.hpp"
#include "hub.hpp"

namespace green::interpose {

struct LockSelf {
    detail::Hub* hub;             // null: an OS thread that blocks in the kernel
    detail::FiberRecord* fiber;   // the fiber, or the thread's own record
};

// Never creates a hub.
LockSelf lock_self() noexcept;

}  // namespace green::interpose
