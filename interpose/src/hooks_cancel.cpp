// See hooks_cancel.hpp.
#include "hooks_cancel.hpp"

#include <setjmp.h>

#include <cstdint>
#include <cstdlib>

#include "hook_context.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "real.hpp"

namespace green::interpose {

namespace {

__pthread_unwind_buf_t*& prev_of(__pthread_unwind_buf_t* b) noexcept {
    return *reinterpret_cast<__pthread_unwind_buf_t**>(&b->__pad[0]);
}

// The stack pointer saved in a glibc jmp_buf (slot 6), which glibc stores
// mangled with the thread's pointer guard (the same in every thread).
std::uintptr_t saved_sp(const __pthread_unwind_buf_t* b) noexcept {
    auto v = static_cast<std::uintptr_t>(b->__cancel_jmp_buf[0].__cancel_jmp_buf[6]);
    v = (v >> 17) | (v << (64 - 17));
    std::uintptr_t guard;
    asm("mov %%fs:0x30, %0" : "=r"(guard));
    return v ^ guard;
}

[[noreturn]] void jump_to(__pthread_unwind_buf_t* b) {
    longjmp(reinterpret_cast<__jmp_buf_tag*>(b->__cancel_jmp_buf), 1);
}

// Called for every frame the forced unwind is about to clean up: once the
// unwind reaches the frame of the newest cleanup buffer (a C cleanup handler,
// or run_cancellable at the bottom), continue there, as glibc does.
_Unwind_Reason_Code stop(int, _Unwind_Action actions, _Unwind_Exception_Class, _Unwind_Exception*,
                         _Unwind_Context* ctx, void* param) {
    auto* cs = static_cast<CancelState*>(param);
    __pthread_unwind_buf_t* top = cs->cleanup;
    if ((actions & _UA_END_OF_STACK) || _Unwind_GetCFA(ctx) >= saved_sp(top)) {
        cs->cleanup = prev_of(top);
        jump_to(top);
    }
    return _URC_NO_REASON;
}

void not_rethrown(_Unwind_Reason_Code, _Unwind_Exception*) {
    // glibc's words for a catch (...) that swallowed a cancellation.
    detail::os::write_stderr("FATAL: exception not rethrown\n");
    std::abort();
}

[[noreturn]] void unwind(CancelState& cs) {
    cs.unwinding = true;
    cs.exc.exception_class = 0;  // not catchable by type, as glibc's
    cs.exc.exception_cleanup = &not_rethrown;
    _Unwind_ForcedUnwind(&cs.exc, &stop, &cs);
    std::abort();  // the stop function always jumps before the stack ends
}

std::atomic<bool> g_async_warned{false};

}  // namespace

void* run_cancellable(CancelState& cs, void* (*start)(void*), void* arg) {
    CancelState* volatile state = &cs;
    __pthread_unwind_buf_t bottom;
    if (__sigsetjmp(reinterpret_cast<__jmp_buf_tag*>(bottom.__cancel_jmp_buf), 0)) {
        state->cleanup = nullptr;
        return state->exit_value;
    }
    prev_of(&bottom) = nullptr;
    cs.cleanup = &bottom;
    void* r = start(arg);
    cs.cleanup = nullptr;
    return r;
}

int request_cancel(CancelState& cs) noexcept {
    if (cs.pending.exchange(true, std::memory_order_acq_rel)) return 0;
    // Wakes the fiber if it is parked in a cancellable wait; it then reaches
    // cancel_point(). With cancellation disabled, only `pending` is kept.
    if (cs.state.load(std::memory_order_acquire) == PTHREAD_CANCEL_ENABLE) cs.fiber->hub->request_cancel(cs.fiber);
    return 0;
}

void cancel_point() {
    CancelState* cs = current_cancel_state();
    if (!cs || cs->unwinding || !cs->pending.load(std::memory_order_acquire) ||
        cs->state.load(std::memory_order_relaxed) != PTHREAD_CANCEL_ENABLE)
        return;
    cs->fiber->cancel_requested.store(false, std::memory_order_relaxed);
    cs->exit_value = PTHREAD_CANCELED;
    unwind(*cs);
}

void exit_by_unwind(CancelState& cs, void* value) {
    cs.exit_value = value;
    unwind(cs);
}

}  // namespace green::interpose

using namespace green::interpose;

extern "C" {

int pthread_setcancelstate(int state, int* old) {
    CancelState* cs = current_cancel_state();
    if (!cs) return real_pthread_setcancelstate()(state, old);
    if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE) return EINVAL;
    int was = cs->state.exchange(state, std::memory_order_acq_rel);
    if (old) *old = was;
    if (state == PTHREAD_CANCEL_DISABLE) {
        // A wake already requested must not interrupt waits meanwhile.
        cs->fiber->cancel_requested.store(false, std::memory_order_relaxed);
    } else if (cs->pending.load(std::memory_order_acquire)) {
        cs->fiber->cancel_requested.store(true, std::memory_order_relaxed);
    }
    return 0;
}

int pthread_setcanceltype(int type, int* old) {
    CancelState* cs = current_cancel_state();
    if (!cs) return real_pthread_setcanceltype()(type, old);
    if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS) return EINVAL;
    if (old) *old = cs->type;
    cs->type = type;
    if (type == PTHREAD_CANCEL_ASYNCHRONOUS && !g_async_warned.exchange(true))
        green::detail::os::write_stderr(
            "green: PTHREAD_CANCEL_ASYNCHRONOUS acts as deferred in fiber threads (cancelled at the next cancellation point)\n");
    return 0;
}

void pthread_testcancel() {
    if (current_cancel_state()) {
        cancel_point();
        return;
    }
    real_pthread_testcancel()();
}

void __pthread_register_cancel(__pthread_unwind_buf_t* buf) {
    CancelState* cs = current_cancel_state();
    if (!cs) return real___pthread_register_cancel()(buf);
    prev_of(buf) = cs->cleanup;
    cs->cleanup = buf;
}

void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf) {
    CancelState* cs = current_cancel_state();
    if (!cs) return real___pthread_unregister_cancel()(buf);
    cs->cleanup = prev_of(buf);
}

void __pthread_unwind_next(__pthread_unwind_buf_t* buf) {
    CancelState* cs = current_cancel_state();
    if (!cs) {
        real___pthread_unwind_next()(buf);
        std::abort();
    }
    // The handler for `buf` has run (stop() already made its predecessor the
    // newest); carry on unwinding towards the next one.
    cs->cleanup = prev_of(buf);
    unwind(*cs);
}

}  // extern "C"
