// See fiber_futex.hpp.
#include "fiber_futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>

#include <climits>
#include <functional>

#include "hub.hpp"
#include "lock_self.hpp"
#include "os.hpp"
#include "spinlock.hpp"
#include "wait_queue.hpp"

namespace green::interpose {

namespace {

struct Bucket {
    std::atomic<std::uint32_t> lock{0};
    detail::Waiter* head = nullptr;
    detail::Waiter* tail = nullptr;
};
constexpr std::size_t kBuckets = 1024;
Bucket g_buckets[kBuckets];

Bucket& bucket_for(const void* addr) {
    auto v = reinterpret_cast<std::uintptr_t>(addr);
    return g_buckets[(v >> 2) * 0x9E3779B97F4A7C15ull >> 54 & (kBuckets - 1)];
}

}  // namespace

std::atomic<int>& kernel_futex_waiters() noexcept {
    static std::atomic<int> n{0};
    return n;
}

int fiber_futex_wait(const std::atomic<std::uint32_t>* addr, std::uint32_t expected, Clock::time_point deadline,
                     std::uint32_t bitset) noexcept {
    using namespace detail;
    const LockSelf self = lock_self();
    Bucket& b = bucket_for(addr);
    Waiter me(self.fiber, WaitKind::Futex, addr, bitset);
    bool changed = false;
    WakeReason r = wait_in(b, me, ParkOptions::uncancellable(deadline).parks_even_if_due(),
                           [&] { return changed = addr->load(std::memory_order_seq_cst) != expected; });
    if (changed) return EAGAIN;
    return r == WakeReason::Woken ? 0 : ETIMEDOUT;
}

int fiber_futex_wake(const std::atomic<std::uint32_t>* addr, int count, std::uint32_t bitset) noexcept {
    using namespace detail;
    Bucket& b = bucket_for(addr);
    int woken = 0;
    {
        WakesAfterUnlock wakes;
        SpinGuard g(b.lock);
        auto wanted = [&](const Waiter& w) {
            return w.object == addr && (static_cast<std::uint32_t>(w.detail) & bitset);
        };
        woken = static_cast<int>(list_wake_if(b, WakeReason::Woken, wakes, wanted,
                                                static_cast<std::size_t>(count > 0 ? count : 0)));
    }
    if (woken < count && kernel_futex_waiters().load(std::memory_order_seq_cst) > 0) {
        long r = os::raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAKE_BITSET_PRIVATE, count - woken, 0, 0,
                                  static_cast<long>(bitset));
        if (r > 0) woken += static_cast<int>(r);
        // The waiter may have used a shared (non-private) futex.
        r = os::raw_syscall6(SYS_futex, reinterpret_cast<long>(addr), FUTEX_WAKE_BITSET, count - woken, 0, 0,
                             static_cast<long>(bitset));
        if (r > 0) woken += static_cast<int>(r);
    }
    return woken;
}

}  // namespace green::interpose
