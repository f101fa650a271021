// Each module's part in fork(). fork.cpp installs the runtime's one set of
// pthread_atfork handlers and calls these in the order it documents; a
// module with state that must not outlive the parent's threads adds its
// hooks here and to that order.
#pragma once

#include <atomic>
#include <cstdint>

namespace green::detail {

class Hub;

// Once per process, with the first hub.
void install_fork_handlers() noexcept;

// registry.cpp: the registry lock is held across the fork; the child keeps
// only `survivor` (the forking thread's hub, or null).
void registry_fork_prepare() noexcept;
void registry_fork_parent() noexcept;
void registry_fork_child(Hub* survivor) noexcept;
// deadlock.cpp: no hub stuck, no pool job in flight.
void deadlock_fork_child(Hub* survivor) noexcept;
// blocking_pool.cpp: the pool lock is held across the fork; the child's pool
// is empty and starts threads again on demand.
void pool_fork_prepare() noexcept;
void pool_fork_parent() noexcept;
void pool_fork_child() noexcept;

// A leaf lock (a SpinGuard word whose critical sections take no other lock
// of the runtime's or the shim's: a free list, a small table) that a fork
// child may need: held across every fork after the locks above, and free on
// both sides after it. Without this a thread of the parent caught inside one
// of these sections leaves the word set in a child that lacks that thread,
// and the child's first use spins for ever. Each module registers its own
// from a load-time constructor (before any thread exists that could fork);
// at most kMaxForkLeafLocks words.
constexpr int kMaxForkLeafLocks = 16;
void hold_across_fork(std::atomic<std::uint32_t>* word) noexcept;

}  // namespace green::detail
