// See lock_self.hpp.
#include "lock_self.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>

#include <cerrno>
#include <new>

#include "hook_context.hpp"
#include "os.hpp"
#include "real.hpp"

namespace green::interpose {

namespace {

constexpr std::uint64_t kThreadIdBase = std::uint64_t{1} << 62;
std::atomic<std::uint64_t> g_next_thread_id{kThreadIdBase + 1};

// Placement-constructed on first use and never destroyed: a thread_local
// object with a destructor would register a thread-exit hook, which allocates.
alignas(detail::FiberRecord) thread_local unsigned char
    tls_record_storage[sizeof(detail::FiberRecord)] __attribute__((tls_model("initial-exec")));
thread_local detail::FiberRecord* tls_record __attribute__((tls_model("initial-exec"))) = nullptr;

// A thread without a hub that takes the shim's locks once the program runs
// may wake a fiber at any time (an unlock, a signal), and the deadlock
// detector cannot see it: it counts as an external waker for as long as it
// lives, so a wait it may end is never reported as a deadlock. A real glibc
// key's destructor takes it off when the thread ends.
pthread_key_t g_waker_key;
std::atomic<std::uint32_t> g_waker_key_state{0};  // 0: none, 1: creating, 2: made

void thread_gone(void*) { detail::external_wakers().fetch_sub(1, std::memory_order_seq_cst); }

void count_as_external_waker() noexcept {
    std::uint32_t st = 0;
    if (g_waker_key_state.compare_exchange_strong(st, 1, std::memory_order_acq_rel)) {
        GREEN_NEXT(pthread_key_create)(&g_waker_key, thread_gone);
        g_waker_key_state.store(2, std::memory_order_release);
    }
    while (g_waker_key_state.load(std::memory_order_acquire) != 2) GREEN_NEXT(sched_yield)();
    detail::external_wakers().fetch_add(1, std::memory_order_seq_cst);
    GREEN_NEXT(pthread_setspecific)(g_waker_key, reinterpret_cast<void*>(1));
}

detail::FiberRecord* thread_record() noexcept {
    if (detail::FiberRecord* r = tls_record) [[likely]]
        return r;
    // Hub threads (a scheduler taking a lock) and the main thread before the
    // shim is ready are not such threads.
    if (g_shim_ready.load(std::memory_order_acquire) && !detail::Hub::current_if_any()) count_as_external_waker();
    auto* r = new (tls_record_storage) detail::FiberRecord();
    r->hub = nullptr;
    r->id = g_next_thread_id.fetch_add(1, std::memory_order_relaxed);
    r->state = detail::FiberState::Running;
    const char name[] = "plain-thread";
    for (std::size_t i = 0; i < sizeof name; ++i) r->name[i] = name[i];
    tls_record = r;
    return r;
}

}  // namespace

LockSelf lock_self() noexcept {
    detail::Hub* h = g_shim_ready.load(std::memory_order_acquire) ? detail::Hub::current_if_any() : nullptr;
    if (h && !h->in_scheduler()) [[likely]]
        return {h, h->running()};
    return {nullptr, thread_record()};
}

detail::WakeReason park_self(const LockSelf& self, detail::Waiter& w, Clock::time_point deadline,
                             bool cancellable) noexcept {
    using detail::WakeReason;
    if (self.hub) return self.hub->park(w, detail::ParkOptions{deadline, cancellable, false});
    for (;;) {
        if (w.thread_woken.load(std::memory_order_acquire)) return w.reason.load(std::memory_order_acquire);
        timespec rel{};
        timespec* timeout = nullptr;
        if (deadline != Clock::time_point::max()) {
            auto left = deadline - Clock::now();
            if (left.count() <= 0) {
                WakeReason expected = WakeReason::Waiting;
                if (w.reason.compare_exchange_strong(expected, WakeReason::TimedOut, std::memory_order_acq_rel))
                    return WakeReason::TimedOut;
                // A waker won first: its wake is on the way.
                deadline = Clock::time_point::max();
                continue;
            }
            rel = to_timespec(left);
            timeout = &rel;
        }
        detail::os::raw_syscall6(SYS_futex, reinterpret_cast<long>(&w.thread_woken), FUTEX_WAIT_PRIVATE, 0,
                                 reinterpret_cast<long>(timeout), 0, 0);
    }
}

}  // namespace green::interpose
