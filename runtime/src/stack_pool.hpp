// Fiber stacks: as large as thread stacks, cheap while untouched, guarded
// wide, pooled without drifting between hubs, and trimmed when idle.
//
// Invariants:
// - Stacks are cut from slabs (one MAP_NORESERVE mmap each), so a stack
//   costs address space until its pages are touched. Each slot is
//   [guard region (kGuardBytes) | usable stack]. The guard is as wide as the
//   kernel's own stack_guard_gap (1 MiB), so a frame of up to 1 MiB that
//   starts inside the stack faults in its own guard instead of landing in
//   the stack below.
// - Guards never cost a mapping where the kernel has MADV_GUARD_INSTALL
//   (Linux >= 6.13): a guard is a page-table marker, the slab stays one VMA
//   however many stacks it holds. Older kernels get PROT_NONE guards, each of
//   which splits a mapping; vm.max_map_count (65530 here) caps mappings per
//   process, so with GREEN_STACK_GUARD=auto at most a quarter of it is spent
//   on them. Stacks beyond that are unguarded and carry a canary at their
//   lowest address, checked when the fiber switches out and when its stack
//   is released.
// - A stack belongs to the shard (per-hub pool) that handed it out and
//   always returns there, from whichever thread releases it (a lock-free
//   push onto that shard's remote list), so no hub's pool grows at another's
//   expense. Shards outlive their hubs; a new hub takes over a free shard
//   with its cache.
// - A shard keeps its most recently freed stacks (kHotStacks per size) as
//   they are; older ones are trimmed (MADV_DONTNEED of all but the top page)
//   when the hub is about to idle, kTrimBatch at a time between polls (a
//   trim costs tens of microseconds, too much for the spawn/exit path), or
//   at once when a busy hub's cache passes kMaxCachedStacks per size, whose
//   oldest half then goes to a process-wide spare list that every shard
//   takes from before mapping more. Resident memory thus follows the live
//   fibers, not the peak; the address space and page tables of the peak
//   stay reserved (slabs are never unmapped).
// - The SIGSEGV handler runs on a per-hub alternate stack and recognises a
//   fault in any guard region: the running fiber's own (stack overflow) or
//   another stack's (reported as such), both with the running fiber's name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace green::detail {

struct Stack {
    char* base = nullptr;      // lowest usable byte (just above the guard)
    std::size_t size = 0;      // usable bytes
    bool guarded = false;      // a fault-on-touch guard region lies below base
    bool prepared = false;     // guard (or canary) set up on first use
    std::uint16_t shard = 0;   // the pool this stack returns to

    char* top() const noexcept { return base + size; }
};

constexpr std::uint64_t kStackCanary = 0x6772656e43616e79ULL;  // "grenCany"
constexpr std::size_t kGuardBytes = 1024 * 1024;
constexpr std::size_t kHotStacks = 16;
constexpr std::size_t kMaxCachedStacks = 256;
constexpr std::size_t kTrimBatch = 4;

// One hub's view of its shard. Only the owning thread calls get/put.
class StackPool {
public:
    StackPool();   // takes a free shard
    ~StackPool();  // gives the shard (and its cached stacks) up for the next hub
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    // `size` is rounded up to whole pages. Aborts with a clear message when
    // the process is out of address space or map entries.
    Stack get(std::size_t size);
    // From the owning thread only; other threads use recycle().
    void put(const Stack& stack) noexcept;
    bool owns(const Stack& stack) const noexcept { return stack.shard == shard_; }

    // Idle work: takes stacks other threads returned, and trims up to
    // kTrimBatch cached stacks. True if more may be left to trim.
    bool trim_some() noexcept;

    // Returns a stack to its shard from any thread.
    static void recycle(const Stack& stack) noexcept;

    static bool canary_intact(const Stack& stack) noexcept {
        return stack.guarded || *reinterpret_cast<const std::uint64_t*>(stack.base - sizeof(std::uint64_t)) == kStackCanary;
    }

private:
    std::uint16_t shard_;
};

// Is `addr` inside the guard region just below `stack`?
bool in_guard_page(const Stack& stack, const void* addr) noexcept;

// Counters for tests and reports.
std::size_t guarded_stacks_allocated() noexcept;
std::size_t unguarded_stacks_allocated() noexcept;
std::size_t stacks_trimmed() noexcept;

std::size_t page_size() noexcept;

// Installs the overflow-reporting SIGSEGV/SIGBUS handler (once per process)
// and an alternate signal stack for the calling thread.
void install_overflow_handler_for_this_thread();

}  // namespace green::detail
