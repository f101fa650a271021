// See stack_pool.hpp for the design and its invariants.
#include "stack_pool.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <green/run.hpp>

#include "fiber_record.hpp"
#include "fork.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "spinlock.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13; Debian 12's headers predate it
#endif

namespace green::detail {

namespace {

constexpr std::size_t kSlabTargetBytes = 64 * 1024 * 1024;
constexpr std::size_t kMaxSlotsPerSlab = 64;
constexpr std::size_t kMaxShards = 1024;
constexpr std::size_t kMaxSlabs = 1 << 16;

std::atomic<std::size_t> g_guarded{0};
std::atomic<std::size_t> g_unguarded{0};
std::atomic<std::size_t> g_trimmed{0};

// 1: the kernel installs guard markers; 0: it does not (PROT_NONE instead);
// -1: not known yet.
std::atomic<int> g_guard_markers{-1};

// A free stack waiting in another shard's remote list lives in the stack's
// own top page, which is never trimmed.
struct FreeStackNode {
    FreeStackNode* next;
    Stack stack;
};

struct SizeClass {
    std::size_t size;
    std::vector<Stack> free;  // LIFO; free[0, trimmed) hold no touched pages
    std::size_t trimmed = 0;
};

struct Shard {
    std::atomic<bool> owned{false};
    std::vector<SizeClass> classes;  // only the owner touches these
    std::atomic<FreeStackNode*> remote{nullptr};
    bool trim_pending = false;  // some class holds more than kHotStacks untrimmed
};

Shard* shards() noexcept {
    // Never destroyed: fibers released during exit may still return stacks.
    static Shard* s = new Shard[kMaxShards];
    return s;
}

// Trimmed stacks beyond any shard's cap, shared by all.
std::atomic<std::uint32_t> g_spare_lock{0};
std::vector<Stack>* g_spare = nullptr;

// Every slab, for the fault handler (read without locks; entries are
// published by their `start`).
struct SlabInfo {
    std::atomic<char*> start;
    std::size_t stride;
    std::size_t slots;
};
SlabInfo g_slabs[kMaxSlabs];
std::atomic<std::size_t> g_slab_count{0};

std::size_t guard_budget() noexcept {
    static const std::size_t budget = [] {
        long max_maps = os::read_long_file("/proc/sys/vm/max_map_count", 65530);
        return static_cast<std::size_t>(max_maps > 0 ? max_maps : 65530) / 4;
    }();
    return budget;
}

[[noreturn]] void die_out_of_stacks(std::size_t size, int err) {
    char msg[256];
    int n = std::snprintf(msg, sizeof msg,
                          "green: cannot allocate fiber stacks of %zu bytes (%s); %zu guarded and %zu unguarded "
                          "stacks exist. Lower GREEN_STACK_SIZE or set GREEN_STACK_GUARD=off.\n",
                          size, std::strerror(err), g_guarded.load(), g_unguarded.load());
    os::write_stderr(msg, static_cast<std::size_t>(n));
    std::abort();
}

void set_canary(Stack& s) noexcept {
    *reinterpret_cast<std::uint64_t*>(s.base - sizeof(std::uint64_t)) = kStackCanary;
    s.guarded = false;
}

// Decided once per slot, on its first use, so a slot that is never used
// costs no page-table entries and no mapping.
void prepare(Stack& s) {
    s.prepared = true;
    const StackGuard mode = config().stack_guard;
    if (mode != StackGuard::Off && g_guard_markers.load(std::memory_order_relaxed) != 0) {
        if (madvise(s.base - kGuardBytes, kGuardBytes, MADV_GUARD_INSTALL) == 0) {
            g_guard_markers.store(1, std::memory_order_relaxed);
            s.guarded = true;
            g_guarded.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (errno != EINVAL) die_out_of_stacks(s.size, errno);
        g_guard_markers.store(0, std::memory_order_relaxed);
    }
    const bool guard = mode == StackGuard::On ||
                       (mode == StackGuard::Auto && g_guarded.load(std::memory_order_relaxed) < guard_budget());
    if (guard) {
        if (mprotect(s.base - kGuardBytes, kGuardBytes, PROT_NONE) != 0) die_out_of_stacks(s.size, errno);
        s.guarded = true;
        g_guarded.fetch_add(1, std::memory_order_relaxed);
    } else {
        set_canary(s);
        g_unguarded.fetch_add(1, std::memory_order_relaxed);
    }
}

// Releases every touched page but the top one, which holds the FreeStackNode
// when the stack travels and the next fiber's record anyway.
void trim(const Stack& s) noexcept {
    if (!s.prepared) return;  // never touched
    const std::size_t page = page_size();
    if (s.size > page) madvise(s.base, s.size - page, MADV_DONTNEED);
    g_trimmed.fetch_add(1, std::memory_order_relaxed);
}

void register_slab(char* start, std::size_t stride, std::size_t slots) noexcept {
    std::size_t i = g_slab_count.fetch_add(1, std::memory_order_relaxed);
    if (i >= kMaxSlabs) return;  // faults there are still reported for the running fiber's own guard
    g_slabs[i].stride = stride;
    g_slabs[i].slots = slots;
    g_slabs[i].start.store(start, std::memory_order_release);
}

// Maps one slab and appends its (untouched) stacks to `cls`.
void carve_slab(SizeClass& cls, std::uint16_t shard) {
    const std::size_t stride = kGuardBytes + cls.size;
    const std::size_t slots = std::clamp<std::size_t>(kSlabTargetBytes / stride, 1, kMaxSlotsPerSlab);
    void* mem = mmap(nullptr, stride * slots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (mem == MAP_FAILED) die_out_of_stacks(cls.size, errno);
    char* slab = static_cast<char*>(mem);
    // With transparent huge pages set to `always`, touching a stack's top
    // would fault in 2 MiB; every slab carries the same flag, so adjacent
    // slabs still merge into one mapping.
    madvise(slab, stride * slots, MADV_NOHUGEPAGE);
    register_slab(slab, stride, slots);
    cls.free.reserve(cls.free.size() + slots);
    for (std::size_t i = slots; i-- > 0;) {
        Stack s;
        s.base = slab + i * stride + kGuardBytes;
        s.size = cls.size;
        s.shard = shard;
        cls.free.push_back(s);
    }
    cls.trimmed = cls.free.size();  // untouched, nothing to release
}

SizeClass& class_for(Shard& sh, std::size_t size) {
    for (auto& c : sh.classes)
        if (c.size == size) return c;
    sh.classes.push_back(SizeClass{size, {}, 0});
    return sh.classes.back();
}

// Hands `n` stacks to the shared spare list. The list grows outside its
// lock: a malloc under the spinlock would keep every hub that looks for a
// spare stack spinning through it (and malloc may itself wait).
void give_spares(const Stack* first, std::size_t n) noexcept {
    std::vector<Stack>* fresh = nullptr;  // the list itself, made on first use
    std::vector<Stack> room;              // a larger buffer, when the list is full
    for (;;) {
        std::size_t needed = 0;
        {
            SpinGuard g(g_spare_lock);
            if (!g_spare && fresh) std::swap(g_spare, fresh);
            if (g_spare) {
                // Neither branch allocates: the capacity is there.
                if (g_spare->capacity() - g_spare->size() >= n) {
                    g_spare->insert(g_spare->end(), first, first + n);
                    break;
                }
                if (room.capacity() >= g_spare->size() + n) {
                    room.assign(g_spare->begin(), g_spare->end());
                    room.insert(room.end(), first, first + n);
                    g_spare->swap(room);  // the old buffer is freed below, unlocked
                    break;
                }
                needed = g_spare->size() + n;
            }
        }
        if (needed == 0) fresh = new std::vector<Stack>();
        else room.reserve(2 * needed);
    }
    delete fresh;  // made for nothing: another hub made the list first
}

void put_local(Shard& sh, const Stack& s) noexcept {
    SizeClass& cls = class_for(sh, s.size);
    cls.free.push_back(s);
    if (cls.free.size() - cls.trimmed > kHotStacks) sh.trim_pending = true;
    if (cls.free.size() > kMaxCachedStacks) {
        // A hub too busy to idle: trim here, then hand the oldest half to
        // the shared spare list.
        const std::size_t n = cls.free.size() - kMaxCachedStacks / 2;
        while (cls.trimmed < n) trim(cls.free[cls.trimmed++]);
        give_spares(cls.free.data(), n);
        cls.free.erase(cls.free.begin(), cls.free.begin() + static_cast<std::ptrdiff_t>(n));
        cls.trimmed -= n;
    }
}

__attribute__((no_sanitize("address"))) void drain_remote(Shard& sh) noexcept {
    FreeStackNode* n = sh.remote.exchange(nullptr, std::memory_order_acquire);
    while (n) {
        FreeStackNode* next = n->next;
        Stack s = n->stack;
        put_local(sh, s);
        n = next;
    }
}

bool take_spare(std::size_t size, Stack& out) noexcept {
    SpinGuard g(g_spare_lock);
    if (!g_spare) return false;
    for (std::size_t i = g_spare->size(); i-- > 0;) {
        if ((*g_spare)[i].size == size) {
            out = (*g_spare)[i];
            (*g_spare)[i] = g_spare->back();
            g_spare->pop_back();
            return true;
        }
    }
    return false;
}

// A fork child takes and gives stacks too.
[[gnu::constructor]] void hold_spare_lock_across_fork() { hold_across_fork(&g_spare_lock); }

}  // namespace

std::size_t page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return page;
}

StackPool::StackPool() {
    Shard* all = shards();
    for (std::size_t i = 0; i < kMaxShards; ++i) {
        bool expected = false;
        if (!all[i].owned.load(std::memory_order_relaxed) &&
            all[i].owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
            shard_ = static_cast<std::uint16_t>(i);
            return;
        }
    }
    char msg[160];
    int n = std::snprintf(msg, sizeof msg, "green: more than %zu threads use green at once; each needs a stack pool.\n",
                          kMaxShards);
    os::write_stderr(msg, static_cast<std::size_t>(n));
    std::abort();
}

StackPool::~StackPool() { shards()[shard_].owned.store(false, std::memory_order_release); }

Stack StackPool::get(std::size_t size) {
    const std::size_t page = page_size();
    size = (size + page - 1) / page * page;
    Shard& sh = shards()[shard_];
    SizeClass* cls = &class_for(sh, size);
    if (cls->free.empty() && sh.remote.load(std::memory_order_relaxed)) {
        drain_remote(sh);
        cls = &class_for(sh, size);  // draining may have added classes
    }
    Stack s;
    if (!cls->free.empty()) {
        s = cls->free.back();
        cls->free.pop_back();
        cls->trimmed = std::min(cls->trimmed, cls->free.size());
    } else if (take_spare(size, s)) {
        s.shard = shard_;
    } else {
        carve_slab(*cls, shard_);
        s = cls->free.back();
        cls->free.pop_back();
        cls->trimmed = cls->free.size();
    }
    if (!s.prepared) prepare(s);
    return s;
}

void StackPool::put(const Stack& stack) noexcept { put_local(shards()[shard_], stack); }

bool StackPool::trim_some() noexcept {
    Shard& sh = shards()[shard_];
    if (sh.remote.load(std::memory_order_relaxed)) drain_remote(sh);
    if (!sh.trim_pending) return false;
    std::size_t budget = kTrimBatch;
    for (auto& cls : sh.classes) {
        while (budget > 0 && cls.free.size() - cls.trimmed > kHotStacks) {
            trim(cls.free[cls.trimmed++]);
            --budget;
        }
    }
    if (budget > 0) sh.trim_pending = false;  // every class is down to its hot stacks
    return true;
}

__attribute__((no_sanitize("address"))) void StackPool::recycle(const Stack& stack) noexcept {
    Shard& sh = shards()[stack.shard];
    auto* node = reinterpret_cast<FreeStackNode*>(
        (reinterpret_cast<std::uintptr_t>(stack.top()) - sizeof(FreeStackNode)) & ~std::uintptr_t{63});
    node->stack = stack;
    FreeStackNode* head = sh.remote.load(std::memory_order_relaxed);
    do {
        node->next = head;
    } while (!sh.remote.compare_exchange_weak(head, node, std::memory_order_release, std::memory_order_relaxed));
}

bool in_guard_page(const Stack& stack, const void* addr) noexcept {
    const char* a = static_cast<const char*>(addr);
    return stack.base != nullptr && a < stack.base && a >= stack.base - kGuardBytes;
}

std::size_t guarded_stacks_allocated() noexcept { return g_guarded.load(); }
std::size_t unguarded_stacks_allocated() noexcept { return g_unguarded.load(); }
std::size_t stacks_trimmed() noexcept { return g_trimmed.load(); }

namespace {

struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

// The usable base of the stack whose guard region holds `addr`, or null.
char* guarded_stack_at(const char* addr) noexcept {
    const std::size_t n = std::min(g_slab_count.load(std::memory_order_acquire), kMaxSlabs);
    for (std::size_t i = 0; i < n; ++i) {
        char* start = g_slabs[i].start.load(std::memory_order_acquire);
        if (!start || addr < start) continue;
        const std::size_t off = static_cast<std::size_t>(addr - start);
        const std::size_t stride = g_slabs[i].stride;
        if (off >= stride * g_slabs[i].slots) continue;
        if (off % stride >= kGuardBytes) return nullptr;  // inside a stack, not a guard
        return start + (off / stride) * stride + kGuardBytes;
    }
    return nullptr;
}

[[noreturn]] void report_foreign_guard(FiberRecord* f, const void* addr, const char* other_base) noexcept {
    char buf[400];
    int n = std::snprintf(buf, sizeof buf,
                          "green: fiber %" PRIu64 " \"%s\" (stack of %zu bytes) touched %p in the guard region below another "
                          "fiber's stack (%p): a stray pointer, or a stack frame larger than the %zu-byte guard. "
                          "Raise GREEN_STACK_SIZE or SpawnOptions::stack_size if it is a frame.\n",
                          f->id, f->name, f->stack.size, addr, static_cast<const void*>(other_base), kGuardBytes);
    os::write_stderr(buf, static_cast<std::size_t>(n));
    signal(SIGABRT, SIG_DFL);
    abort();
}

void overflow_handler(int sig, siginfo_t* info, void* uctx) {
    FiberRecord* f = Hub::running_fiber_if_any();
    if (f && !f->is_root) {
        if (in_guard_page(f->stack, info->si_addr)) report_stack_overflow(f);  // never returns
        if (char* other = guarded_stack_at(static_cast<const char*>(info->si_addr)))
            report_foreign_guard(f, info->si_addr, other);
    }
    // Not ours: restore whoever was there before and let the fault repeat.
    struct sigaction& prev = sig == SIGSEGV ? g_previous_segv : g_previous_bus;
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction) {
            prev.sa_sigaction(sig, info, uctx);
            return;
        }
    }
    sigaction(sig, &prev, nullptr);
}

}  // namespace

void install_overflow_handler_for_this_thread() {
    // Not std::call_once: under the shim, pthread_once is a hooked call.
    static std::atomic<bool> installed{false};
    if (!installed.exchange(true)) {
        struct sigaction sa {};
        sa.sa_sigaction = overflow_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &g_previous_segv);
        sigaction(SIGBUS, &sa, &g_previous_bus);
    }
    stack_t current{};
    if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;  // the program has one
    const std::size_t size = 64 * 1024;
    void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return;  // overflow then ends in a plain SIGSEGV
    stack_t ss{};
    ss.ss_sp = mem;
    ss.ss_size = size;
    sigaltstack(&ss, nullptr);
}

}  // namespace green::detail
