// Fiber stacks: mmap'd, guard-paged while the map budget allows, pooled.
//
// Invariants:
// - Stacks are carved from slabs (one mmap each) and never unmapped; a
//   finished fiber's stack goes back to its hub's free list for reuse.
// - A guarded stack has one PROT_NONE page below it. Every guard page splits
//   a mapping in two, and vm.max_map_count (65530 here) caps mappings per
//   process, so at most a quarter of that budget is spent on guards
//   (GREEN_STACK_GUARD=auto). Stacks beyond it are unguarded and carry a
//   canary at their lowest address instead, checked each time the fiber is
//   switched out and when the stack is returned: an overflow that wrote
//   through it is reported with the fiber's name before anything else runs.
// - The SIGSEGV handler runs on a per-hub alternate stack and recognises a
//   fault inside the running fiber's guard page as a stack overflow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace green::detail {

struct Stack {
    char* base = nullptr;  // lowest usable byte (just above the guard/canary)
    std::size_t size = 0;  // usable bytes
    bool guarded = false;

    char* top() const noexcept { return base + size; }
};

constexpr std::uint64_t kStackCanary = 0x6772656e43616e79ULL;  // "grenCany"

// Per-hub cache of free stacks by size; refills from slabs.
class StackPool {
public:
    StackPool() = default;
    ~StackPool();  // hands cached stacks to the process-wide orphan list
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    // `size` is rounded up to whole pages. Aborts with a clear message when
    // the process is out of address space or map entries.
    Stack get(std::size_t size);
    void put(const Stack& stack) noexcept;

    static bool canary_intact(const Stack& stack) noexcept {
        return stack.guarded || *reinterpret_cast<const std::uint64_t*>(stack.base - sizeof(std::uint64_t)) == kStackCanary;
    }

private:
    struct SizeClass {
        std::size_t size;
        std::vector<Stack> free;
    };
    std::vector<SizeClass> classes_;
};

// Is `addr` inside the guard page just below `stack`?
bool in_guard_page(const Stack& stack, const void* addr) noexcept;

// Counters for tests and reports.
std::size_t guarded_stacks_allocated() noexcept;
std::size_t unguarded_stacks_allocated() noexcept;

std::size_t page_size() noexcept;

// Installs the overflow-reporting SIGSEGV/SIGBUS handler (once per process)
// and an alternate signal stack for the calling thread.
void install_overflow_handler_for_this_thread();

}  // namespace green::detail
