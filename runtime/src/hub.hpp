// The hub: one per OS thread, owning that thread's fibers, run queue and
// libev loop. See hub.cpp for the run loop written out as a specification.
//
// Lock order. The runtime's and the shim's own locks are spinlocks
// (spinlock.hpp), never held across a suspension and mostly for a few
// instructions (the long holds: the registry lock while a deadlock report is
// built, the capture lock for up to a second by the monitor or dump thread).
// Where one is taken while another is held, the outer one is listed first:
//
//   shim signal state (interpose hooks_signal.cpp g_lock)
//       -> registry lock, through Hub::wake (a sigwait handed its signal)
//       -> the shim's fd-table free list, and its fd list (adopt_shim_fd)
//   a fiber's joiners lock (FiberRecord::joiners; its end wakes joiners)
//       -> registry lock, through Hub::wake
//   registry lock (registry.cpp; the deadlock detector's state too)
//       -> Hub::closing_lock_ (post_fd_closing, from notify_fd_closing)
//   leaves, under which no other lock is taken: Hub::closing_lock_, WaitList
//   locks (sync.cpp), the shim's lock overlays in pthread mutexes, condvars,
//   rwlocks, barriers and semaphores, its futex buckets, the pool lock, the
//   stack pool's spare list, the backtrace capture lock, the shim's key
//   table, its fd-table free list and its fd list.
//
// Hub::wake (and Hub::schedule) may take the registry lock: a wake posted to
// a stuck hub unsticks it (hub_unstick). Wakes decided under a leaf lock are
// therefore delivered after it is released (WakesAfterUnlock); the two
// sites above are the only ones that wake under a lock, besides the deadlock
// detector, which wakes under the registry lock only hubs it has just
// unstuck (so hub_unstick does not take it again). Other code holding the
// registry lock unsticks a hub with hub_unstick_registry_locked.
// fork() holds the shim's signal lock, the pool lock and the registry lock,
// taken in that order (fork.cpp). Memory is allocated under the registry
// lock, closing_lock_, the spare list and the signal lock: under the shim, a
// program allocator whose own locks are pthread mutexes takes a shim overlay
// there, and a fiber that found one contended would park holding the outer
// spinlock.
#pragma once

#include <green/io.hpp>
#include <green/run.hpp>

#include <ev.h>

#include <atomic>
#include <string>
#include <unordered_map>
#include <cstdint>
#include <vector>

#include "fiber_record.hpp"
#include "stack_pool.hpp"

namespace green::detail {

struct FdWatch;
class Symbolizer;
// Backtraces in a report: who names them, and which stack was printed first
// under which fiber (identical stacks are printed once).
struct ReportStacks {
    Symbolizer* names;
    std::unordered_map<std::string, std::uint64_t> first_with;
};

// Per-hub counters, written only by the hub's own thread (relaxed load+store
// compiles to a plain increment) and read by green::stats() from anywhere.
struct HubCounters {
    std::atomic<std::uint64_t> spawned{0}, switches{0}, fd_waits{0}, timer_waits{0}, sync_waits{0}, moved_in{0};
    static void bump(std::atomic<std::uint64_t>& c) noexcept {
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
};

// How a park may end besides its waker. Built only through the named
// constructors, so every wait says which kind it is.
struct ParkOptions {
    Clock::time_point deadline;
    bool ends_on_cancel;     // Task::cancel() ends the wait (WakeReason::Cancelled)
    bool bounded_by_scope;   // an enclosing green::Deadline bounds it (WakeReason::Expired)
    bool ends_on_interrupt;  // request_interrupt() ends it (WakeReason::Interrupted)
    // Whether a wait whose cancel is pending or whose deadline has passed
    // returns before parking (precheck). The shim's condition and futex
    // waits park once anyway, as their unpatched calls release the mutex or
    // enter the kernel: the hub's other fibers get their turn.
    bool precheck = true;

    // A suspension point of the green API (sync primitives, join).
    static constexpr ParkOptions cancellable(Clock::time_point d = Clock::time_point::max()) noexcept {
        return {d, true, true, false};
    }
    // The same, and a signal handler due on the fiber ends it too (fd, poll
    // and timer waits).
    static constexpr ParkOptions interruptible(Clock::time_point d = Clock::time_point::max()) noexcept {
        return {d, true, true, true};
    }
    // Ends only by its waker or its own deadline: lock acquisition (like
    // pthread_mutex_lock, not a cancellation point), pool jobs, idle roots.
    static constexpr ParkOptions uncancellable(Clock::time_point d = Clock::time_point::max()) noexcept {
        return {d, false, false, false};
    }
    // Uncancellable, but a signal handler ends it (the shim's sem_wait,
    // sigwait, sigsuspend, which return EINTR or restart).
    static constexpr ParkOptions signal_interruptible(Clock::time_point d = Clock::time_point::max()) noexcept {
        return {d, false, false, true};
    }
    // A pthread cancellation point of the shim: a cancel ends it, a
    // green::Deadline scope does not.
    static constexpr ParkOptions pthread_cancellable(Clock::time_point d = Clock::time_point::max()) noexcept {
        return {d, true, false, false};
    }
    constexpr ParkOptions parks_even_if_due() const noexcept {
        ParkOptions o = *this;
        o.precheck = false;
        return o;
    }

private:
    constexpr ParkOptions(Clock::time_point d, bool cancel, bool scope, bool interrupt) noexcept
        : deadline(d), ends_on_cancel(cancel), bounded_by_scope(scope), ends_on_interrupt(interrupt) {}
};

class Hub {
public:
    // The calling thread's hub, created on first use.
    static Hub& current() {
        if (Hub* h = tls_hub_) [[likely]]
            return *h;
        return create_for_this_thread();
    }
    static Hub* current_if_any() noexcept { return tls_hub_; }
    // An address inside the runtime's own TLS block (fiber_tls.cpp copies
    // that block into fibers with TLS of their own).
    static const void* tls_anchor() noexcept { return &tls_hub_; }
    // The hub thread's own thread pointer (fibers without TLS of their own
    // run with it).
    void* thread_pointer() const noexcept { return thread_tp_; }
    // The fiber running on this thread, or null if the thread has no hub.
    // Safe in a signal handler.
    static FiberRecord* running_fiber_if_any() noexcept { return tls_hub_ ? tls_hub_->current_ : nullptr; }

    FiberRecord* running() const noexcept { return current_; }
    FiberRecord* root_fiber() noexcept { return &root_; }
    const FiberRecord* live_fibers() const noexcept { return live_head_; }
    bool in_scheduler() const noexcept { return current_ == scheduler_; }
    // Work handed to this hub that it has not taken yet. Hub thread only
    // (run_head_ is not shared); used by hub_became_stuck().
    bool has_pending_work() const noexcept {
        return remote_head_.load(std::memory_order_seq_cst) != nullptr || run_head_ != nullptr ||
               closing_pending_.load(std::memory_order_seq_cst);
    }
    struct ev_loop* loop() const noexcept { return loop_; }
    // For the monitor (monitor.cpp), from any thread: moves at every switch
    // and loop turn; true while the hub waits in its event loop.
    std::uint64_t progress() const noexcept {
        return counters.switches.load(std::memory_order_relaxed) + loop_turns_.load(std::memory_order_relaxed);
    }
    bool waiting_for_events() const noexcept { return in_poll_.load(std::memory_order_relaxed); }
    const FiberRecord* running_for_monitor() const noexcept { return running_published_.load(std::memory_order_acquire); }
    // Is other work on this hub kept from running while the current fiber
    // does not yield: fibers waiting for an fd or a deadline (which the loop
    // would serve), or wakes posted from other threads?
    bool others_depend_on_it() const noexcept {
        return parked_on_io.load(std::memory_order_relaxed) > 0 || parked_on_timer.load(std::memory_order_relaxed) > 0 ||
               remote_head_.load(std::memory_order_relaxed) != nullptr;
    }
    unsigned index() const noexcept { return index_; }

    // --- fibers -----------------------------------------------------------
    // `owner`: the hub the fiber will run on (default: this one). Call on
    // this hub's thread; start() hands the fiber to its owner.
    FiberRecord* create_fiber(const SpawnOptions& options, std::size_t payload_size, std::size_t payload_align,
                              const TaskOps* ops, void** payload, Hub* owner = nullptr);
    void start(FiberRecord* f) noexcept;
    void release(FiberRecord* f) noexcept;  // drop one reference

    // --- the wait/wake protocol -------------------------------------------
    // Returns at once (without parking) if the wait cannot start: a pending
    // cancel, or a deadline already past. Otherwise WakeReason::Waiting.
    // (ParkOptions::precheck is the wait queue's to honour.)
    WakeReason precheck(const ParkOptions& options) noexcept;
    // Parks the running fiber on `w` (already linked wherever its waker will
    // find it) until someone wins the race to wake it. The caller unlinks `w`
    // afterwards if the reason is not Woken.
    WakeReason park(Waiter& w, const ParkOptions& options) noexcept;
    // Any thread: wake `w` for `reason` unless someone else already did.
    static bool wake(Waiter& w, WakeReason reason) noexcept;
    // wake() in two steps, for wakes decided under a lock (WakesAfterUnlock):
    // claim() wins the wait (the fiber cannot run until scheduled, so `w`
    // stays valid); schedule() makes it runnable.
    static bool claim(Waiter& w, WakeReason reason) noexcept;
    static void schedule(Waiter& w) noexcept;

    void yield() noexcept;
    void yield_inline() noexcept;  // hub.cpp only: the body, inlined into this_fiber::yield
    // Parks the running fiber for good (an idle hub thread's root, or a main
    // that called pthread_exit). Not reported as a deadlocked waiter.
    void park_idle() noexcept;
    // In the child of fork(): keep only the running fiber (fork.cpp).
    void after_fork_in_child() noexcept;
    void request_cancel(FiberRecord* f) noexcept;  // any thread
    // Any thread: ends the interruptible wait f is parked in, if any, when
    // f's own hub takes the request (like a cancel, but never sticky). The
    // caller keeps f's record alive for the duration of the call.
    static void request_interrupt(FiberRecord* f) noexcept;

    // --- moving fibers between hubs ------------------------------------------
    // A fiber with TLS of its own carries nothing of its hub thread but what
    // fiber_tls_rehome rewrites, so it may continue on another hub. Moves are
    // asked for by a balancing policy above the runtime (the shim's) and
    // carried out by the fibers themselves at move points: places where
    // nothing on their stack refers to their hub, about to wait anyway.
    //
    // Any thread: asks this hub to move up to `count` fibers to `to` (0
    // withdraws the request).
    void request_moves(Hub* to, int count) noexcept;
    // Hub thread: is a move asked for? One relaxed load, for move points.
    bool moves_requested() const noexcept { return move_budget_.load(std::memory_order_relaxed) > 0; }
    // The running fiber, at a move point: moves it if a move is asked for and
    // it may move. True when it did: it now runs on the other hub, and the
    // caller must take Hub::current() afresh.
    bool move_running_if_asked() noexcept;

    // --- fds (io.cpp) -----------------------------------------------------
    WaitResult wait_fd(int fd, int events, Clock::time_point deadline) noexcept;
    WaitResult wait_any_fd(const FdInterest* fds, std::size_t n, Clock::time_point deadline) noexcept;
    void fd_closing_local(int fd, std::uint32_t generation) noexcept;
    void post_fd_closing(int fd, std::uint32_t generation) noexcept;  // any thread, registry lock held

    // --- introspection ------------------------------------------------------
    // With `stacks`, each fiber's backtrace follows its line.
    // For reports: what this hub's long-lived watcher of `fd` asks libev
    // for (kReadable | kWritable), or -1 when the hub has none for it. Read
    // on the hub's thread, or while every hub is stuck.
    int fd_watch_interest(int fd) const noexcept;
    void append_report(std::string& out, ReportStacks* stacks = nullptr) const;
    // Any thread, registry lock held: queue a dump request (dump.cpp) that
    // this hub serves from its scheduler, where no fiber of it runs.
    void post_dump_request(RemoteNode* node) noexcept;
    HubCounters counters;
    StackPool stacks;
    int run_scope_depth = 0;   // green::run() frames on this thread
    // Fibers in wait_fd / parked with a deadline armed. Written by the hub's
    // thread only (HubCounters::bump-style), read by the monitor.
    std::atomic<std::uint64_t> parked_on_io{0};
    std::atomic<std::uint64_t> parked_on_timer{0};
    static void add(std::atomic<std::uint64_t>& c, long d) noexcept {
        c.store(c.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d), std::memory_order_relaxed);
    }

private:
    Hub();
    ~Hub();
    friend struct HubThreadExit;
    friend void fiber_entry_body(FiberRecord*);

    void make_ready(FiberRecord* f) noexcept;
    void adopt(FiberRecord* f, std::atomic<std::uint64_t>& arrivals) noexcept;
    void leave(FiberRecord* f) noexcept;
    void adopt_moved(FiberRecord* f) noexcept;
    void finish_switch_from(FiberRecord* prev, boost::context::fiber&& from) noexcept;
    void drop_fd_waiters() noexcept;
    void disarm_unwaited_fds() noexcept;
    void post_remote(RemoteNode* node) noexcept;
    void drain_remote() noexcept;
    void deliver_cancel(FiberRecord* f) noexcept;
    static void post_to_owner(FiberRecord* f, std::atomic<bool>& posted, RemoteNode& node) noexcept;
    void deliver_interrupt(FiberRecord* f) noexcept;
    FiberRecord* pick_next() noexcept;
    void switch_to(FiberRecord* next) noexcept;
    void leave_thread_state(FiberRecord* from, FiberRecord* to) noexcept;
    void move_thread_pointer(FiberRecord* from, FiberRecord* to) noexcept;
    void enter_thread_state(FiberRecord* f) noexcept;
    void after_switch(boost::context::fiber&& from) noexcept;
    void scheduler_loop();
    // The phases of one tick of scheduler_loop (hub.cpp).
    void take_posted_work() noexcept;
    void run_ready() noexcept;
    void poll_events_now() noexcept;
    bool trim_idle_stacks() noexcept;
    bool nothing_can_wake_us() const noexcept;
    bool report_stuck() noexcept;
    void poll_events_until_woken() noexcept;
    void process_fd_closings() noexcept;
    FdWatch* fd_watch(int fd) noexcept;
    static void on_timer(struct ev_loop*, ev_timer*, int) noexcept;
    static void on_async(struct ev_loop*, ev_async*, int) noexcept;
    static void on_fd(struct ev_loop*, ev_io*, int revents) noexcept;
    void rearm_fd(FdWatch* w) noexcept;
    void destroy_fd_watches() noexcept;
    void link_live(FiberRecord* f) noexcept;
    void unlink_live(FiberRecord* f) noexcept;

    static Hub& create_for_this_thread();
    // initial-exec: a load off the thread pointer, no __tls_get_addr call.
    // The runtime is linked or preloaded at start-up, where static TLS is
    // available (a later dlopen of it would still find surplus static TLS).
    static thread_local Hub* tls_hub_ __attribute__((tls_model("initial-exec")));

    unsigned index_ = 0;
    struct ev_loop* loop_ = nullptr;
    ev_async async_;
    FiberRecord* current_ = nullptr;
    FiberRecord* switch_from_ = nullptr;  // the context that just switched to us
    FiberRecord root_;
    FiberRecord* scheduler_ = nullptr;
    FiberRecord* run_head_ = nullptr;
    FiberRecord* run_tail_ = nullptr;
    std::size_t run_length_ = 0;
    std::size_t direct_budget_ = 0;  // direct fiber-to-fiber switches left in this tick
    std::size_t runs_since_poll_ = 0;
    FiberRecord* live_head_ = nullptr;
    // Fibers other than root and scheduler; written by the hub's thread only,
    // read by the monitor.
    std::atomic<std::size_t> live_count_{0};
    std::atomic<RemoteNode*> remote_head_{nullptr};
    std::atomic<int> posts_in_flight_{0};  // other threads inside post_remote()
    std::atomic<std::uint64_t> loop_turns_{0};
    std::atomic<bool> in_poll_{false};
    std::atomic<Hub*> move_to_{nullptr};  // request_moves(): where, and how many more
    std::atomic<int> move_budget_{0};
    // current_, published for the monitor (a plain mov on x86).
    std::atomic<const FiberRecord*> running_published_{nullptr};
    std::atomic<std::uint32_t> closing_lock_{0};
    std::vector<std::pair<int, std::uint32_t>> closing_;  // guarded by closing_lock_
    std::atomic<bool> closing_pending_{false};
    std::vector<FdWatch*> fds_;
    pid_t tid_ = 0;
    // This thread's TLS: its thread pointer and where errno and the C++
    // exception globals live in it (thread_state.hpp).
    void* thread_tp_ = nullptr;
    int* errno_slot_ = nullptr;
    EhGlobals* eh_slot_ = nullptr;
    std::vector<void*> tls_cache_;  // fiber_tls blocks of finished fibers (hub thread only)

public:
    // Deadlock detector's view (guarded by the global hub registry lock).
    std::atomic<bool> stuck{false};  // written under the registry lock; read anywhere
    bool registered = false;
    pid_t tid() const noexcept { return tid_; }
};

// The hub registry (registry.cpp).
void hub_registry_add(Hub* h);
void hub_registry_remove(Hub* h);
void for_each_hub(void (*fn)(Hub*, void*), void* arg);  // fn runs with the registry lock held
Stats counters_snapshot() noexcept;  // all hubs, including retired ones
// Deadlock detection and reports (deadlock.cpp).
// Called by a hub about to block with nothing of its own to wake it.
void hub_became_stuck(Hub* h);
void hub_unstick(Hub* h) noexcept;  // any thread, before posting work to h
void hub_unstick_registry_locked(Hub* h) noexcept;  // the same, for callers holding the registry lock
[[noreturn]] void report_stack_overflow(FiberRecord* f) noexcept;
void report_uncaught(FiberRecord* f) noexcept;
std::string take_deadlock_report();
std::uint64_t pool_jobs_completed() noexcept;
[[noreturn]] void throw_for(WakeReason r);
void describe_wait(const FiberRecord* f, std::string& out, bool nested = true);  // registry lock held
std::atomic<int>& pool_jobs_in_flight() noexcept;
std::atomic<int>& external_wakers() noexcept;
std::uint32_t fd_generation(int fd) noexcept;
std::uint32_t bump_fd_generation(int fd) noexcept;
void note_fd_hub(int fd, unsigned hub_index) noexcept;
std::uint64_t fd_hub_mask(int fd) noexcept;
// The on-demand dump (dump.cpp).
void start_dump_service() noexcept;
void serve_dump_request(Hub* h, RemoteNode* node) noexcept;  // the hub's thread, in its scheduler
// The hub monitor (monitor.cpp).
void start_hub_monitor() noexcept;
std::uint64_t blocked_episodes() noexcept;

}  // namespace green::detail
