// Placement of new thread-fibers over the shim's hubs by load (see
// placement.hpp for why it matters).
//
// Power of two choices: two distinct hubs drawn at random, the less loaded one
// wins. Load is the number of thread-fibers placed on a hub and not yet ended.
// On a tie the hub that is not the creator's wins: the creator (typically an
// accept loop) has its own work on its hub. main() itself is not counted: an
// accepting or joining main is parked nearly always, and counting it would
// leave main's hub one connection short, which with few connections (a
// server with 4 keep-alive clients on 2 hubs) is the difference between 2/2
// and 1/3. Sampling two hubs instead of all keeps
// the cost flat in the hub count and, with many creators, avoids them all
// piling onto the one hub that was least loaded a moment ago; the expected
// largest imbalance stays O(log log n).
//
// A hub is *busy* when its progress counter (switches + loop turns) has not
// moved and its thread has burnt kBusyCpu of CPU since we first saw it stand
// still outside its event loop: one fiber is computing without yielding, and
// whatever is placed there waits until it does. A busy hub loses against any
// hub that is not. CPU time, not wall time, so that a hub thread the kernel
// merely preempted (common on a loaded machine) is not mistaken for one.
//
// Invariants: a slot's `live` goes up only here and down only when a fiber
// counted on it ends or fails to start, so it never drifts. The sampling
// fields are hints written racily by whichever thread places; a torn or stale
// sample can only cost one unbalanced choice, never correctness (placement
// only picks among live hubs). The caller's own hub is never busy to itself:
// its running fiber is the creator, which will yield. After fork() the child
// places everything on its one surviving hub.
#include "placement.hpp"

#include "hubs.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "deadlines.hpp"
#include "hub.hpp"

namespace green::interpose {

namespace {

constexpr std::int64_t kBusyCpuNs = 2'000'000;  // a fiber running 2 ms without a switch
constexpr unsigned kMaxSlots = 64;               // GREEN_HUBS' upper bound

struct alignas(64) Slot {
    detail::Hub* hub = nullptr;
    std::atomic<long> live{0};
    std::atomic<std::uint64_t> seen_progress{~0ull};
    std::atomic<std::int64_t> seen_wall_ns{0};   // when the CPU baseline was taken
    std::atomic<std::int64_t> seen_cpu_ns{-1};   // hub thread's CPU time then; -1: none yet
    std::atomic<bool> busy{false};
};

Slot g_slots[kMaxSlots];
std::atomic<unsigned> g_count{0};
// Slots new threads may go to: all of them, unless hubs are adaptive
// (balance.cpp), which starts with one and adds more as they pay.
std::atomic<unsigned> g_active{kMaxSlots};
thread_local int tls_slot __attribute__((tls_model("initial-exec"))) = -1;
thread_local std::uint64_t tls_rng __attribute__((tls_model("initial-exec"))) = 0;

std::uint64_t next_random() noexcept {
    std::uint64_t x = tls_rng;
    if (x == 0) x = static_cast<std::uint64_t>(syscall(SYS_gettid)) * 0x9E3779B97F4A7C15ull | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    tls_rng = x;
    return x;
}

bool busy(Slot& s, const detail::Hub* caller) noexcept {
    detail::Hub* h = s.hub;
    if (h == caller || h->waiting_for_events()) return false;
    std::uint64_t p = h->progress();
    if (p != s.seen_progress.load(std::memory_order_relaxed)) {
        s.seen_progress.store(p, std::memory_order_relaxed);
        s.seen_cpu_ns.store(-1, std::memory_order_relaxed);
        s.busy.store(false, std::memory_order_relaxed);
        return false;
    }
    if (s.busy.load(std::memory_order_relaxed)) return true;
    // Standing still: take a CPU baseline, then look again no sooner than
    // kBusyCpu of wall time later (CPU time cannot have grown more), so a
    // stalled hub costs at most one clock syscall per kBusyCpu.
    std::int64_t now = monotonic_ns();
    std::int64_t base = s.seen_cpu_ns.load(std::memory_order_relaxed);
    if (base < 0) {
        s.seen_cpu_ns.store(thread_cpu_ns(h->tid()), std::memory_order_relaxed);
        s.seen_wall_ns.store(now, std::memory_order_relaxed);
        return false;
    }
    if (now - s.seen_wall_ns.load(std::memory_order_relaxed) < kBusyCpuNs) return false;
    std::int64_t cpu = thread_cpu_ns(h->tid());
    if (cpu >= 0 && cpu - base >= kBusyCpuNs && h->progress() == p) {
        s.busy.store(true, std::memory_order_relaxed);
        return true;
    }
    s.seen_wall_ns.store(now, std::memory_order_relaxed);
    return false;
}

// Does `b` beat `a`?
bool better(Slot& a, bool a_busy, Slot& b, bool b_busy, const detail::Hub* caller) noexcept {
    if (a_busy != b_busy) return a_busy;
    long la = a.live.load(std::memory_order_relaxed), lb = b.live.load(std::memory_order_relaxed);
    if (la != lb) return lb < la;
    return a.hub == caller;
}

}  // namespace

std::int64_t monotonic_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return to_ns(ts);
}

// Another thread's CPU clock, as pthread_getcpuclockid builds it from the TID
// (the kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
std::int64_t thread_cpu_ns(pid_t tid) noexcept {
    timespec ts;
    auto clock = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6);
    if (clock_gettime(clock, &ts) != 0) return -1;
    return to_ns(ts);
}

// In the child of fork() only the forking thread's hub exists: placing a
// thread on any other would leave it never started.
void after_fork_in_child() noexcept {
    g_slots[0].hub = detail::Hub::current_if_any();
    g_count.store(1, std::memory_order_release);
    if (g_active.load(std::memory_order_relaxed) != kMaxSlots) g_active.store(1, std::memory_order_relaxed);
}

void placement_add_hub(detail::Hub* hub) noexcept {
    unsigned i = g_count.load(std::memory_order_relaxed);
    if (i == 0) pthread_atfork(nullptr, nullptr, after_fork_in_child);
    if (i >= kMaxSlots) return;
    g_slots[i].hub = hub;
    g_slots[i].live.store(0, std::memory_order_relaxed);  // a fork child reuses the parent's slots
    g_count.store(i + 1, std::memory_order_release);
}

void placement_bind_this_thread(unsigned slot) noexcept { tls_slot = static_cast<int>(slot); }

detail::Hub* place_new_thread() noexcept {
    restart_hub_threads_after_fork();
    unsigned n = std::min(g_count.load(std::memory_order_acquire), g_active.load(std::memory_order_acquire));
    if (n <= 1) {
        if (g_count.load(std::memory_order_relaxed) <= 1) return detail::Hub::current_if_any();
        g_slots[0].live.fetch_add(1, std::memory_order_relaxed);
        return g_slots[0].hub;
    }
    const detail::Hub* caller = detail::Hub::current_if_any();
    std::uint64_t r = next_random();
    unsigned ia = static_cast<unsigned>(r % n);
    unsigned ib = static_cast<unsigned>((r >> 32) % (n - 1));
    if (ib >= ia) ++ib;
    Slot& a = g_slots[ia];
    Slot& b = g_slots[ib];
    Slot& pick = better(a, busy(a, caller), b, busy(b, caller), caller) ? b : a;
    pick.live.fetch_add(1, std::memory_order_relaxed);
    return pick.hub;
}

void placement_thread_ended() noexcept {
    if (tls_slot < 0 || g_count.load(std::memory_order_relaxed) <= 1) return;
    g_slots[tls_slot].live.fetch_sub(1, std::memory_order_relaxed);
}

void placement_start_adaptive() noexcept { g_active.store(1, std::memory_order_release); }
unsigned placement_active() noexcept {
    return std::min(g_count.load(std::memory_order_acquire), g_active.load(std::memory_order_acquire));
}
void placement_activate(unsigned n) noexcept { g_active.store(n, std::memory_order_release); }
unsigned placement_hub_count() noexcept { return g_count.load(std::memory_order_acquire); }
detail::Hub* placement_hub(unsigned slot) noexcept { return g_slots[slot].hub; }
long placement_live(unsigned slot) noexcept { return g_slots[slot].live.load(std::memory_order_relaxed); }
int placement_slot_of_this_thread() noexcept { return tls_slot; }

void placement_thread_moved(int from_slot) noexcept {
    if (from_slot < 0 || tls_slot < 0 || from_slot == tls_slot) return;
    g_slots[from_slot].live.fetch_sub(1, std::memory_order_relaxed);
    g_slots[tls_slot].live.fetch_add(1, std::memory_order_relaxed);
}

void placement_thread_not_started(detail::Hub* hub) noexcept {
    unsigned n = g_count.load(std::memory_order_acquire);
    if (n <= 1) return;
    for (unsigned i = 0; i < n; ++i)
        if (g_slots[i].hub == hub) {
            g_slots[i].live.fetch_sub(1, std::memory_order_relaxed);
            return;
        }
}

}  // namespace green::interpose
