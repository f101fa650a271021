// Knowing when no fiber can ever run again, and saying who waits on what.
//
// A hub is "stuck" while it blocks in its loop with nothing of its own that
// could wake it: no runnable fiber, no fiber waiting on an fd or a deadline.
// Only another thread can then wake it (a fiber on another hub, a pool job,
// or a foreign thread holding an ExternalWaker). The process is deadlocked
// when every registered hub is stuck, no pool job is in flight and no
// ExternalWaker exists. Anyone who posts work to a stuck hub unsticks it
// *before* the hub can act on it, under the registry lock, so the count can
// never reach zero while a wake is in transit.
//
// On deadlock: the report (every parked fiber, hub by hub, with what it waits
// on) goes to stderr. If some thread is inside green::run(), its root fiber is
// woken with WakeReason::Deadlock and run() throws green::Deadlock carrying
// the report; otherwise the process exits with status 3.
// The same file holds the other last words: stack overflow and exceptions
// escaping detached fibers.
#include <green/run.hpp>

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backtrace.hpp"
#include "fork.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "registry.hpp"
#include "spinlock.hpp"

namespace green::detail {

namespace {

std::size_t g_stuck = 0;                   // guarded by the registry lock
std::string* g_deadlock_report = nullptr;  // guarded by the registry lock
std::atomic<int> g_pool_jobs{0};
std::atomic<int> g_external{0};

constexpr int kDeadlockExitStatus = 3;

// Fibers a deadlock report should name: parked, and not an idle hub root.
bool reportable(const FiberRecord* f) {
    return f->state == FiberState::Suspended && !parked_idle(f);
}

// Returns true when nothing is wrong but nothing is left either: the caller
// must then end the process normally, after releasing the registry lock
// (exit() runs handlers that may take it).
bool declare_deadlock_locked() {
    bool anyone_waits = false;
    for (Hub* h : registered_hubs_locked())
        for (const FiberRecord* f = h->live_fibers(); f && !anyone_waits; f = f->live_next) anyone_waits = reportable(f);
    if (!anyone_waits) return true;  // see hub_became_stuck
    std::string report =
        "green: deadlock: no fiber can ever run again (every hub is idle; no fd, timer or blocking-pool job "
        "is pending)\n";
    // Every hub is stuck and we hold the registry lock, so no hub can resume
    // its fibers while a helper thread (room for libdw's stack) walks them.
    run_with_room(
        [](void* out) {
            try {
                Symbolizer names;
                ReportStacks stacks{&names, {}};
                for (Hub* h : registered_hubs_locked()) h->append_report(*static_cast<std::string*>(out), &stacks);
            } catch (...) {
                // Out of memory: whatever text was built stands.
            }
        },
        &report);
    std::vector<Hub*> with_run;
    for (Hub* h : registered_hubs_locked()) {
        if (h->run_scope_depth > 0) with_run.push_back(h);
    }
    if (with_run.empty()) {
        os::write_stderr(report.data(), report.size());
        // What the program printed through stdio must not be lost with it
        // (exit() would run handlers that may wait on the parked fibers).
        std::fflush(nullptr);
        _exit(kDeadlockExitStatus);
    }
    if (!g_deadlock_report) g_deadlock_report = new std::string();
    *g_deadlock_report = report;
    for (Hub* h : with_run) {
        // The root is parked (the hub is stuck), so its Waiter is valid.
        FiberRecord* root = h->root_fiber();
        if (root->parked) {
            h->stuck = false;
            --g_stuck;
            Hub::wake(*root->parked, WakeReason::Deadlock);
        }
    }
    return false;
}

}  // namespace

std::atomic<int>& pool_jobs_in_flight() noexcept { return g_pool_jobs; }
std::atomic<int>& external_wakers() noexcept { return g_external; }

// fork(): in the child only the forking thread's hub is left, and it is
// running; the pool's jobs were lost with its threads.
void deadlock_fork_child(Hub* survivor) noexcept {
    g_stuck = 0;
    if (survivor) survivor->stuck.store(false);
    g_pool_jobs.store(0);
}

bool hub_became_stuck_locked(Hub* h) {
    SpinGuard g(registry_lock());
    if (!h->registered || h->stuck) return false;
    h->stuck = true;
    // The Dekker re-check must happen here, before this hub is counted: a
    // poster that read stuck == false (so will not unstick us) pushed its
    // work before that read, and the seq_cst store above orders this load
    // after it. The scheduler's own re-check after we return came too late:
    // if we were the last hub to get stuck, the deadlock had already been
    // declared, with a wake sitting in our queue (seen as rare false
    // green::Deadlock reports between two hubs ping-ponging wakes).
    if (h->has_pending_work()) {
        h->stuck = false;
        return false;
    }
    ++g_stuck;
    if (g_stuck == registered_hubs_locked().size() && g_pool_jobs.load() == 0 && g_external.load() == 0)
        return declare_deadlock_locked();
    return false;
}

void hub_became_stuck(Hub* h) {
    // Every hub idle and nobody waiting: all work is done (under the shim,
    // main called pthread_exit and the last thread finished). Like the last
    // thread of a process exiting unpatched. Outside the lock: exit() runs
    // handlers that may need it.
    if (hub_became_stuck_locked(h)) std::exit(0);
}

void hub_unstick(Hub* h) noexcept {
    // Dekker-style with hub_became_stuck: the poster publishes its work, then
    // reads `stuck`; the hub sets `stuck`, then re-reads its queues. With
    // both sides sequentially consistent, at least one sees the other.
    if (!h->stuck.load(std::memory_order_seq_cst)) return;
    SpinGuard g(registry_lock());
    if (h->stuck) {
        h->stuck = false;
        --g_stuck;
    }
}

void hub_unstick_registry_locked(Hub* h) noexcept {
    if (h->stuck.load(std::memory_order_seq_cst)) {
        h->stuck = false;
        --g_stuck;
    }
}

std::string take_deadlock_report() {
    SpinGuard g(registry_lock());
    return g_deadlock_report ? *g_deadlock_report : std::string("green: deadlock");
}

// Caller holds the registry lock.
const FiberRecord* find_fiber_locked(std::uint64_t id) {
    for (Hub* h : registered_hubs_locked())
        for (const FiberRecord* f = h->live_fibers(); f; f = f->live_next)
            if (f->id == id) return f;
    return nullptr;
}

namespace {

const FiberRecord* find_fiber_on(const Hub* h, std::uint64_t id) {
    for (const FiberRecord* f = h->live_fibers(); f; f = f->live_next)
        if (f->id == id) return f;
    return nullptr;
}

// `only`: look lock holders up on this hub alone (its own thread calls; the
// other hubs' lists are theirs). Null: every hub (registry lock held, all
// hubs stuck).
void describe(const FiberRecord* f, std::string& out, bool nested, const Hub* only) {
    char buf[160];
    const Waiter* w = f->parked;
    if (!w) {
        out += "is suspended";
        return;
    }
    switch (w->kind) {
        case WaitKind::Fd: {
            // What the kernel says of the fd now, and whether the hub still
            // asks libev for it: a fiber parked long on an fd that is ready,
            // or unwatched, was not woken by the runtime; one on an fd that
            // is not ready waits on its peer.
            const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(w->object));
            const int want = static_cast<int>(w->detail);
            pollfd p{fd, static_cast<short>(((want & kReadable) ? POLLIN : 0) | ((want & kWritable) ? POLLOUT : 0)), 0};
            const long ready = os::raw_syscall6(SYS_poll, reinterpret_cast<long>(&p), 1, 0, 0, 0, 0);
            const int watched = f->hub ? f->hub->fd_watch_interest(fd) : -1;
            std::snprintf(buf, sizeof buf, "waits for fd %d to become %s (kernel: %s; hub watcher: %s)", fd,
                          want == kReadable ? "readable" : want == kWritable ? "writable" : "ready",
                          ready < 0 ? "cannot tell" : ready == 0 ? "not ready" : (p.revents & POLLNVAL) ? "not open" : "ready now",
                          watched < 0 ? "none" : (watched & want) == want ? "armed" : "not armed");
            out += buf;
            return;
        }
        case WaitKind::Join: {
            auto* target = static_cast<const FiberRecord*>(w->object);
            std::snprintf(buf, sizeof buf, "waits to join fiber %" PRIu64 " \"%s\"", target->id, target->name);
            out += buf;
            return;
        }
        case WaitKind::Sleep: out += "sleeps"; return;
        case WaitKind::Pool: out += "waits for a blocking-pool job"; return;
        default: break;
    }
    const char* what = wait_kind_name(w->kind);
    if (!w->holder) {
        std::snprintf(buf, sizeof buf, "waits on %s %p", what, w->object);
        out += buf;
        return;
    }
    // Reports are built while every hub is stuck (registry lock held),
    // so the owner cannot change under us and the lock is alive as long
    // as a fiber is parked on it.
    // Bit 63 is free for the lock's own flags (fiber ids never reach it).
    std::uint64_t holder = w->holder->load(std::memory_order_relaxed) & ~(std::uint64_t{1} << 63);
    const FiberRecord* owner = only ? find_fiber_on(only, holder) : find_fiber_locked(holder);
    std::snprintf(buf, sizeof buf, "waits for %s %p held by fiber %" PRIu64 " \"%s\"", what, w->object, holder,
                  owner ? owner->name : "?");
    out += buf;
    if (owner && owner != f && nested) {
        out += ", which ";
        describe(owner, out, false, only);
    }
}

}  // namespace

void describe_wait(const FiberRecord* f, std::string& out, bool nested) { describe(f, out, nested, nullptr); }
void describe_wait_on_hub(const FiberRecord* f, const Hub* h, std::string& out) { describe(f, out, true, h); }

void Hub::append_report(std::string& out, ReportStacks* stacks) const {
    char buf[128];
    std::snprintf(buf, sizeof buf, "  hub %u (thread %d):\n", index_, static_cast<int>(tid_));
    out += buf;
    for (FiberRecord* f = live_head_; f; f = f->live_next) {
        if (!reportable(f)) continue;
        std::snprintf(buf, sizeof buf, "    fiber %" PRIu64 " \"%s\" ", f->id, f->name);
        out += buf;
        describe_wait(f, out);
        out += '\n';
        if (!stacks) continue;
        Trace t;
        if (!capture_suspended(f, t)) continue;
        // A fiber parked exactly where an earlier one is adds nothing.
        std::string key(reinterpret_cast<const char*>(t.pc), sizeof(void*) * static_cast<std::size_t>(t.depth));
        auto [it, fresh] = stacks->first_with.emplace(std::move(key), f->id);
        if (fresh) {
            stacks->names->append(t, out, "        ");
        } else {
            std::snprintf(buf, sizeof buf, "        same stack as fiber %" PRIu64 "\n", it->second);
            out += buf;
        }
    }
}

void report_stack_overflow(FiberRecord* f) noexcept {
    // May run in a signal handler: no allocation, only write(2).
    char buf[400];
    int n = std::snprintf(buf, sizeof buf,
                          "green: stack overflow in fiber %" PRIu64 " \"%s\" (stack of %zu bytes, %s). Raise "
                          "GREEN_STACK_SIZE or SpawnOptions::stack_size.\n",
                          f->id, f->name, f->stack.size, f->stack.guarded ? "guard page hit" : "canary overwritten");
    os::write_stderr(buf, static_cast<std::size_t>(n));
    signal(SIGABRT, SIG_DFL);
    abort();
}

void report_uncaught(FiberRecord* f) noexcept {
    std::string what = "unknown exception";
    try {
        std::rethrow_exception(f->error);
    } catch (const Cancelled&) {
        return;  // the normal end of a cancelled fiber
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
    }
    f->error_observed = true;
    char head[128];
    std::snprintf(head, sizeof head, "green: detached fiber %" PRIu64 " \"%s\" ended with an exception: ", f->id, f->name);
    std::string line = std::string(head) + what + "\n";
    os::write_stderr(line.data(), line.size());
}

}  // namespace green::detail

namespace green {

ExternalWaker::ExternalWaker() noexcept { detail::external_wakers().fetch_add(1); }
ExternalWaker::~ExternalWaker() { detail::external_wakers().fetch_sub(1); }

}  // namespace green
