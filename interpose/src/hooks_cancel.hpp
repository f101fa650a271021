// POSIX deferred cancellation and pthread_exit for thread-fibers.
//
// glibc cancels a thread by a forced unwind (_Unwind_ForcedUnwind): C++
// destructors and catch(...) blocks run (a catch(...) that does not rethrow
// aborts with "FATAL: exception not rethrown"), C cleanup handlers pushed by
// pthread_cleanup_push are entered by longjmp, and the unwind ends at the
// thread's start, which then exits with PTHREAD_CANCELED. glibc keeps that
// state in the OS thread's struct pthread, which every fiber of a hub shares,
// so the shim keeps it per thread-fiber (CancelState) and runs the same
// unwind on the fiber's own stack, ending in run_cancellable().
//
// Cancellation points: pthread_testcancel, pthread_join, and the hooked
// calls that suspend (fd I/O, poll/select/epoll_wait, sleeps), acted on when
// they would suspend. PTHREAD_CANCEL_ASYNCHRONOUS cannot interrupt a fiber at
// an arbitrary instruction: it acts as deferred (said once on stderr).
#pragma once

#include <pthread.h>
#include <unwind.h>

#include <atomic>

#include "fiber_record.hpp"

namespace green::interpose {

struct CancelState {
    std::atomic<bool> pending{false};
    std::atomic<int> state{PTHREAD_CANCEL_ENABLE};
    int type = PTHREAD_CANCEL_DEFERRED;
    bool unwinding = false;
    void* exit_value = nullptr;          // what the unwind ends the thread with
    __pthread_unwind_buf_t* cleanup = nullptr;  // newest first; the last is run_cancellable's
    detail::FiberRecord* fiber = nullptr;
    _Unwind_Exception exc{};
};

// The running thread-fiber's state, or null (defined with the handles in
// hooks_thread.cpp).
CancelState* current_cancel_state() noexcept;

// Calls start(arg); returns its result, or the exit value of a cancel or
// pthread_exit that unwound it.
void* run_cancellable(CancelState& cs, void* (*start)(void*), void* arg);

// pthread_cancel of a thread-fiber (any thread may call it).
int request_cancel(CancelState& cs) noexcept;

// At a cancellation point of the calling context: unwinds a thread-fiber with
// a pending, enabled cancel (does not return then); otherwise returns.
void cancel_point();

// pthread_exit of a thread-fiber: unwinds it with `value`.
[[noreturn]] void exit_by_unwind(CancelState& cs, void* value);

}  // namespace green::interpose
