// The hub: a scheduler per OS thread. This file is the specification of how
// fibers run, park and wake.
//
// Contexts on a hub
//   root       the thread's native stack, seen as a fiber. It exists from the
//              moment the thread first uses green.
//   scheduler  a fiber of its own running scheduler_loop(); it runs libev and
//              everything libev calls back. Hooks recognise it (in_scheduler)
//              and pass calls made from it straight to libc.
//   fibers     spawned ones; each runs on this hub until it ends, unless it
//              has TLS of its own and moves to another hub at a move point
//              (move_running_if_asked: only the fiber itself, while it runs).
//
// Run loop (scheduler_loop), one tick; the names are its phases:
//   1. take_posted_work: remote wakes (other threads' wakes land in a
//      lock-free stack and an ev_async; spawns, cancels, interrupts and dump
//      requests ride the same queue), then fd closes other threads posted.
//   2. run_ready, if the run queue is non-empty: switch to its head with a
//      budget of direct switches: at least kMinDirectSwitches, more if more
//      fibers are queued. A fiber that suspends hands the CPU straight to
//      the next runnable fiber (one context switch, not two through the
//      scheduler) while budget is left; then control returns here. The run
//      queue is FIFO, so every runnable fiber gets its turn in order either
//      way. Still runnable fibers: back to 1, through poll_events_now (libev
//      without blocking) once kPollEveryRuns fibers have run back to back
//      since the last poll (an epoll_wait is a syscall; this bounds how long
//      I/O waits while fibers keep each other busy).
//   3. Nothing runnable and nothing posted: block in libev until an fd, a
//      timer or a remote wake fires (poll_events_until_woken). Before that,
//      trim_idle_stacks gives idle stacks' pages back a few per tick (libev
//      polled without blocking between), and when nothing_can_wake_us (fibers
//      parked, no fd, timer or pool job that could ever wake them),
//      report_stuck tells the deadlock detector (deadlock.cpp).
//
// Wait/wake protocol (see Waiter in fiber_record.hpp)
//   park:  the fiber has linked a Waiter where its waker will find it; park
//          arms the fiber's timer if there is a deadline, marks the fiber
//          Suspended and switches away. When it runs again, the Waiter's
//          reason says who won.
//   wake:  compare-exchange reason Waiting -> X. The winner makes the fiber
//          runnable: directly if it runs on the fiber's hub, else through the
//          hub's remote queue. Only the fiber's own hub ever resumes it.
//   A fiber can not be resumed before it has switched away: a same-hub waker
//   runs only after the fiber switched out, and a remote wake is taken by the
//   hub only from its scheduler, which runs after the fiber switched out.
#include "hub.hpp"

#include <green/run.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "fiber_tls.hpp"
#include "fork.hpp"
#include "os.hpp"
#include "spinlock.hpp"

namespace green::detail {

namespace {

constexpr std::size_t kMinDirectSwitches = 64;
constexpr std::size_t kPollEveryRuns = 256;
constexpr std::size_t kSchedulerStack = 256 * 1024;
// Finished thread-fibers' TLS blocks a hub keeps for its next ones (about
// 4 KiB each here): spawn then skips allocating and freeing the block.
constexpr std::size_t kTlsCacheSize = 64;

std::atomic<std::uint64_t> g_next_fiber_id{1};
std::atomic<unsigned> g_next_hub_index{0};

// Stack memory is ours; boost must not free it when a fiber ends.
struct KeepStack {
    boost::context::stack_context allocate() { return {}; }
    void deallocate(boost::context::stack_context&) noexcept {}
};

void copy_name(FiberRecord* f, std::string_view name) noexcept {
    std::size_t n = std::min(name.size(), sizeof f->name - 1);
    std::memcpy(f->name, name.data(), n);
    f->name[n] = '\0';
}

// "fiber-<id>", formatted by hand: spawn is a hot path, and snprintf was
// about a fifth of a whole spawn + join (BM_FiberSpawnJoin).
void set_default_name(FiberRecord* f) noexcept {
    static_assert(sizeof f->name >= sizeof "fiber-18446744073709551615");
    char digits[20];
    int n = 0;
    std::uint64_t v = f->id;
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    char* p = f->name;
    std::memcpy(p, "fiber-", 6);
    p += 6;
    while (n > 0) *p++ = digits[--n];
    *p = '\0';
}

double seconds_until(Clock::time_point deadline) noexcept {
    auto d = deadline - Clock::now();
    return d.count() <= 0 ? 0.0 : std::chrono::duration<double>(d).count();
}

}  // namespace

thread_local Hub* Hub::tls_hub_ __attribute__((tls_model("initial-exec"))) = nullptr;

// Owns the thread's hub and retires it when the thread ends.
//
// The main thread's hub is never retired: exit() runs thread_local
// destructors *before* atexit handlers, and those handlers (OpenSSL's
// cleanup, say) still take pthread locks, i.e. still need the hub. For the
// same reason a thread whose exit object is already gone gets a hub that is
// simply never retired (tls_exit_done).
struct HubThreadExit {
    Hub* hub = nullptr;
    ~HubThreadExit() {
        tls_exit_done = true;
        if (!hub || hub->tid() == static_cast<pid_t>(getpid())) return;
        Hub::tls_hub_ = nullptr;
        hub_registry_remove(hub);
        // A hub whose fibers all finished can go; one with parked fibers is
        // left in place (they can never run again, but their memory stays
        // valid for anyone still holding a Task).
        if (hub->live_count_.load(std::memory_order_relaxed) == 0 && hub->current_ == &hub->root_) {
            while (hub->posts_in_flight_.load(std::memory_order_acquire) != 0) cpu_relax();
            delete hub;
        }
    }
    static thread_local bool tls_exit_done;
};
thread_local bool HubThreadExit::tls_exit_done = false;
static thread_local HubThreadExit tls_exit;

Hub& Hub::create_for_this_thread() {
    install_fork_handlers();
    Hub* h = new Hub();
    tls_hub_ = h;
    if (!HubThreadExit::tls_exit_done) tls_exit.hub = h;
    hub_registry_add(h);
    start_hub_monitor();
    return *h;
}

Hub::Hub() {
    index_ = g_next_hub_index.fetch_add(1);
    tid_ = os::gettid();
    os::RuntimeFdScope own_fds;
    thread_tp_ = current_thread_pointer();
    errno_slot_ = errno_slot();
    eh_slot_ = eh_globals_slot();
    tls_cache_.reserve(kTlsCacheSize);
    loop_ = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (!loop_) {
        os::write_stderr("green: ev_loop_new failed (out of file descriptors?)\n");
        std::abort();
    }
    ev_set_userdata(loop_, this);
    ev_async_init(&async_, &Hub::on_async);
    async_.data = this;
    ev_async_start(loop_, &async_);

    root_.hub = this;
    root_.id = g_next_fiber_id.fetch_add(1);
    root_.is_root = true;
    root_.state = FiberState::Running;
    copy_name(&root_, "thread-root");
    ev_init(&root_.timer, &Hub::on_timer);
    root_.timer.data = &root_;
    sanitizer::on_root(root_.sanitizer);
    current_ = &root_;
    link_live(&root_);

    install_overflow_handler_for_this_thread();

    // The scheduler is a fiber like any other, minus the Task.
    Stack s = stacks.get(kSchedulerStack);
    auto* rec = new (s.top() - ((sizeof(FiberRecord) + 63) & ~std::size_t{63})) FiberRecord();
    rec->hub = this;
    rec->id = 0;
    rec->is_scheduler = true;
    rec->stack = s;
    sanitizer::on_create(rec->sanitizer, s.base, s.size);
    copy_name(rec, "hub-scheduler");
    char* sp = reinterpret_cast<char*>(rec);
    boost::context::stack_context sctx;
    sctx.sp = s.top();
    sctx.size = s.size;
    rec->ctx = boost::context::fiber(std::allocator_arg,
                                     boost::context::preallocated(sp, static_cast<std::size_t>(sp - s.base), sctx),
                                     KeepStack{}, [this](boost::context::fiber&& from) {
                                         after_switch(std::move(from));
                                         scheduler_loop();
                                         return boost::context::fiber{};
                                     });
    scheduler_ = rec;
}

Hub::~Hub() {
    // Only reached for hubs with no live fibers. The scheduler fiber is parked
    // inside scheduler_loop(); unwinding it would throw through noexcept
    // frames, and it holds nothing to clean up, so its context handle is
    // dropped without resuming it and its stack goes back to the pool.
    new boost::context::fiber(std::move(scheduler_->ctx));  // deliberately leaked (8 bytes)
    stacks.put(scheduler_->stack);
    for (void* tls : tls_cache_) fiber_tls_destroy(tls);
    destroy_fd_watches();
    os::RuntimeFdScope own_fds;  // libev closes its own fds here
    ev_loop_destroy(loop_);
}

void Hub::link_live(FiberRecord* f) noexcept {
    f->live_prev = nullptr;
    f->live_next = live_head_;
    if (live_head_) live_head_->live_prev = f;
    live_head_ = f;
}

void Hub::unlink_live(FiberRecord* f) noexcept {
    if (f->live_prev) f->live_prev->live_next = f->live_next;
    else live_head_ = f->live_next;
    if (f->live_next) f->live_next->live_prev = f->live_prev;
}

// Per-thread state across a switch: see leave_thread_state below. A fiber
// with no TLS of its own runs on the hub thread's.
__attribute__((always_inline)) inline void Hub::move_thread_pointer(FiberRecord* from, FiberRecord* to) noexcept {
    if (to->tls != from->tls) set_thread_pointer(to->tls ? to->tls : thread_tp_);
}

// ---------------------------------------------------------------------------
// Fiber lifecycle

void fiber_entry_body(FiberRecord* f) {
    if (f->ops->uncaught_terminates) {
        // No handler of ours on the stack: the unwinder's search finds none
        // and std::terminate reports the exception ("terminate called after
        // throwing..."), without unwinding, as for a thread.
        f->ops->run(f->payload);
    } else {
        try {
            f->ops->run(f->payload);
        } catch (const boost::context::detail::forced_unwind&) {
            throw;
        } catch (...) {
            f->error = std::current_exception();
        }
    }
    // Its thread_local objects die with it, as at a thread's exit.
    if (f->tls) fiber_tls_run_destructors();
}

FiberRecord* Hub::create_fiber(const SpawnOptions& options, std::size_t payload_size, std::size_t payload_align,
                               const TaskOps* ops, void** payload, Hub* owner) {
    std::size_t size = options.stack_size ? options.stack_size : config().stack_size;
    size = std::max<std::size_t>(size, 16 * 1024);
    Hub* runs_on = owner ? owner : this;
    void* tls = nullptr;
    if (options.own_thread_locals && fiber_tls_available()) {
        if (runs_on == this && !tls_cache_.empty()) {
            tls = fiber_tls_recycle(tls_cache_.back(), thread_tp_);
            tls_cache_.pop_back();
        } else {
            tls = fiber_tls_create(runs_on->thread_tp_);
            if (!tls) throw std::bad_alloc();
        }
    }
    Stack s = stacks.get(size);
    sanitizer::on_stack_taken(s.base, s.size);
    char* top = s.top();
    auto* f = new (top - ((sizeof(FiberRecord) + 63) & ~std::size_t{63})) FiberRecord();
    char* p = reinterpret_cast<char*>(f) - payload_size;
    p = reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(std::uintptr_t{payload_align} - 1));
    *payload = p;
    char* sp = reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{63});
    // The stack comes from this hub's pool even when another hub will own
    // the fiber; it returns to this pool when the fiber is released.
    f->hub = runs_on;
    f->tls = tls;
    f->id = g_next_fiber_id.fetch_add(1, std::memory_order_relaxed);
    f->stack = s;
    sanitizer::on_create(f->sanitizer, s.base, s.size);
    f->ops = ops;
    f->payload = p;
    if (options.name.empty()) {
        set_default_name(f);
    } else {
        copy_name(f, options.name);
    }
    ev_init(&f->timer, &Hub::on_timer);
    f->timer.data = f;
    boost::context::stack_context sctx;
    sctx.sp = top;
    sctx.size = s.size;
    f->ctx = boost::context::fiber(
        std::allocator_arg, boost::context::preallocated(sp, static_cast<std::size_t>(sp - s.base), sctx),
        KeepStack{}, [f](boost::context::fiber&& from) {
            Hub* h = f->hub;
            h->after_switch(std::move(from));
            f->started = true;
            fiber_entry_body(f);
            h = f->hub;  // it may have moved to another hub meanwhile
            // The fiber is finished: publish it, wake joiners, and leave for
            // good. Its stack is reclaimed by whoever runs next (after_switch),
            // once nothing executes on it any more.
            f->state = FiberState::Done;
            if (f->error && f->refs.load(std::memory_order_acquire) == 1) {
                // Detached already: nobody will ever see the exception.
                report_uncaught(f);
            }
            {
                SpinGuard g(f->joiners.lock);
                f->done.store(true, std::memory_order_release);
                while (Waiter* w = f->joiners.head) {
                    f->joiners.head = w->next;
                    w->list = nullptr;
                    wake(*w, WakeReason::Woken);
                }
                f->joiners.tail = nullptr;
            }
            h->leave(f);
            FiberRecord* next = h->pick_next();
            h->switch_from_ = f;
            h->current_ = next;
            h->running_published_.store(next, std::memory_order_release);
            next->state = FiberState::Running;
            HubCounters::bump(h->counters.switches);
            sanitizer::before_switch(f->sanitizer, next->sanitizer, true);
            h->move_thread_pointer(f, next);  // nothing of f's to save: it is done
            return std::move(next->ctx);
        });
    return f;
}

void Hub::start(FiberRecord* f) noexcept {
    if (f->hub != this) {
        f->spawn_node.owner = f;
        f->hub->post_remote(&f->spawn_node);
        return;
    }
    adopt(f, counters.spawned);
}

// A fiber arrives on this hub (new, or moved here; `arrivals` counts which),
// and leaves it (ended, or moving on). Hub thread only.
void Hub::adopt(FiberRecord* f, std::atomic<std::uint64_t>& arrivals) noexcept {
    link_live(f);
    live_count_.store(live_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    HubCounters::bump(arrivals);
    make_ready(f);
}

void Hub::leave(FiberRecord* f) noexcept {
    unlink_live(f);
    live_count_.store(live_count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void Hub::request_moves(Hub* to, int count) noexcept {
    move_budget_.store(0, std::memory_order_relaxed);
    move_to_.store(to, std::memory_order_release);
    move_budget_.store(to && to != this ? count : 0, std::memory_order_release);
}

bool Hub::move_running_if_asked() noexcept {
    FiberRecord* self = current_;
    if (!self->tls || self->is_root || self->is_scheduler) return false;
    int left = move_budget_.load(std::memory_order_acquire);
    do {
        if (left <= 0) return false;
    } while (!move_budget_.compare_exchange_weak(left, left - 1, std::memory_order_acq_rel));
    Hub* to = move_to_.load(std::memory_order_acquire);
    if (!to || to == this) return false;
    leave(self);
    __atomic_store_n(&self->hub, to, __ATOMIC_RELEASE);
    self->state = FiberState::Moving;
    switch_to(pick_next());
    // Running on `to`'s thread now (adopt_moved).
    return true;
}

// On the new hub's thread, before the fiber runs here.
void Hub::adopt_moved(FiberRecord* f) noexcept {
    fiber_tls_rehome(f->tls, thread_tp_);
    adopt(f, counters.moved_in);
}

void Hub::release(FiberRecord* f) noexcept {
    if (f->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (f->error && !f->error_observed && f->done.load()) {
        // Finished with an exception, and the last handle went away unjoined.
        bool cancelled = false;
        try {
            std::rethrow_exception(f->error);
        } catch (const Cancelled&) {
            cancelled = true;
        } catch (...) {
        }
        if (!cancelled) report_uncaught(f);
    }
    f->ops->destroy(f->payload);
    if (f->tls) {
        // f is done, so its block is not the running context's. Kept for
        // the owner's next thread-fiber when released on the owner's thread.
        Hub* here = tls_hub_;
        if (here == f->hub && here->tls_cache_.size() < kTlsCacheSize) here->tls_cache_.push_back(f->tls);
        else fiber_tls_destroy(f->tls);
    }
    Stack s = f->stack;
    if (!StackPool::canary_intact(s)) report_stack_overflow(f);
    sanitizer::on_destroy(f->sanitizer);
    f->~FiberRecord();
    // A stack goes back to the pool it came from (the creating hub's, which
    // may not be the owner's), so no pool grows at another's expense.
    if (Hub* here = tls_hub_; here && here->stacks.owns(s)) {
        here->stacks.put(s);
    } else {
        StackPool::recycle(s);
    }
}

// ---------------------------------------------------------------------------
// Switching

// The switch path is inlined into its callers on purpose: after a context
// switch every return is mispredicted (the return stack holds the other
// fiber's calls), so each call level between a yield and the jump costs
// several ns.
__attribute__((always_inline)) inline FiberRecord* Hub::pick_next() noexcept {
    if (direct_budget_ > 0 && run_head_) {
        --direct_budget_;
        FiberRecord* f = run_head_;
        run_head_ = f->run_next;
        if (!run_head_) run_tail_ = nullptr;
        --run_length_;
        return f;
    }
    return scheduler_;
}

__attribute__((always_inline)) inline void Hub::switch_to(FiberRecord* next) noexcept {
    FiberRecord* self = current_;
    if (next == self) {  // a yield with nobody else runnable
        self->state = FiberState::Running;
        return;
    }
    if (!self->stack.guarded && self->stack.base && !StackPool::canary_intact(self->stack)) report_stack_overflow(self);
    current_ = next;
    running_published_.store(next, std::memory_order_release);
    switch_from_ = self;
    next->state = FiberState::Running;
    HubCounters::bump(counters.switches);
    sanitizer::before_switch(self->sanitizer, next->sanitizer, false);
    leave_thread_state(self, next);
    boost::context::fiber from = std::move(next->ctx).resume();
    // Resumed, on the hub that owns us now: another one if we moved.
    self->hub->after_switch(std::move(from));
}

// Per-thread state across a switch (thread_state.hpp, fiber_tls.hpp). From
// here to the jump nothing may touch TLS: the thread pointer may already be
// the next fiber's.
__attribute__((always_inline)) inline void Hub::leave_thread_state(FiberRecord* from, FiberRecord* to) noexcept {
    if (!from->tls) {
        from->saved_errno = *errno_slot_;
        from->saved_eh = *eh_slot_;
    }
    move_thread_pointer(from, to);
}


__attribute__((always_inline)) inline void Hub::enter_thread_state(FiberRecord* f) noexcept {
    if (!f->tls) {
        *errno_slot_ = f->saved_errno;
        *eh_slot_ = f->saved_eh;
    }
}

__attribute__((always_inline)) inline void Hub::after_switch(boost::context::fiber&& from) noexcept {
    FiberRecord* prev = switch_from_;
    sanitizer::after_switch(current_->sanitizer, prev ? &prev->sanitizer : nullptr);
    switch_from_ = nullptr;
    if (prev->state >= FiberState::Done) [[unlikely]] {
        finish_switch_from(prev, std::move(from));
    } else {
        prev->ctx = std::move(from);
    }
    enter_thread_state(current_);
}

// The context that switched away is done, or moving to another hub.
void Hub::finish_switch_from(FiberRecord* prev, boost::context::fiber&& from) noexcept {
    if (prev->state == FiberState::Done) {
        // The running fiber's own reference. What release() does (freeing,
        // trimming stacks) must not show in the errno of the fiber we are
        // switching into, whose TLS is current here.
        const int saved_errno = errno;
        release(prev);
        errno = saved_errno;
        return;
    }
    // Moving: only now, with its context saved and nothing running on its
    // stack, may the new hub see it.
    prev->ctx = std::move(from);
    disarm_unwaited_fds();
    prev->spawn_node.kind = RemoteNode::kMove;
    prev->spawn_node.owner = prev;
    prev->hub->post_remote(&prev->spawn_node);
}

__attribute__((always_inline)) inline void Hub::make_ready(FiberRecord* f) noexcept {
    if (f->state == FiberState::Abandoned) return;  // left behind by fork()
    f->state = FiberState::Runnable;
    f->run_next = nullptr;
    if (run_tail_) run_tail_->run_next = f;
    else run_head_ = f;
    run_tail_ = f;
    ++run_length_;
}

void Hub::yield() noexcept { yield_inline(); }

__attribute__((always_inline)) inline void Hub::yield_inline() noexcept {
    // Queue ourselves at the back; the next runnable fiber (or, with the
    // tick's budget spent, the scheduler) runs first.
    make_ready(current_);
    switch_to(pick_next());
}

// ---------------------------------------------------------------------------
// Parking and waking

WakeReason Hub::precheck(const ParkOptions& o) noexcept {
    FiberRecord* self = current_;
    if (o.ends_on_cancel && self->cancel_requested.load(std::memory_order_acquire)) {
        self->cancel_requested.store(false, std::memory_order_relaxed);
        return WakeReason::Cancelled;
    }
    Clock::time_point scope = o.bounded_by_scope ? self->scoped_deadline : Clock::time_point::max();
    if (scope != Clock::time_point::max() || o.deadline != Clock::time_point::max()) {
        Clock::time_point now = Clock::now();
        if (scope <= now && scope <= o.deadline) return WakeReason::Expired;
        if (o.deadline <= now) return WakeReason::TimedOut;
    }
    return WakeReason::Waiting;
}

WakeReason Hub::park(Waiter& w, const ParkOptions& o) noexcept {
    FiberRecord* self = current_;
    // w.fiber is set by the caller before w is linked anywhere: a waker on
    // another thread may read it from then on, so writing it here would race.
    if (w.fiber != self) {
        os::write_stderr("green: internal error: Waiter parked without its fiber set\n");
        std::abort();
    }
    w.cancellable = o.ends_on_cancel;
    w.interruptible = o.ends_on_interrupt;
    self->parked = &w;
    self->parked_at = ev_now(loop_);
    Clock::time_point scope = o.bounded_by_scope ? self->scoped_deadline : Clock::time_point::max();
    Clock::time_point deadline = std::min(scope, o.deadline);
    bool timed = deadline != Clock::time_point::max();
    if (timed) {
        self->timer_deadline = deadline;
        ev_timer_set(&self->timer, seconds_until(deadline), 0.0);
        ev_timer_start(loop_, &self->timer);
        add(parked_on_timer, 1);
    }
    self->state = FiberState::Suspended;
    switch_to(pick_next());
    // Running again: exactly one waker won.
    if (timed) {
        ev_timer_stop(loop_, &self->timer);
        add(parked_on_timer, -1);
    }
    self->parked = nullptr;
    WakeReason r = w.reason.load(std::memory_order_acquire);
    if (r == WakeReason::TimedOut && scope <= o.deadline) r = WakeReason::Expired;
    if (r == WakeReason::Cancelled) self->cancel_requested.store(false, std::memory_order_relaxed);
    return r;
}

bool Hub::claim(Waiter& w, WakeReason reason) noexcept {
    WakeReason expected = WakeReason::Waiting;
    return w.reason.compare_exchange_strong(expected, reason, std::memory_order_acq_rel);
}

void Hub::schedule(Waiter& w) noexcept {
    FiberRecord* f = w.fiber;
    Hub* owner = f->hub;
    if (!owner) [[unlikely]] {
        // A plain thread: it returns once it sees the word, so `w` may be gone
        // by the time the wake reaches the kernel (a harmless spurious wake).
        w.thread_woken.store(1, std::memory_order_release);
        os::futex_wake(&w.thread_woken, 1);
        return;
    }
    if (owner == tls_hub_) {
        owner->make_ready(f);
    } else {
        w.remote.kind = RemoteNode::kWake;
        w.remote.owner = &w;
        owner->post_remote(&w.remote);
    }
}

bool Hub::wake(Waiter& w, WakeReason reason) noexcept {
    if (!claim(w, reason)) return false;
    schedule(w);
    return true;
}

void Hub::on_timer(struct ev_loop* loop, ev_timer* t, int) noexcept {
    auto* f = static_cast<FiberRecord*>(t->data);
    double left = seconds_until(f->timer_deadline);
    if (left > 0) {
        // libev measures from its cached loop time, which may lag: re-arm
        // for the remainder rather than wake early.
        ev_timer_set(t, left, 0.0);
        ev_timer_start(loop, t);
        return;
    }
    if (f->parked) wake(*f->parked, WakeReason::TimedOut);
}

void Hub::request_cancel(FiberRecord* f) noexcept {
    f->cancel_requested.store(true, std::memory_order_release);
    if (owner_of(f) == tls_hub_) {
        deliver_cancel(f);
        return;
    }
    post_to_owner(f, f->cancel_posted, f->cancel_node);
}

// From a thread other than f's hub's: hands `node` to f's hub, once until that
// hub takes it (`posted`); the record stays alive while queued.
void Hub::post_to_owner(FiberRecord* f, std::atomic<bool>& posted, RemoteNode& node) noexcept {
    if (posted.exchange(true)) return;
    f->refs.fetch_add(1, std::memory_order_relaxed);
    node.owner = f;
    owner_of(f)->post_remote(&node);
}

void Hub::deliver_cancel(FiberRecord* f) noexcept {
    if (f->state == FiberState::Suspended && f->parked && f->parked->cancellable &&
        f->cancel_requested.load(std::memory_order_acquire)) {
        wake(*f->parked, WakeReason::Cancelled);
    }
}

void Hub::request_interrupt(FiberRecord* f) noexcept {
    f->interrupt_pending.store(true, std::memory_order_seq_cst);
    if (owner_of(f) == tls_hub_) {
        tls_hub_->deliver_interrupt(f);
        return;
    }
    post_to_owner(f, f->interrupt_posted, f->interrupt_node);
}

// An interrupt concerns the wait in progress when it reaches the fiber's hub
// (as a signal interrupts only the blocking call it arrives during): a fiber
// that is not parked in an interruptible wait by then is left alone.
void Hub::deliver_interrupt(FiberRecord* f) noexcept {
    if (!f->interrupt_pending.exchange(false, std::memory_order_acq_rel)) return;
    if (f->state == FiberState::Suspended && f->parked && f->parked->interruptible)
        wake(*f->parked, WakeReason::Interrupted);
}

void Hub::post_remote(RemoteNode* node) noexcept {
    // Once the node is pushed, the hub may run the woken fiber, finish, and
    // its thread may exit and retire the hub while we still touch it below;
    // the exiting thread waits for posts_in_flight_ to drain first.
    posts_in_flight_.fetch_add(1, std::memory_order_seq_cst);
    RemoteNode* head = remote_head_.load(std::memory_order_relaxed);
    do {
        node->next = head;
    } while (!remote_head_.compare_exchange_weak(head, node, std::memory_order_seq_cst, std::memory_order_relaxed));
    if (head == nullptr) {
        hub_unstick(this);
        ev_async_send(loop_, &async_);
    }
    posts_in_flight_.fetch_sub(1, std::memory_order_release);
}

void Hub::post_dump_request(RemoteNode* node) noexcept {
    // The registry lock is held (it keeps this hub from being retired), so
    // unstick without taking it again, as post_fd_closing does.
    RemoteNode* head = remote_head_.load(std::memory_order_relaxed);
    do {
        node->next = head;
    } while (!remote_head_.compare_exchange_weak(head, node, std::memory_order_seq_cst, std::memory_order_relaxed));
    hub_unstick_registry_locked(this);
    ev_async_send(loop_, &async_);
}

void Hub::drain_remote() noexcept {
    // The scheduler calls this every tick; a plain load keeps the common case
    // (nothing posted) off a locked exchange. A node pushed right after the
    // load is no different from one pushed right after the exchange: the next
    // tick takes it, the scheduler re-checks before blocking, and the poster
    // that found the stack empty has sent the ev_async.
    if (!remote_head_.load(std::memory_order_acquire)) return;
    RemoteNode* list = remote_head_.exchange(nullptr, std::memory_order_acquire);
    // The stack is LIFO; reverse it so wakes are served in arrival order.
    RemoteNode* fifo = nullptr;
    while (list) {
        RemoteNode* next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        RemoteNode* next = fifo->next;
        if (fifo->kind == RemoteNode::kWake) {
            make_ready(static_cast<Waiter*>(fifo->owner)->fiber);
        } else if (fifo->kind == RemoteNode::kSpawn) {
            adopt(static_cast<FiberRecord*>(fifo->owner), counters.spawned);
        } else if (fifo->kind == RemoteNode::kMove) {
            adopt_moved(static_cast<FiberRecord*>(fifo->owner));
        } else if (auto* moved = static_cast<FiberRecord*>(fifo->owner);
                   (fifo->kind == RemoteNode::kInterrupt || fifo->kind == RemoteNode::kCancel) && owner_of(moved) != this) {
            // Posted here just before the fiber moved on: its new hub delivers it.
            owner_of(moved)->post_remote(fifo);
        } else if (fifo->kind == RemoteNode::kInterrupt) {
            auto* f = static_cast<FiberRecord*>(fifo->owner);
            f->interrupt_posted.store(false, std::memory_order_release);
            deliver_interrupt(f);
            release(f);
        } else if (fifo->kind == RemoteNode::kDump) {
            serve_dump_request(this, fifo);
        } else {
            auto* f = static_cast<FiberRecord*>(fifo->owner);
            f->cancel_posted.store(false, std::memory_order_release);
            deliver_cancel(f);
            release(f);
        }
        fifo = next;
    }
}

void Hub::on_async(struct ev_loop*, ev_async* a, int) noexcept { static_cast<Hub*>(a->data)->drain_remote(); }

void Hub::park_idle() noexcept {
    Waiter me(current_, WaitKind::Idle);
    park(me, ParkOptions::uncancellable());
}

void Hub::after_fork_in_child() noexcept {
    // Only the fiber that called fork() exists in the child, as only the
    // calling thread does unpatched. Everything else on this hub is
    // abandoned: never scheduled again, its timers and fd waits dropped.
    tid_ = os::gettid();
    for (FiberRecord* f = live_head_; f; f = f->live_next) {
        if (f == current_) continue;
        ev_timer_stop(loop_, &f->timer);
        f->state = FiberState::Abandoned;
    }
    run_head_ = run_tail_ = nullptr;
    run_length_ = 0;
    direct_budget_ = 0;
    remote_head_.store(nullptr);
    closing_.clear();
    closing_pending_.store(false);
    live_count_.store(current_ == &root_ ? 0 : 1, std::memory_order_relaxed);
    parked_on_io.store(0, std::memory_order_relaxed);
    parked_on_timer.store(0, std::memory_order_relaxed);
    run_scope_depth = 0;
    drop_fd_waiters();
    ev_loop_fork(loop_);
}

// ---------------------------------------------------------------------------
// The run loop

// Each step of the tick is a phase of its own, inlined into the loop: the
// loop runs every kMinDirectSwitches switches or more often, and on every
// wake that crosses hubs.

// Step 1: work other threads handed to this hub.
__attribute__((always_inline)) inline void Hub::take_posted_work() noexcept {
    drain_remote();
    if (closing_pending_.load(std::memory_order_acquire)) process_fd_closings();
}

// Step 2: the run queue's head, and from it fiber to fiber within a budget.
__attribute__((always_inline)) inline void Hub::run_ready() noexcept {
    const std::size_t budget = std::max(run_length_ - 1, kMinDirectSwitches);
    direct_budget_ = budget;
    FiberRecord* first = run_head_;
    run_head_ = first->run_next;
    if (!run_head_) run_tail_ = nullptr;
    --run_length_;
    switch_to(first);
    runs_since_poll_ += 1 + (budget - direct_budget_);
    direct_budget_ = 0;
}

// Step 3, while fibers are runnable: fd events and timers without waiting.
__attribute__((always_inline)) inline void Hub::poll_events_now() noexcept {
    runs_since_poll_ = 0;
    ev_run(loop_, EVRUN_NOWAIT);
    HubCounters::bump(loop_turns_);
}

// Before blocking: give idle stacks' pages back a few at a time, looking at
// I/O in between. False when there was nothing to trim.
__attribute__((always_inline)) inline bool Hub::trim_idle_stacks() noexcept {
    if (!stacks.trim_some()) return false;
    ev_run(loop_, EVRUN_NOWAIT);
    return true;
}

// Before blocking: nothing of ours (an fd wait, a timer, a pool job) could
// wake anyone here; only another thread can.
__attribute__((always_inline)) inline bool Hub::nothing_can_wake_us() const noexcept {
    return parked_on_io.load(std::memory_order_relaxed) == 0 && parked_on_timer.load(std::memory_order_relaxed) == 0 &&
           pool_jobs_in_flight().load() == 0;
}

// Tells the deadlock detector this hub is stuck (which may end the process
// or wake a green::run() caller). False if work arrived meanwhile: the hub
// is unstuck again and must not block.
__attribute__((always_inline)) inline bool Hub::report_stuck() noexcept {
    hub_became_stuck(this);
    if (has_pending_work()) {
        hub_unstick(this);
        return false;
    }
    return true;
}

// Step 3, with nothing runnable: block until an fd, a timer or a remote wake
// fires.
__attribute__((always_inline)) inline void Hub::poll_events_until_woken() noexcept {
    in_poll_.store(true, std::memory_order_relaxed);
    ev_run(loop_, EVRUN_ONCE);
    in_poll_.store(false, std::memory_order_relaxed);
    HubCounters::bump(loop_turns_);
    hub_unstick(this);
}

void Hub::scheduler_loop() {
    for (;;) {
        take_posted_work();
        if (run_head_) {
            run_ready();
            if (run_head_) {
                if (runs_since_poll_ >= kPollEveryRuns) poll_events_now();
                continue;
            }
            runs_since_poll_ = 0;  // the count is of fibers run back to back
        }
        if (remote_head_.load(std::memory_order_acquire)) continue;
        if (trim_idle_stacks()) continue;
        if (nothing_can_wake_us() && !report_stuck()) continue;
        poll_events_until_woken();
    }
}

}  // namespace green::detail

namespace green::this_fiber {
// Here, not in fiber.cpp, so the whole yield inlines into one frame.
void yield() { detail::Hub::current().yield_inline(); }
}  // namespace green::this_fiber
