// Each module's part in fork(). fork.cpp installs the runtime's one set of
// pthread_atfork handlers and calls these in the order it documents; a
// module with state that must not outlive the parent's threads adds its
// hooks here and to that order.
#pragma once

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

}  // namespace green::detail
