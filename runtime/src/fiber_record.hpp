// The private records behind a fiber and behind one parked wait.
//
// FiberRecord lives at the top of the fiber's own stack (the root fiber of a
// thread, which runs on the thread's native stack, has a heap record), so a
// spawn costs no allocation once the stack pool is warm. It stays valid until
// both the Task handle and the running fiber have let go of it (refs).
//
// Waiter is the one object every suspension goes through. It lives on the
// parked fiber's stack and is valid until that fiber resumes. Its `reason` is
// the single arbiter between everyone who may try to wake it (a primitive's
// waker on any thread, its own timer, a cancel, an fd close): the first
// compare-exchange from Waiting wins and is the only one that schedules the
// fiber, so a fiber is never resumed twice for one wait.
#pragma once

#include <green/fiber.hpp>
#include <green/sync.hpp>

#include <boost/context/fiber.hpp>
#include <ev.h>

#include <atomic>
#include <cstdint>
#include <exception>

#include "sanitizer.hpp"
#include "thread_state.hpp"
#include "stack_pool.hpp"

namespace green::detail {

class Hub;

enum class WakeReason : std::uint8_t {
    Waiting,    // still parked
    Woken,      // the thing waited for happened (or ownership was handed over)
    TimedOut,   // the wait's own deadline
    Expired,    // an enclosing green::Deadline scope
    Cancelled,  // Task::cancel()
    Closed,     // notify_fd_closing() on the fd waited for
    Deadlock,   // the whole process can never make progress (root in green::run)
    Interrupted,  // request_interrupt(): a signal handler is due on this fiber
};

// A node in a hub's remote (cross-thread) queue: either a Waiter to make
// runnable or a FiberRecord to deliver a cancel to.
struct RemoteNode {
    RemoteNode* next = nullptr;
    enum Kind : std::uint8_t { kWake, kCancel, kSpawn, kInterrupt, kDump, kMove } kind = kWake;
    // The Waiter (kWake), FiberRecord (kCancel, kSpawn, kInterrupt, kMove) or
    // dump request (kDump).
    void* owner = nullptr;
};

// What a parked fiber waits for (like Go's waitReason): one value per kind
// of wait, named once in wait_kind_name() for every report.
enum class WaitKind : std::uint8_t {
    Idle,  // a hub thread's root parked for good (Hub::park_idle): never reported
    Fd,
    Poll,
    Sleep,
    Join,
    Pool,
    Event,
    Semaphore,
    Mutex,
    CondVar,
    WaitGroup,
    // The shim's (interpose/).
    PthreadMutex,
    PthreadRwlockRead,
    PthreadRwlockWrite,
    PthreadCond,
    PthreadBarrier,
    Sem,
    Futex,
    Sigwait,
    Sigsuspend,
};

constexpr const char* wait_kind_name(WaitKind k) noexcept {
    switch (k) {
        case WaitKind::Idle: return "idle";
        case WaitKind::Fd: return "fd";
        case WaitKind::Poll: return "poll";
        case WaitKind::Sleep: return "sleep";
        case WaitKind::Join: return "join";
        case WaitKind::Pool: return "pool";
        case WaitKind::Event: return "Event";
        case WaitKind::Semaphore: return "Semaphore";
        case WaitKind::Mutex: return "Mutex";
        case WaitKind::CondVar: return "CondVar";
        case WaitKind::WaitGroup: return "WaitGroup";
        case WaitKind::PthreadMutex: return "pthread_mutex";
        case WaitKind::PthreadRwlockRead: return "pthread_rwlock (read)";
        case WaitKind::PthreadRwlockWrite: return "pthread_rwlock (write)";
        case WaitKind::PthreadCond: return "pthread_cond";
        case WaitKind::PthreadBarrier: return "pthread_barrier";
        case WaitKind::Sem: return "sem";
        case WaitKind::Futex: return "futex";
        case WaitKind::Sigwait: return "sigwait";
        case WaitKind::Sigsuspend: return "sigsuspend";
    }
    return "?";
}

struct Waiter {
    // The fiber is known before the Waiter is linked anywhere: a waker on
    // another thread may read it as soon as the list's lock is dropped.
    Waiter(FiberRecord* f, WaitKind k, const void* obj = nullptr, std::uintptr_t d = 0) noexcept
        : fiber(f), kind(k), object(obj), detail(d) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    FiberRecord* fiber;
    std::atomic<WakeReason> reason{WakeReason::Waiting};
    bool cancellable = true;
    bool interruptible = false;
    // Linked at the head of its list, not the tail: a wait that resumes one
    // its fiber was woken from (condition variables).
    bool first_in_line = false;
    // What the fiber waits on, for the reports (deadlock.cpp, dump.cpp).
    WaitKind kind;
    // Link in a WaitList (guarded by its lock) or in an fd's waiter list
    // (touched only by the owning hub's thread).
    Waiter* next = nullptr;
    Waiter* prev = nullptr;
    void* list = nullptr;  // the list it is linked in (WaitList or an overlay with head/tail)
    RemoteNode remote;  // used when woken from another thread
    const void* object;
    std::uintptr_t detail;  // primitive-specific: fd events, fds polled, futex bitset
    // For locks: where the owning fiber's id lives, so a deadlock report can
    // say who holds what this fiber waits for. Bit 63 of that word may be a
    // flag of the lock's own and is ignored.
    const std::atomic<std::uint64_t>* holder = nullptr;
    // One fd of a wait on several (Hub::wait_any_fd): linked in that fd's
    // list, while the wait itself, what a wake must win, is `group`.
    Waiter* group = nullptr;
    // A waiter whose fiber record has no hub is a plain OS thread blocked in
    // the kernel on this word (the shim's locks on threads it does not own):
    // the waker that wins `reason` sets it to 1 and futex-wakes it.
    std::atomic<std::uint32_t> thread_woken{0};
};

// Abandoned: a fiber that existed in the parent of fork() but not in the
// child (only the forking fiber survives); it must never run again.
// Moving: switched out of one hub on its way to another (Hub::move_running_if_asked);
// owned by neither until the new hub adopts it. The states from Done on are
// the ones the switch path must look at (after_switch).
enum class FiberState : std::uint8_t { Runnable, Running, Suspended, Done, Abandoned, Moving };

struct FiberRecord {
    boost::context::fiber ctx;  // how to resume this fiber (empty while it runs)
    // The hub that runs it. Changes only while the fiber itself runs
    // (Hub::move_running_if_asked), so whoever wakes a parked fiber reads a
    // stable value; other threads that read it at any time (cancel, interrupt)
    // use owner_of().
    Hub* hub = nullptr;
    std::uint64_t id = 0;
    char name[32] = {};
    FiberState state = FiberState::Runnable;
    bool is_root = false;       // a thread's native stack
    bool is_scheduler = false;  // the hub's own loop
    bool error_observed = false;
    bool started = false;       // has run at least once (its stack can be walked)
    // The condition variable whose wake this fiber has not yet acted on: set
    // when a wait on it ends Woken, cleared when the fiber releases a mutex
    // (green::CondVar and green::Mutex; the shim's pthread_cond_wait and
    // pthread_mutex_unlock).
    const void* woken_by_cond = nullptr;

    FiberRecord* run_next = nullptr;  // hub run queue (hub thread only)
    FiberRecord* live_prev = nullptr;  // hub's list of live fibers (reports)
    FiberRecord* live_next = nullptr;

    Waiter* parked = nullptr;  // the current wait (hub thread only)
    double parked_at = 0;      // ev_now() when it parked, for reports (hub thread only)
    ev_timer timer;            // deadline of the current wait
    Clock::time_point timer_deadline{};
    Clock::time_point scoped_deadline = Clock::time_point::max();

    std::atomic<std::uint32_t> refs{2};  // the Task handle + the running fiber
    std::atomic<bool> done{false};
    std::atomic<bool> cancel_requested{false};
    std::atomic<bool> cancel_posted{false};
    RemoteNode cancel_node{nullptr, RemoteNode::kCancel, nullptr};
    // Started from another hub (kSpawn), or moved to another hub (kMove):
    // never both at once, since a fiber moves only while it runs.
    RemoteNode spawn_node{nullptr, RemoteNode::kSpawn, nullptr};
    // Hub::request_interrupt(): the interruptible wait this fiber is parked
    // in when its hub takes the request ends with WakeReason::Interrupted.
    std::atomic<bool> interrupt_pending{false};
    std::atomic<bool> interrupt_posted{false};
    RemoteNode interrupt_node{nullptr, RemoteNode::kInterrupt, nullptr};
    void* user = nullptr;  // owned by the layer above (the shim's pthread identity)
    WaitList joiners;

    const TaskOps* ops = nullptr;
    void* payload = nullptr;
    std::exception_ptr error;

    // Per-thread state (thread_state.hpp). A fiber with its own TLS block
    // (tls != null: its thread pointer) keeps errno and the exception state
    // there; any other fiber shares its hub thread's TLS, and the switch
    // path saves and restores these two for it.
    void* tls = nullptr;
    int saved_errno = 0;
    EhGlobals saved_eh{};
    Stack stack;
    sanitizer::FiberState sanitizer;  // empty unless built with a fiber sanitizer
};

// The hub of `f`, read from any thread (it changes when a fiber moves).
inline Hub* owner_of(const FiberRecord* f) noexcept { return __atomic_load_n(&f->hub, __ATOMIC_ACQUIRE); }

// A thread's root parked for good (an idle hub thread): the deadlock report
// and the dump leave it out.
inline bool parked_idle(const FiberRecord* f) noexcept { return f->parked && f->parked->kind == WaitKind::Idle; }

}  // namespace green::detail
