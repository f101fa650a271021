// fork() in a process with hubs: the runtime's one set of atfork handlers,
// and the order in which each module takes part.
//
// Unpatched, the child of fork() has only the thread that called it. Under
// green it has only the fiber that called it: that fiber's hub lives on,
// every other fiber is abandoned (never scheduled again, its memory left as
// it was), and the runtime's other threads (hub threads, pool, monitor, dump,
// the shim's balancer) do not exist there.
//
// A spinlock some other thread holds at the fork would stay held in the
// child for good, so each process-wide lock a child may need is taken before
// the fork and released on both sides.
//
//   prepare  pool lock, then registry lock. Every critical section that
//            another thread may be in and that the child's hub could need
//            (a close posted to this hub under closing_lock_, a dump
//            request) runs under the registry lock, so holding it excludes
//            them too. The two locks never nest (lock order: hub.hpp), so
//            any fixed order is safe; the shim's own prepare handlers,
//            registered after these, run before them (pthread_atfork runs
//            prepare handlers in reverse), so a shim lock held while taking
//            the registry lock is taken first here too.
//   parent   the same locks released, in reverse.
//   child    only this thread runs, so the order matters only through what
//            each step reads: the registry first (the survivor alone stays
//            registered), then the deadlock detector (its stuck count is
//            over registered hubs), then the pool (its threads and jobs are
//            gone), and the surviving hub last (its queues and watchers,
//            which nothing above reads). The shim's child handlers run after
//            all of these and find the runtime consistent.
#include "fork.hpp"

#include <pthread.h>

#include <atomic>

#include "hub.hpp"

namespace green::detail {

namespace {

void fork_prepare() {
    pool_fork_prepare();
    registry_fork_prepare();
}

void fork_parent() {
    registry_fork_parent();
    pool_fork_parent();
}

void fork_child() {
    Hub* survivor = Hub::current_if_any();
    registry_fork_child(survivor);
    deadlock_fork_child(survivor);
    pool_fork_child();
    if (survivor) survivor->after_fork_in_child();
}

}  // namespace

void install_fork_handlers() noexcept {
    static std::atomic<bool> installed{false};
    if (!installed.exchange(true)) pthread_atfork(fork_prepare, fork_parent, fork_child);
}

}  // namespace green::detail
