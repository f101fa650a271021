// The hub registry: every hub whose thread is alive, and the counters of
// hubs whose thread has ended.
//
// Anything that must reach every hub (a close of an fd some hub waits on, the
// monitor, the dump, the deadlock detector) walks this list under the
// registry lock. Invariants: a hub is in the list from its creation until its
// thread ends (hub_registry_remove), and is deleted only after it left, so a
// walk under the lock never meets a freed hub; a hub's counters are added to
// the retired totals in the same critical section that removes it, so
// counters_snapshot() never counts a hub twice or loses one.
#include "registry.hpp"

#include <vector>

#include "fork.hpp"
#include "hub.hpp"
#include "spinlock.hpp"

namespace green::detail {

namespace {

std::atomic<std::uint32_t> g_lock{0};
// Guarded by g_lock. Never freed: hub threads may end after static
// destructors have run.
std::vector<Hub*>* g_hubs = nullptr;
// Counters of hubs whose thread ended, so totals survive them (GREEN_STATS
// prints after the main thread's thread_local destructors have run).
Stats g_retired{};  // guarded by g_lock

void add_counters(const Hub* h, Stats& out) noexcept {
    out.fibers_spawned += h->counters.spawned.load(std::memory_order_relaxed);
    out.switches += h->counters.switches.load(std::memory_order_relaxed);
    out.fd_waits += h->counters.fd_waits.load(std::memory_order_relaxed);
    out.timer_waits += h->counters.timer_waits.load(std::memory_order_relaxed);
    out.sync_waits += h->counters.sync_waits.load(std::memory_order_relaxed);
    out.fibers_moved += h->counters.moved_in.load(std::memory_order_relaxed);
    ++out.hubs;
}

}  // namespace

std::atomic<std::uint32_t>& registry_lock() noexcept { return g_lock; }

std::span<Hub* const> registered_hubs_locked() noexcept {
    return g_hubs ? std::span<Hub* const>(*g_hubs) : std::span<Hub* const>();
}

void hub_registry_add(Hub* h) {
    SpinGuard g(g_lock);
    if (!g_hubs) g_hubs = new std::vector<Hub*>();
    g_hubs->push_back(h);
    h->registered = true;
}

void hub_registry_remove(Hub* h) {
    SpinGuard g(g_lock);
    if (!h->registered) return;
    add_counters(h, g_retired);
    h->registered = false;
    hub_unstick_registry_locked(h);  // a hub that is gone no longer counts as stuck
    std::erase(*g_hubs, h);
}

void for_each_hub(void (*fn)(Hub*, void*), void* arg) {
    SpinGuard g(g_lock);
    if (!g_hubs) return;
    for (Hub* h : *g_hubs) fn(h, arg);
}

Stats counters_snapshot() noexcept {
    SpinGuard g(g_lock);
    Stats s = g_retired;
    if (g_hubs)
        for (Hub* h : *g_hubs) add_counters(h, s);
    return s;
}

// fork(): the lock is held across the fork so the child never inherits it
// held by a thread that no longer exists; in the child only the forking
// thread's hub remains.
void registry_fork_prepare() noexcept { lock_word_acquire(g_lock); }
void registry_fork_parent() noexcept { g_lock.store(0, std::memory_order_release); }
void registry_fork_child(Hub* survivor) noexcept {
    if (g_hubs) {
        for (Hub* h : *g_hubs) h->registered = (h == survivor);
        g_hubs->clear();
        if (survivor) g_hubs->push_back(survivor);
    }
    g_lock.store(0, std::memory_order_release);
}

}  // namespace green::detail
