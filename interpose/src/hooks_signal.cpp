// Signals as the program would see them with real threads (the model is in
// signals.hpp and ARCHITECTURE.md "Signals").
//
// Why it exists: several thread-fibers share one OS thread, so the kernel's
// per-thread signal state (mask, pending set, who a handler interrupts) cannot
// be left to the kernel. The shim takes the signals it manages away from the
// kernel's delivery (every hub thread blocks them) and delivers them itself:
//  - each hub reads a signalfd (at a high fd number, close-on-exec) whose mask
//    holds exactly the signals some thread-fiber would accept now (does not
//    block it, or waits for it in sigwait*); the others stay pending in the
//    kernel, where sigpending() and the program's own signalfd see them;
//  - a signal read goes to a sigwait in progress, else to the main thread if
//    it does not block it, else to the first thread that does not (the
//    kernel's order); ignored ones are dropped, default actions are taken by
//    re-raising the signal on the hub thread with it unblocked;
//  - a handler runs on a fiber of its own on the target's hub, standing in for
//    the target (pthread_self() and the signal mask are the target's), then
//    interrupts the target's wait in progress (Hub::request_interrupt); the
//    hook of that wait decides EINTR or restart (signals_eintr).
// Invariants: the registry lock guards the thread list, the per-signal counts
// and the signalfd mask; a SigState stays registered, and its memory valid,
// while a handler runs for it (signals_thread_ended waits for them).
#include "shim_fds.hpp"
#include "signals.hpp"

#include <ev.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fd_table.hpp"
#include "hook_context.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "real.hpp"
#include "spinlock.hpp"

using namespace green;
using namespace green::interpose;
using detail::FiberRecord;
using detail::Hub;
using detail::SpinGuard;

namespace {

constexpr int kMaxSig = 64;
constexpr std::uint64_t bit(int sig) noexcept { return std::uint64_t{1} << (sig - 1); }

// Signals left to the kernel: synchronous ones (they must reach the thread
// that faulted, and the runtime's own SIGSEGV handler), SIGPIPE and SIGXFSZ
// (sent to the thread whose write failed, which is the running fiber),
// profiling timers (they sample whatever runs), glibc's internal 32 and 33,
// and the two that cannot be caught.
constexpr std::uint64_t kUnmanaged = bit(SIGKILL) | bit(SIGSTOP) | bit(SIGSEGV) | bit(SIGBUS) | bit(SIGFPE) |
                                     bit(SIGILL) | bit(SIGTRAP) | bit(SIGSYS) | bit(SIGABRT) | bit(SIGPIPE) |
                                     bit(SIGXFSZ) | bit(SIGXCPU) | bit(SIGPROF) | bit(SIGVTALRM) | bit(32) | bit(33);
constexpr std::uint64_t kManaged = ~kUnmanaged;
constexpr std::uint64_t kUnblockable = bit(SIGKILL) | bit(SIGSTOP) | bit(32) | bit(33);

std::atomic<bool> g_started{false};
std::atomic<std::uint32_t> g_lock{0};
SigState g_main;
SigState* g_head = nullptr;  // main first, then threads in creation order
SigState* g_tail = nullptr;
// Registered threads by mask: programs have a handful of distinct masks, so
// a thread's start and end cost a short scan, not a pass over 64 signals.
struct MaskCount {
    std::uint64_t mask;
    int threads;
};
constexpr int kMaskSlots = 64;
MaskCount g_masks[kMaskSlots];
int g_nmasks = 0;
int g_overflow = 0;  // threads whose mask found no slot: accept everything for them
int g_waiting[kMaxSig + 1];    // sigwait* in progress for it
std::uint64_t g_fd_mask = 0;   // what the hubs' signalfds read
std::uint64_t g_proc_pending = 0;  // taken from the kernel, nobody accepted it (yet)
siginfo_t g_info[kMaxSig + 1];     // the last siginfo of each signal
int g_fds[64];
int g_nfds = 0;
// Each hub's signalfd, by hub index (not thread_local: a thread-fiber may
// have a TLS block of its own).
constexpr unsigned kMaxHubIndex = 256;
std::atomic<int> g_hub_fd[kMaxHubIndex];
int hub_sigfd() noexcept {
    Hub* h = Hub::current_if_any();
    return h && h->index() < kMaxHubIndex ? g_hub_fd[h->index()].load(std::memory_order_relaxed) - 1 : -1;
}
SigState* g_forking = nullptr;      // set by fork_prepare
pthread_t g_main_thread{};          // main's real pthread_t
SigState* g_last_forker = nullptr;  // SIGCHLD's preferred thread, as the kernel's
// Signals with a handler installed (hooked sigaction/signal): a wait that a
// handler could interrupt is not a deadlock.
std::atomic<std::uint64_t> g_handled{0};

// Handler fibers standing in for a thread that has no handle (main).
struct StandIn {
    FiberRecord* fiber;
    SigState* state;
};
StandIn g_stand_ins[64];

sigset_t to_set(std::uint64_t bits) noexcept {
    sigset_t s;
    sigemptyset(&s);
    for (int sig = 1; sig <= kMaxSig; ++sig)
        if (bits & bit(sig)) sigaddset(&s, sig);
    return s;
}

std::uint64_t from_set(const sigset_t* s) noexcept {
    std::uint64_t bits = 0;
    for (int sig = 1; sig <= kMaxSig; ++sig)
        if (sigismember(s, sig) == 1) bits |= bit(sig);
    return bits;
}

int lowest(std::uint64_t bits) noexcept { return __builtin_ctzll(bits) + 1; }

auto real_sigmask() noexcept { return GREEN_NEXT(pthread_sigmask); }

// --- registry (lock held) ----------------------------------------------------

// Adds d threads with `mask`; true if the set of masks present changed
// (the signalfd mask may change).
bool count_mask(std::uint64_t mask, int d) noexcept {
    for (int i = 0; i < g_nmasks; ++i) {
        if (g_masks[i].mask != mask) continue;
        g_masks[i].threads += d;
        if (g_masks[i].threads != 0) return false;
        g_masks[i] = g_masks[--g_nmasks];
        return true;
    }
    if (d < 0) {  // counted as overflow when it came
        --g_overflow;
        return g_overflow == 0;
    }
    if (g_nmasks == kMaskSlots) {
        ++g_overflow;
        return g_overflow == 1;
    }
    g_masks[g_nmasks++] = MaskCount{mask, d};
    return true;
}

void refresh_fds_locked() noexcept {
    std::uint64_t want = g_overflow ? ~std::uint64_t{0} : 0;
    for (int i = 0; i < g_nmasks; ++i) want |= ~g_masks[i].mask;
    for (int sig = 1; sig <= kMaxSig; ++sig)
        if (g_waiting[sig] > 0) want |= bit(sig);
    want &= kManaged;
    if (want == g_fd_mask) return;
    g_fd_mask = want;
    sigset_t s = to_set(want);
    // A new mask also wakes every poller of a signalfd, so a signal already
    // pending that is now wanted is read at once.
    for (int i = 0; i < g_nfds; ++i) real_signalfd()(g_fds[i], &s, 0);
}

// Takes the lowest signal of `want` pending for `t`, thread-directed ones
// first, then the process's; 0 if none.
int take_pending_locked(SigState* t, std::uint64_t want) noexcept {
    if (std::uint64_t mine = t->pending.load(std::memory_order_relaxed) & want) {
        const int sig = lowest(mine);
        t->pending.fetch_and(~bit(sig), std::memory_order_relaxed);
        return sig;
    }
    const std::uint64_t proc = g_proc_pending & want;
    if (!proc) return 0;
    const int sig = lowest(proc);
    g_proc_pending &= ~bit(sig);
    return sig;
}

void set_mask_locked(SigState* s, std::uint64_t mask) noexcept {
    mask &= ~kUnblockable;
    std::uint64_t old = s->mask.load(std::memory_order_relaxed);
    if (old == mask) return;
    bool crossed = false;
    if (s->registered) {
        crossed |= count_mask(old, -1);
        crossed |= count_mask(mask, +1);
    }
    s->mask.store(mask, std::memory_order_relaxed);
    if (crossed) refresh_fds_locked();
}

void register_locked(SigState* s) noexcept {
    s->registered = true;
    s->next = nullptr;
    s->prev = g_tail;
    if (g_tail) g_tail->next = s;
    else g_head = s;
    g_tail = s;
    if (count_mask(s->mask.load(std::memory_order_relaxed), +1)) refresh_fds_locked();
}

void unregister_locked(SigState* s) noexcept {
    if (!s->registered) return;
    s->registered = false;
    if (g_last_forker == s) g_last_forker = nullptr;
    if (s->prev) s->prev->next = s->next;
    else g_head = s->next;
    if (s->next) s->next->prev = s->prev;
    else g_tail = s->prev;
    if (count_mask(s->mask.load(std::memory_order_relaxed), -1)) refresh_fds_locked();
}

// Hands `sig` to a sigwait* in progress on `s`, if it waits for it.
bool hand_to_waiter_locked(SigState* s, int sig, const siginfo_t& info) noexcept {
    if (!s->waiter || !(s->wait_set & bit(sig))) return false;
    *s->wait_info = info;
    detail::Waiter* w = s->waiter;
    s->waiter = nullptr;
    Hub::wake(*w, detail::WakeReason::Woken);
    return true;
}

// --- actions -------------------------------------------------------------------

bool ignored_by_default(int sig) noexcept {
    return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

// The kernel's default action (terminate, core, stop): raise the signal on
// this OS thread with it unblocked, so the kernel takes it exactly as it
// would have (the exit status names the signal). Returns after a stop.
void default_action(int sig) noexcept {
    if (ignored_by_default(sig)) return;
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, sig);
    real_sigmask()(SIG_UNBLOCK, &one, &old);
    syscall(SYS_tgkill, getpid(), detail::os::gettid(), sig);
    real_sigmask()(SIG_SETMASK, &old, nullptr);
}

enum class Disposition { Ignore, Default, Handler };

Disposition disposition(int sig, struct sigaction* sa) noexcept {
    real_sigaction()(sig, nullptr, sa);
    if (!(sa->sa_flags & SA_SIGINFO)) {
        if (sa->sa_handler == SIG_IGN) return Disposition::Ignore;
        if (sa->sa_handler == SIG_DFL) return ignored_by_default(sig) ? Disposition::Ignore : Disposition::Default;
    }
    return Disposition::Handler;
}

// Runs the program's handler for `sig` as thread `t` (on the calling fiber).
// Returns false when the handler lacks SA_RESTART.
bool run_handler_as(SigState* t, int sig, siginfo_t info) noexcept {
    struct sigaction sa;
    switch (disposition(sig, &sa)) {
        case Disposition::Ignore: return true;
        case Disposition::Default: default_action(sig); return true;
        case Disposition::Handler: break;
    }
    if (sa.sa_flags & SA_RESETHAND) {
        struct sigaction dfl{};
        dfl.sa_handler = SIG_DFL;
        real_sigaction()(sig, &dfl, nullptr);
    }
    std::uint64_t old;
    {
        SpinGuard g(g_lock);
        old = t->mask.load(std::memory_order_relaxed);
        set_mask_locked(t, old | from_set(&sa.sa_mask) | ((sa.sa_flags & SA_NODEFER) ? 0 : bit(sig)));
    }
    const int saved_errno = errno;
    if (sa.sa_flags & SA_SIGINFO) {
        ucontext_t uc{};
        sa.sa_sigaction(sig, &info, &uc);
    } else {
        sa.sa_handler(sig);
    }
    errno = saved_errno;
    {
        SpinGuard g(g_lock);
        set_mask_locked(t, old);  // as the kernel's sigreturn restores it
    }
    return (sa.sa_flags & SA_RESTART) != 0;
}

// Delivers, on the calling fiber acting as `t`, every signal pending for `t`
// or the process that `t` does not block (after an unblock, or a handler).
// Returns false if a handler without SA_RESTART ran.
bool deliver_unblocked(SigState* t) noexcept {
    bool restart = true;
    for (;;) {
        int sig = 0;
        siginfo_t info{};
        {
            SpinGuard g(g_lock);
            sig = take_pending_locked(t, ~t->mask.load(std::memory_order_relaxed));
            if (!sig) break;
            info = g_info[sig];
        }
        restart &= run_handler_as(t, sig, info);
    }
    // Pending in the kernel (sent while every thread blocked it).
    const int saved_errno = errno;
    std::uint64_t open = ~t->mask.load(std::memory_order_relaxed) & kManaged;
    sigset_t set = to_set(open);
    timespec zero{0, 0};
    siginfo_t info;
    while (open && real_sigtimedwait()(&set, &info, &zero) > 0) restart &= run_handler_as(t, info.si_signo, info);
    errno = saved_errno;
    return restart;
}

// --- handler fibers ------------------------------------------------------------

struct HandlerJob {
    SigState* target;
    int sig;
    siginfo_t info;
};

void run_handler_job(void* payload) {
    auto* job = static_cast<HandlerJob*>(payload);
    SigState* t = job->target;
    bool restart = run_handler_as(t, job->sig, job->info);
    restart &= deliver_unblocked(t);
    if (!restart) t->eintr.store(true, std::memory_order_release);
    Hub::request_interrupt(t->fiber);  // calls never restarted end either way
    t->stand_in_handlers.fetch_sub(1, std::memory_order_release);
    Hub* h = Hub::current_if_any();
    {
        SpinGuard g(g_lock);
        for (auto& s : g_stand_ins)
            if (s.fiber == h->running()) s = StandIn{nullptr, nullptr};
    }
    t->handlers_running.fetch_sub(1, std::memory_order_release);
}
void destroy_handler_job(void*) noexcept {}
constexpr detail::TaskOps kHandlerOps{&run_handler_job, &destroy_handler_job, true};

// `t->handlers_running` was raised by the caller, and `t->stand_in_handlers`
// too if `counted`.
void spawn_handler(SigState* t, int sig, const siginfo_t& info, bool counted) noexcept {
    Hub& here = Hub::current();
    void* payload = nullptr;
    FiberRecord* f;
    try {
        f = here.create_fiber(SpawnOptions{"signal-handler", 0}, sizeof(HandlerJob), alignof(HandlerJob), &kHandlerOps,
                              &payload, t->fiber->hub);
    } catch (...) {
        detail::os::write_stderr("green: cannot start a fiber to run a signal handler\n");
        std::abort();
    }
    new (payload) HandlerJob{t, sig, info};
    if (!counted) t->stand_in_handlers.fetch_add(1, std::memory_order_relaxed);
    f->user = t->fiber->user;  // pthread_self() in the handler is the target's
    if (!f->user) {
        SpinGuard g(g_lock);
        for (auto& s : g_stand_ins)
            if (!s.fiber) {
                s = StandIn{f, t};
                break;
            }
    }
    here.start(f);
    detail::fiber_detach(f);
}

// A handler due on `t`, which is the caller: run here.
void run_here(SigState* t, int sig, const siginfo_t& info) noexcept {
    run_handler_as(t, sig, info);
    deliver_unblocked(t);
    t->handlers_running.fetch_sub(1, std::memory_order_release);
}

// A handler is due on `t`: run it here if `t` is the caller, else on a fiber
// of its own on t's hub.
void act_for(SigState* t, int sig, const siginfo_t& info) noexcept {
    if (t == current_sigstate()) run_here(t, sig, info);
    else spawn_handler(t, sig, info, false);
}

// A process-directed signal taken from the kernel, phase one: who takes it,
// chosen under g_lock. Null: handed to a sigwait-style waiter, or left
// pending for the first thread that unblocks it; else the target, with its
// handlers_running raised for act_on, and its stand_in_handlers too when it
// is not the caller (`*stand_in`): counted from the choice on, so that a
// thread waiting for its stand-ins (ChildWait) cannot miss one that is
// chosen but not yet started.
SigState* choose_process_target(int sig, const siginfo_t& info, bool* stand_in) noexcept {
    SigState* const me = current_sigstate();  // before g_lock, which it takes
    SigState* target = nullptr;
    *stand_in = false;
    SpinGuard g(g_lock);
    for (SigState* s = g_head; s; s = s->next)
        if (hand_to_waiter_locked(s, sig, info)) return nullptr;
    if (sig == SIGCHLD) {
        for (SigState* s = g_head; s && !target; s = s->next)
            if (s->waiting_for_child.load(std::memory_order_relaxed) && !(s->mask.load(std::memory_order_relaxed) & bit(sig)))
                target = s;
        if (!target && g_last_forker && !(g_last_forker->mask.load(std::memory_order_relaxed) & bit(sig)))
            target = g_last_forker;
    }
    for (SigState* s = g_head; s && !target; s = s->next)
        if (!(s->mask.load(std::memory_order_relaxed) & bit(sig))) target = s;
    g_info[sig] = info;
    if (!target) {
        g_proc_pending |= bit(sig);  // delivered when a thread unblocks it
        return nullptr;
    }
    target->handlers_running.fetch_add(1, std::memory_order_relaxed);
    if (target != me) {
        target->stand_in_handlers.fetch_add(1, std::memory_order_relaxed);
        *stand_in = true;
    }
    return target;
}

// Phase two: the disposition, acted out for `target` (a handler may run
// here, and may suspend this fiber).
void act_on(SigState* target, int sig, const siginfo_t& info, bool stand_in) noexcept {
    struct sigaction sa;
    switch (disposition(sig, &sa)) {
        case Disposition::Ignore: break;
        case Disposition::Default: default_action(sig); break;
        case Disposition::Handler:
            if (stand_in) spawn_handler(target, sig, info, true);
            else run_here(target, sig, info);  // not a stand-in: `target` is the caller
            return;
    }
    if (stand_in) target->stand_in_handlers.fetch_sub(1, std::memory_order_release);
    target->handlers_running.fetch_sub(1, std::memory_order_release);
}

siginfo_t from_signalfd(const signalfd_siginfo& s) noexcept {
    siginfo_t i{};
    i.si_signo = static_cast<int>(s.ssi_signo);
    i.si_errno = s.ssi_errno;
    i.si_code = s.ssi_code;
    i.si_pid = static_cast<pid_t>(s.ssi_pid);
    i.si_uid = s.ssi_uid;
    i.si_status = s.ssi_status;
    i.si_value.sival_ptr = reinterpret_cast<void*>(s.ssi_ptr);
    i.si_fd = s.ssi_fd;
    return i;
}

// Threads between taking signals from a signalfd and choosing their
// targets. A signal taken there is in neither the kernel's pending set nor
// the shim's choice yet; ChildWait waits this window out, or a SIGCHLD taken
// by another hub just before a waiter's own drain could be handed out after
// the waiter returned (and so to another thread than the kernel picks).
std::atomic<int> g_choosing{0};

// Called from hooks too (kill, waitpid): errno is the program's. Targets are
// chosen for all the signals of a read before any is acted on, so the window
// above never includes a handler (which may suspend this fiber).
void drain(int fd) noexcept {
    const int saved_errno = errno;
    signalfd_siginfo buf[8];
    for (;;) {
        g_choosing.fetch_add(1, std::memory_order_seq_cst);
        ssize_t n = detail::os::libc().read(fd, buf, sizeof buf);
        if (n <= 0) {
            g_choosing.fetch_sub(1, std::memory_order_release);
            errno = saved_errno;
            return;
        }
        const std::size_t count = static_cast<std::size_t>(n) / sizeof buf[0];
        SigState* targets[8];
        siginfo_t infos[8];
        bool stand_in[8];
        for (std::size_t i = 0; i < count; ++i) {
            infos[i] = from_signalfd(buf[i]);
            targets[i] = choose_process_target(static_cast<int>(buf[i].ssi_signo), infos[i], &stand_in[i]);
        }
        g_choosing.fetch_sub(1, std::memory_order_release);
        for (std::size_t i = 0; i < count; ++i)
            if (targets[i]) act_on(targets[i], static_cast<int>(buf[i].ssi_signo), infos[i], stand_in[i]);
    }
}

void on_sigfd(struct ev_loop*, ev_io* w, int) noexcept { drain(w->fd); }

// fork(): only the forking thread lives on in the child.
void fork_prepare() noexcept {
    SigState* me = current_sigstate();
    detail::lock_word_acquire(g_lock);
    g_forking = me;
}
void fork_parent() noexcept {
    g_last_forker = g_forking;
    g_lock.store(0, std::memory_order_release);
}
void fork_child() noexcept {
    // The inherited signalfds are the parent's open files: changing their
    // mask here would change the parent's. Drop them and read through a
    // fresh one at the surviving hub's fd number (its watcher stays valid;
    // libev re-registers every fd after a fork).
    for (int i = 0; i < g_nfds; ++i)
        if (g_fds[i] != hub_sigfd()) real_close()(g_fds[i]);
    g_nfds = 0;
    while (g_head) unregister_locked(g_head);
    for (auto& s : g_stand_ins) s = StandIn{nullptr, nullptr};
    for (int& w : g_waiting) w = 0;  // the other threads' sigwaits are gone
    refresh_fds_locked();
    if (g_forking) {
        g_forking->waiter = nullptr;
        register_locked(g_forking);
    }
    if (int mine = hub_sigfd(); mine >= 0) {
        sigset_t want = to_set(g_fd_mask);
        int fresh = real_signalfd()(-1, &want, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fresh >= 0 && GREEN_NEXT(dup3)(fresh, mine, O_CLOEXEC) >= 0) g_fds[g_nfds++] = mine;
        if (fresh >= 0) real_close()(fresh);
    }
    g_lock.store(0, std::memory_order_release);
}

std::uint64_t kernel_mask() noexcept {
    sigset_t cur;
    real_sigmask()(SIG_SETMASK, nullptr, &cur);
    return from_set(&cur);
}

// Sets the calling OS thread's kernel mask to what the program set for the
// calling thread-fiber while a child process is made (exec and posix_spawn
// hand the thread's mask on); restores it if the call returns.
struct ProgramMaskScope {
    sigset_t saved;
    bool active = false;
    ProgramMaskScope() noexcept {
        sigset_t m;
        if (signals_program_mask(&m)) active = real_sigmask()(SIG_SETMASK, &m, &saved) == 0;
    }
    ~ProgramMaskScope() {
        if (active) real_sigmask()(SIG_SETMASK, &saved, nullptr);
    }
};

// While a fiber waits for a signal, only a signal can end the wait: the
// deadlock detector must not call that a deadlock.
struct WaitsForSignal {
    ExternalWaker external;
};

}  // namespace

namespace green::interpose {

void signals_start_process() noexcept {
    g_main.mask.store(kernel_mask() & ~kUnblockable, std::memory_order_relaxed);
    g_main.fiber = Hub::current().root_fiber();
    g_main_thread = GREEN_NEXT(pthread_self)();
    for (int sig = 1; sig <= kMaxSig; ++sig) {
        struct sigaction sa;
        if (disposition(sig, &sa) == Disposition::Handler) g_handled.fetch_or(bit(sig));
    }
    {
        SpinGuard g(g_lock);
        register_locked(&g_main);
    }
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    sigset_t managed = to_set(kManaged);
    real_sigmask()(SIG_BLOCK, &managed, nullptr);
    g_started.store(true, std::memory_order_release);
    signals_start_hub();
}

void signals_start_hub() noexcept {
    // Hub threads other than main start with everything blocked; they take
    // the unmanaged signals (SIGPIPE...) of the fibers they run themselves.
    sigset_t managed = to_set(kManaged);
    if (Hub::current().root_fiber() != g_main.fiber) real_sigmask()(SIG_SETMASK, &managed, nullptr);
    int fd;
    {
        SpinGuard g(g_lock);
        sigset_t want = to_set(g_fd_mask);
        fd = real_signalfd()(-1, &want, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) {
            detail::os::write_stderr("green: cannot create a signalfd for the hub; signals stay the kernel's\n");
            return;
        }
        // Out of the program's way, hidden from its close/dup2/close_range
        // like libev's own fds (shim_fds.hpp).
        fd = adopt_shim_fd(fd);
        if (g_nfds < 64) g_fds[g_nfds++] = fd;
    }
    if (Hub::current().index() < kMaxHubIndex) g_hub_fd[Hub::current().index()].store(fd + 1, std::memory_order_relaxed);
    auto* w = new ev_io;  // lives as long as the hub
    ev_io_init(w, &on_sigfd, fd, EV_READ);
    ev_io_start(Hub::current().loop(), w);
}

SigState* current_sigstate() noexcept {
    if (!g_started.load(std::memory_order_acquire)) return nullptr;
    Hub* h = fiber_context();
    if (!h) return nullptr;
    FiberRecord* f = h->running();
    if (f->user) return sigstate_of_handle(f->user);
    if (f == g_main.fiber) return &g_main;
    SpinGuard g(g_lock);
    for (auto& s : g_stand_ins)
        if (s.fiber == f) return s.state;
    return nullptr;
}

void signals_thread_created(SigState* s, FiberRecord* f) noexcept {
    s->fiber = f;
    if (!g_started.load(std::memory_order_acquire)) return;
    SigState* parent = current_sigstate();
    s->mask.store(parent ? parent->mask.load(std::memory_order_relaxed) : 0, std::memory_order_relaxed);
    SpinGuard g(g_lock);
    register_locked(s);
}

void signals_thread_ended(SigState* s) noexcept {
    if (!g_started.load(std::memory_order_acquire)) return;
    {
        SpinGuard g(g_lock);
        unregister_locked(s);
    }
    // A handler fiber standing in for this thread still uses its state.
    while (s->handlers_running.load(std::memory_order_acquire) != 0) {
        if (Hub* h = fiber_context()) h->yield();
    }
}

int signals_kill_thread(SigState* t, int sig) noexcept {
    if (!g_started.load(std::memory_order_acquire) || sig < 1 || sig > kMaxSig || !(kManaged & bit(sig))) return -1;
    siginfo_t info{};
    info.si_signo = sig;
    info.si_code = SI_TKILL;
    info.si_pid = getpid();
    info.si_uid = getuid();
    {
        SpinGuard g(g_lock);
        // A thread past its end (its state is about to go): lost, as a
        // signal sent to a thread exiting unpatched.
        if (!t->registered) return 0;
        if (hand_to_waiter_locked(t, sig, info)) return 0;
        if (t->mask.load(std::memory_order_relaxed) & bit(sig)) {
            g_info[sig] = info;
            t->pending.fetch_or(bit(sig), std::memory_order_relaxed);
            return 0;
        }
        t->handlers_running.fetch_add(1, std::memory_order_relaxed);
    }
    struct sigaction sa;
    switch (disposition(sig, &sa)) {
        case Disposition::Ignore: break;
        case Disposition::Default: default_action(sig); break;
        case Disposition::Handler: act_for(t, sig, info); return 0;
    }
    t->handlers_running.fetch_sub(1, std::memory_order_release);
    return 0;
}

SigState* signals_main_thread(pthread_t t) noexcept {
    return g_started.load(std::memory_order_acquire) && pthread_equal(t, g_main_thread) ? &g_main : nullptr;
}

void signals_wait_begins() noexcept {
    if (SigState* s = current_sigstate()) s->eintr.store(false, std::memory_order_relaxed);
}

bool signals_eintr(bool restartable) noexcept {
    SigState* s = current_sigstate();
    if (!s) return true;
    bool eintr = s->eintr.exchange(false, std::memory_order_acq_rel);
    return eintr || !restartable;
}

ChildWait::ChildWait() noexcept : s(current_sigstate()) {
    if (s) s->waiting_for_child.fetch_add(1, std::memory_order_relaxed);
}
ChildWait::~ChildWait() {
    if (!s) return;
    // The child's SIGCHLD was sent before the wait returned: deliver it now,
    // to this thread, as the kernel does before waitpid returns.
    if (int fd = hub_sigfd(); fd >= 0) drain(fd);
    // Another hub may have taken it just before and not chosen yet: this
    // thread must still be waiting for a child when it does. The window
    // holds no handler and no suspension (drain), so it closes promptly.
    while (g_choosing.load(std::memory_order_acquire) > 0) detail::os::raw_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
    s->waiting_for_child.fetch_sub(1, std::memory_order_relaxed);
    // A handler started for this thread on a stand-in fiber (on this hub)
    // finishes before the wait returns, as it would have run on this thread.
    // Only the thread's own fiber waits: a stand-in calling waitpid would
    // wait for itself.
    Hub* h = Hub::current_if_any();
    if (!h || h->running() != s->fiber) return;
    // Short waits the program cannot cut short: the handler's own interrupt
    // of this thread, or a pthread_cancel, concern the program's calls, not
    // this one (the timer also lets the hub take the remote start of a
    // handler that another hub spawned).
    while (s->stand_in_handlers.load(std::memory_order_acquire) > 0) {
        detail::Waiter pause(h->running(), detail::WaitKind::Sleep);
        h->park(pause, detail::ParkOptions::uncancellable(Clock::now() + std::chrono::microseconds(100)));
    }
}

bool signals_could_interrupt() noexcept {
    SigState* s = current_sigstate();
    return s && (g_handled.load(std::memory_order_relaxed) & ~s->mask.load(std::memory_order_relaxed) & kManaged) != 0;
}

bool signals_program_mask(sigset_t* out) noexcept {
    SigState* s = current_sigstate();
    if (!s) return false;
    *out = to_set(s->mask.load(std::memory_order_relaxed));
    return true;
}

}  // namespace green::interpose

// --- hooks ---------------------------------------------------------------------

namespace {

// pthread_sigmask's work on a thread-fiber's emulated mask.
int change_mask(SigState* me, int how, const sigset_t* set, sigset_t* old) noexcept {
    std::uint64_t before = me->mask.load(std::memory_order_relaxed);
    siginfo_t taken[8];
    int ntaken = 0;
    if (set) {
        std::uint64_t bits = from_set(set);
        std::uint64_t after;
        switch (how) {
            case SIG_BLOCK: after = before | bits; break;
            case SIG_UNBLOCK: after = before & ~bits; break;
            case SIG_SETMASK: after = bits; break;
            default: return EINVAL;
        }
        // Signals that every thread blocked stay pending in the kernel. Take
        // the ones this call unblocks now, while no hub's signalfd accepts
        // them yet: once the new mask is published, another hub could read
        // one first and deliver it after this call has returned, where the
        // kernel delivers it before.
        if (std::uint64_t newly = before & ~after & kManaged) {
            const int saved_errno = errno;
            sigset_t want = to_set(newly);
            timespec zero{0, 0};
            while (ntaken < 8 && real_sigtimedwait()(&want, &taken[ntaken], &zero) > 0) ++ntaken;
            errno = saved_errno;
        }
        SpinGuard g(g_lock);
        set_mask_locked(me, after);
    }
    if (old) *old = to_set(before);
    for (int i = 0; i < ntaken; ++i) run_handler_as(me, taken[i].si_signo, taken[i]);
    // POSIX: a pending signal that is now unblocked is delivered before the
    // call returns.
    if (set && (before & ~me->mask.load(std::memory_order_relaxed))) deliver_unblocked(me);
    return 0;
}

// The sigwait* family on a thread-fiber: take a pending signal of `set`, or
// park until one is handed over, `deadline` passes (EAGAIN) or a handler for
// another signal interrupts the wait (EINTR).
int wait_for_signal(SigState* me, const sigset_t* set, siginfo_t* info, Clock::time_point deadline) noexcept {
    const std::uint64_t want = from_set(set) & kManaged;
    siginfo_t got{};
    for (;;) {
        {
            SpinGuard g(g_lock);
            if (int sig = take_pending_locked(me, want)) {
                if (info) *info = g_info[sig];
                return sig;
            }
        }
        timespec zero{0, 0};
        sigset_t kset = to_set(want);
        const int saved_errno = errno;
        int sig = real_sigtimedwait()(&kset, &got, &zero);
        errno = saved_errno;
        if (sig > 0) {
            if (info) *info = got;
            return sig;
        }
        if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return -EAGAIN;
        Hub& h = Hub::current();
        detail::Waiter w(h.running(), detail::WaitKind::Sigwait);
        {
            SpinGuard g(g_lock);
            me->wait_set = want;
            me->waiter = &w;
            me->wait_info = &got;
            for (int s = 1; s <= kMaxSig; ++s)
                if (want & bit(s)) ++g_waiting[s];
            refresh_fds_locked();
        }
        signals_wait_begins();
        detail::WakeReason r;
        {
            WaitsForSignal external;
            r = h.park(w, detail::ParkOptions::signal_interruptible(deadline));
        }
        {
            SpinGuard g(g_lock);
            me->waiter = nullptr;
            for (int s = 1; s <= kMaxSig; ++s)
                if (want & bit(s)) --g_waiting[s];
            refresh_fds_locked();
        }
        if (r == detail::WakeReason::Woken) {
            if (info) *info = got;
            return got.si_signo;
        }
        if (r == detail::WakeReason::TimedOut) return -EAGAIN;
        if (signals_eintr(false)) return -EINTR;
    }
}

bool self_targeted(pid_t pid) noexcept {
    return pid == getpid() || pid == 0 || pid == -1 || (pid < -1 && -pid == getpgrp());
}

}  // namespace

extern "C" {

int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
    SigState* me = current_sigstate();
    if (!me) return real_sigmask()(how, set, old);
    return change_mask(me, how, set, old);
}

int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
    SigState* me = current_sigstate();
    if (!me) return GREEN_NEXT(sigprocmask)(how, set, old);
    int r = change_mask(me, how, set, old);
    return r == 0 ? 0 : fail_with(r);
}

int sigpending(sigset_t* set) noexcept {
    int r = GREEN_NEXT(sigpending)(set);
    SigState* me = current_sigstate();
    if (r != 0 || !me) return r;
    std::uint64_t bits = from_set(set) | me->pending.load(std::memory_order_relaxed);
    {
        SpinGuard g(g_lock);
        bits |= g_proc_pending;
    }
    // The kernel's view includes signals pending for the process that
    // another thread accepts; only blocked ones are pending for the caller.
    *set = to_set(bits & me->mask.load(std::memory_order_relaxed));
    return 0;
}

int sigwait(const sigset_t* set, int* sig) {
    SigState* me = current_sigstate();
    if (!me) return GREEN_NEXT(sigwait)(set, sig);
    for (;;) {
        int r = wait_for_signal(me, set, nullptr, Clock::time_point::max());
        if (r == -EINTR) continue;  // glibc's sigwait restarts after a handler
        if (r < 0) return -r;
        *sig = r;
        return 0;
    }
}

int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
    SigState* me = current_sigstate();
    if (!me) return GREEN_NEXT(sigwaitinfo)(set, info);
    int r = wait_for_signal(me, set, info, Clock::time_point::max());
    return r < 0 ? fail_with(-r) : r;
}

int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
    SigState* me = current_sigstate();
    if (!me) return real_sigtimedwait()(set, info, timeout);
    if (timeout && !valid_timespec(timeout)) return fail_with(EINVAL);
    int r = wait_for_signal(me, set, info, deadline_after(timeout));
    return r < 0 ? fail_with(-r) : r;
}

int sigsuspend(const sigset_t* mask) {
    SigState* me = current_sigstate();
    if (!me) return GREEN_NEXT(sigsuspend)(mask);
    std::uint64_t saved = me->mask.load(std::memory_order_relaxed);
    {
        SpinGuard g(g_lock);
        set_mask_locked(me, from_set(mask));
    }
    signals_wait_begins();
    // A handler that runs now (a signal pending and unblocked by `mask`)
    // ends the suspension at once.
    std::uint64_t pending_before = me->pending.load() | g_proc_pending;
    bool ran = (pending_before & ~me->mask.load()) != 0;
    deliver_unblocked(me);
    while (!ran) {
        Hub& h = Hub::current();
        detail::Waiter w(h.running(), detail::WaitKind::Sigsuspend);
        WaitsForSignal external;
        if (h.park(w, detail::ParkOptions::signal_interruptible()) ==
            detail::WakeReason::Interrupted)
            ran = true;
    }
    {
        SpinGuard g(g_lock);
        set_mask_locked(me, saved);
    }
    return fail_with(EINTR);
}

int pause() {
    SigState* me = current_sigstate();
    if (!me) return GREEN_NEXT(pause)();
    sigset_t now = to_set(me->mask.load(std::memory_order_relaxed));
    return sigsuspend(&now);
}

int raise(int sig) noexcept {
    SigState* me = current_sigstate();
    if (!me || sig < 1 || sig > kMaxSig || !(kManaged & bit(sig))) return GREEN_NEXT(raise)(sig);
    signals_kill_thread(me, sig);
    return 0;
}

int kill(pid_t pid, int sig) noexcept {
    int r = GREEN_NEXT(kill)(pid, sig);
    // A signal to our own process is delivered before kill() returns when
    // the caller accepts it: read it now rather than at the next loop turn.
    if (r == 0 && sig > 0 && sig <= kMaxSig && (kManaged & bit(sig)) && self_targeted(pid) && current_sigstate())
        if (int fd = hub_sigfd(); fd >= 0) drain(fd);
    return r;
}

int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
    int r = real_sigaction()(sig, act, old);
    if (r == 0 && act && sig >= 1 && sig <= kMaxSig) {
        bool handler = (act->sa_flags & SA_SIGINFO) || (act->sa_handler != SIG_IGN && act->sa_handler != SIG_DFL);
        if (handler) g_handled.fetch_or(bit(sig));
        else g_handled.fetch_and(~bit(sig));
    }
    return r;
}

// glibc's signal() installs through an internal sigaction.
sighandler_t signal(int sig, sighandler_t handler) noexcept {
    sighandler_t r = GREEN_NEXT(signal)(sig, handler);
    if (r != SIG_ERR && sig >= 1 && sig <= kMaxSig) {
        if (handler != SIG_IGN && handler != SIG_DFL) g_handled.fetch_or(bit(sig));
        else g_handled.fetch_and(~bit(sig));
    }
    return r;
}

// exec and spawn: the new program inherits the thread's kernel mask.
int execve(const char* path, char* const argv[], char* const envp[]) {
    ProgramMaskScope scope;
    return GREEN_NEXT(execve)(path, argv, envp);
}

int execv(const char* path, char* const argv[]) {
    ProgramMaskScope scope;
    return GREEN_NEXT(execv)(path, argv);
}

int execvp(const char* file, char* const argv[]) {
    ProgramMaskScope scope;
    return GREEN_NEXT(execvp)(file, argv);
}

int execvpe(const char* file, char* const argv[], char* const envp[]) {
    ProgramMaskScope scope;
    return GREEN_NEXT(execvpe)(file, argv, envp);
}

int fexecve(int fd, char* const argv[], char* const envp[]) {
    ProgramMaskScope scope;
    return GREEN_NEXT(fexecve)(fd, argv, envp);
}

#define GREEN_COLLECT_ARGS(first, extra)                                       \
    std::size_t n = 1;                                                          \
    {                                                                           \
        va_list ap;                                                             \
        va_start(ap, first);                                                    \
        while (va_arg(ap, const char*)) ++n;                                    \
        va_end(ap);                                                             \
    }                                                                           \
    auto** argv = static_cast<char**>(__builtin_alloca((n + 1) * sizeof(char*))); \
    va_list ap;                                                                 \
    va_start(ap, first);                                                        \
    argv[0] = const_cast<char*>(first);                                         \
    for (std::size_t i = 1; i <= n; ++i) argv[i] = va_arg(ap, char*);           \
    extra;                                                                      \
    va_end(ap)

int execl(const char* path, const char* arg, ...) {
    GREEN_COLLECT_ARGS(arg, (void)0);
    return execv(path, argv);
}

int execlp(const char* file, const char* arg, ...) {
    GREEN_COLLECT_ARGS(arg, (void)0);
    return execvp(file, argv);
}

int execle(const char* path, const char* arg, ...) {
    char* const* envp;
    GREEN_COLLECT_ARGS(arg, envp = va_arg(ap, char* const*));
    return execve(path, argv, envp);
}

#undef GREEN_COLLECT_ARGS

int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* fa, const posix_spawnattr_t* attr,
                char* const argv[], char* const envp[]) {
    ProgramMaskScope scope;
    return GREEN_NEXT(posix_spawn)(pid, path, fa, attr, argv, envp);
}

int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* fa, const posix_spawnattr_t* attr,
                 char* const argv[], char* const envp[]) {
    ProgramMaskScope scope;
    return GREEN_NEXT(posix_spawnp)(pid, file, fa, attr, argv, envp);
}

FILE* popen(const char* command, const char* mode) {
    ProgramMaskScope scope;
    return GREEN_NEXT(popen)(command, mode);
}

}  // extern "C"
