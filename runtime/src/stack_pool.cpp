// See stack_pool.hpp for the design and its invariants.
#include "stack_pool.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <green/run.hpp>

#include "fiber_record.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "spinlock.hpp"

namespace green::detail {

namespace {

constexpr std::size_t kStacksPerSlab = 16;

std::atomic<std::size_t> g_guarded{0};
std::atomic<std::size_t> g_unguarded{0};

// Stacks of hubs whose thread ended, waiting for a new owner.
std::atomic<std::uint32_t> g_orphans_lock{0};
std::vector<Stack>* g_orphans = nullptr;

std::size_t guard_budget() noexcept {
    static const std::size_t budget = [] {
        long max_maps = os::read_long_file("/proc/sys/vm/max_map_count", 65530);
        return static_cast<std::size_t>(max_maps > 0 ? max_maps : 65530) / 4;
    }();
    return budget;
}

bool want_guard() noexcept {
    switch (config().stack_guard) {
        case StackGuard::On: return true;
        case StackGuard::Off: return false;
        case StackGuard::Auto: return g_guarded.load(std::memory_order_relaxed) + kStacksPerSlab <= guard_budget();
    }
    return true;
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

// Maps one slab and cuts it into stacks. Layout of each stack, low to high:
// [guard page | usable ...] or, unguarded, [canary page | usable ...]. The
// unguarded variant keeps the page so sizes (and reuse) match in both modes.
void carve_slab(std::size_t size, std::vector<Stack>& out) {
    const std::size_t page = page_size();
    const std::size_t stride = size + page;
    const bool guarded = want_guard();
    void* mem = mmap(nullptr, stride * kStacksPerSlab, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die_out_of_stacks(size, errno);
    char* slab = static_cast<char*>(mem);
    for (std::size_t i = 0; i < kStacksPerSlab; ++i) {
        char* low = slab + i * stride;
        if (guarded && mprotect(low, page, PROT_NONE) != 0) die_out_of_stacks(size, errno);
        Stack s{low + page, size, guarded};
        if (!guarded) *reinterpret_cast<std::uint64_t*>(s.base - sizeof(std::uint64_t)) = kStackCanary;
        out.push_back(s);
    }
    (guarded ? g_guarded : g_unguarded).fetch_add(kStacksPerSlab, std::memory_order_relaxed);
}

bool take_orphan(std::size_t size, Stack& out) noexcept {
    SpinGuard g(g_orphans_lock);
    if (!g_orphans) return false;
    for (auto it = g_orphans->begin(); it != g_orphans->end(); ++it) {
        if (it->size == size) {
            out = *it;
            g_orphans->erase(it);
            return true;
        }
    }
    return false;
}

}  // namespace

std::size_t page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return page;
}

StackPool::~StackPool() {
    SpinGuard g(g_orphans_lock);
    if (!g_orphans) g_orphans = new std::vector<Stack>();
    for (auto& c : classes_) g_orphans->insert(g_orphans->end(), c.free.begin(), c.free.end());
}

Stack StackPool::get(std::size_t size) {
    const std::size_t page = page_size();
    size = (size + page - 1) / page * page;
    SizeClass* cls = nullptr;
    for (auto& c : classes_) {
        if (c.size == size) {
            cls = &c;
            break;
        }
    }
    if (!cls) {
        classes_.push_back(SizeClass{size, {}});
        cls = &classes_.back();
    }
    if (cls->free.empty()) {
        Stack orphan;
        if (take_orphan(size, orphan)) return orphan;
        cls->free.reserve(cls->free.size() + kStacksPerSlab);
        carve_slab(size, cls->free);
    }
    Stack s = cls->free.back();
    cls->free.pop_back();
    return s;
}

void StackPool::put(const Stack& stack) noexcept {
    for (auto& c : classes_) {
        if (c.size == stack.size) {
            c.free.push_back(stack);
            return;
        }
    }
    classes_.push_back(SizeClass{stack.size, {stack}});
}

bool in_guard_page(const Stack& stack, const void* addr) noexcept {
    const char* a = static_cast<const char*>(addr);
    return stack.base != nullptr && a < stack.base && a >= stack.base - page_size();
}

std::size_t guarded_stacks_allocated() noexcept { return g_guarded.load(); }
std::size_t unguarded_stacks_allocated() noexcept { return g_unguarded.load(); }

namespace {

struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

void overflow_handler(int sig, siginfo_t* info, void* uctx) {
    FiberRecord* f = Hub::running_fiber_if_any();
    if (f && in_guard_page(f->stack, info->si_addr)) {
        report_stack_overflow(f);  // never returns
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
