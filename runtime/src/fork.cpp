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
//   prepare  pool lock, then registry lock, then the leaf locks (in the
//            order registered; they never nest, and none is held while
//            taking another lock, so taking them last cannot wait on a
//            holder that waits for us). Every critical section that
//            another thread may be in and that the child's hub could need
//            (a close posted to this hub under closing_lock_, a dump
//            request) runs under the registry lock, so holding it excludes
//            them too. The two locks never nest (lock order: hub.hpp), so
//            any fixed order is safe; the shim's own prepare handlers,
//            registered after these, run before them (pthread_atfork runs
//            prepare handlers in reverse), so a shim lock held while taking
//            the registry lock is taken first here too.
//   parent   the same locks released, in reverse.
//            (In the child the leaf locks are simply free: what they guard
//            was consistent when they were taken.)
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
#include "spinlock.hpp"

namespace green::detail {

namespace {

std::atomic<std::uint32_t>* g_leaf_locks[kMaxForkLeafLocks];
std::atomic<int> g_leaf_count{0};

void release_leaf_locks() noexcept {
    for (int i = g_leaf_count.load(std::memory_order_acquire); i-- > 0;) g_leaf_locks[i]->store(0, std::memory_order_release);
}

void fork_prepare() {
    pool_fork_prepare();
    registry_fork_prepare();
    const int n = g_leaf_count.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i) lock_word_acquire(*g_leaf_locks[i]);
}

void fork_parent() {
    release_leaf_locks();
    registry_fork_parent();
    pool_fork_parent();
}

void fork_child() {
    release_leaf_locks();
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

void hold_across_fork(std::atomic<std::uint32_t>* word) noexcept {
    const int i = g_leaf_count.load(std::memory_order_relaxed);
    for (int k = 0; k < i; ++k)
        if (g_leaf_locks[k] == word) return;
    if (i >= kMaxForkLeafLocks) return;
    g_leaf_locks[i] = word;
    g_leaf_count.store(i + 1, std::memory_order_release);
}

}  // namespace green::detail
