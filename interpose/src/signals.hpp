// Signals for threads that are fibers: the per-thread state the kernel would
// keep (mask, pending set, a sigwait in progress) kept per thread-fiber, and
// the hooks' side of "a handler interrupted my blocking call".
//
// The model (hooks_signal.cpp has the details): every OS thread the shim runs
// fibers on blocks the signals it manages, so the kernel leaves them pending
// for the process or for that thread; each hub reads them from a signalfd and
// hands each one to a thread-fiber as the kernel would have to a thread (a
// sigwait in progress first, then the main thread, then any thread that does
// not block it). A handler runs on a fiber of its own standing in for the
// target thread (pthread_self() is the target's), on the target's hub; then
// the target's interruptible wait in progress ends with EINTR, or goes on if
// the handler has SA_RESTART and the call is one the kernel restarts.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

namespace green::detail {
struct FiberRecord;
struct Waiter;
}  // namespace green::detail

namespace green::interpose {

// One thread's signal state. Fields other than the atomics are guarded by
// the registry lock in hooks_signal.cpp.
struct SigState {
    std::atomic<std::uint64_t> mask{0};     // bit sig-1: blocked, as the program set it
    std::atomic<std::uint64_t> pending{0};  // thread-directed, blocked when sent
    detail::FiberRecord* fiber = nullptr;
    SigState* next = nullptr;
    SigState* prev = nullptr;
    bool registered = false;
    // A sigwait in progress: the set, where to put the signal taken, and
    // the parked waiter (null once a signal was handed over).
    std::uint64_t wait_set = 0;
    detail::Waiter* waiter = nullptr;
    siginfo_t* wait_info = nullptr;
    // Handlers running for this thread (the state must outlive them).
    std::atomic<int> handlers_running{0};
    // Of those, the ones on a fiber of their own standing in for it
    // (spawn_handler), which the thread itself may have to wait for.
    std::atomic<int> stand_in_handlers{0};
    // A handler without SA_RESTART ran since the current wait began.
    std::atomic<bool> eintr{false};
    // In waitpid & co.: SIGCHLD prefers this thread (see ChildWait).
    std::atomic<int> waiting_for_child{0};
};

// Start-up, on the main thread before any other thread or hook runs.
void signals_start_process() noexcept;
// On each hub thread that runs program fibers, once its hub exists.
void signals_start_hub() noexcept;
// pthread_create: the new thread inherits the creator's mask.
void signals_thread_created(SigState* s, detail::FiberRecord* f) noexcept;
void signals_thread_ended(SigState* s) noexcept;
// The state of the thread-fiber calling (null for the shim's own contexts).
SigState* current_sigstate() noexcept;
// hooks_thread.cpp: the SigState inside a thread handle (FiberRecord::user).
SigState* sigstate_of_handle(void* user) noexcept;
// The main thread's state if `t` is main's (real) pthread_t.
SigState* signals_main_thread(pthread_t t) noexcept;
// pthread_kill of a thread-fiber: 0, or -1 for a signal the kernel
// delivers itself (unmanaged, or before start-up).
int signals_kill_thread(SigState* target, int sig) noexcept;

// Around an interruptible wait in a hook: call wait_begins() before it and,
// when it ended early (WaitResult::Cancelled), eintr(restartable) says
// whether the call fails with EINTR (true) or goes on waiting (false).
void signals_wait_begins() noexcept;
bool signals_eintr(bool restartable) noexcept;

// A signal with a handler installed is not blocked by the calling thread,
// i.e. a handler may end its wait (the deadlock detector must wait too).
bool signals_could_interrupt() noexcept;

// Around a blocking wait for a child: the kernel hands SIGCHLD to the thread
// that forked the child first; the shim does not know which fiber forked
// which child and prefers a thread waiting for one, which is the same thread
// in the usual fork-then-wait pattern. The kernel runs that handler before
// the wait returns; so does the shim, also when another hub took the signal
// and started the handler on a fiber standing in for this thread.
struct ChildWait {
    SigState* s;
    ChildWait() noexcept;
    ~ChildWait();
};

// The mask the calling thread would have in the kernel unpatched (for a
// child process: exec and posix_spawn pass the thread's mask on).
bool signals_program_mask(sigset_t* out) noexcept;

}  // namespace green::interpose
