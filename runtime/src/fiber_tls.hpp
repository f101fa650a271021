// A thread's own static TLS block and thread control block, for fibers that
// must look like threads to the code they run (the shim's thread-fibers, and
// libgreen fibers spawned with SpawnOptions::own_thread_locals).
//
// Such a fiber runs with the thread pointer (%fs on x86-64) set to a block of
// its own, made the way glibc makes one for a new thread: every module's
// thread_local / __thread variables start from their initial image, dlopen'ed
// modules get fresh blocks through the fiber's own DTV, and thread_local
// destructors registered in the fiber run when it ends. What must stay per OS
// thread is carried over from the hub thread that runs the fiber (see
// fiber_tls.cpp): glibc's thread descriptor (tid, stack guard, pointer
// guard), malloc's per-thread cache and arena, and the runtime's own TLS.
//
// Everything here depends on glibc's private TLS interface; fiber_tls.cpp is
// the one file that knows it, and fiber_tls_available() is false (with the
// reason in fiber_tls_unavailable_reason()) wherever it could not verify what
// it relies on. Fibers then share their hub thread's TLS, as before.
#pragma once

namespace green::detail {

// True when per-fiber TLS works in this process (checked once).
bool fiber_tls_available() noexcept;
// Why it is not available (static string), or null when it is.
const char* fiber_tls_unavailable_reason() noexcept;

// A new block for a fiber that will run on the OS thread whose thread
// pointer is `owner_thread_tp`. Returns the fiber's thread pointer, or null
// when out of memory. Any thread.
void* fiber_tls_create(void* owner_thread_tp) noexcept;
// Makes a block that a finished fiber used fresh again for a new fiber on
// `owner_thread_tp`'s thread, as glibc reuses a cached thread stack: what
// the old fiber allocated through its DTV is freed, every module's initial
// image is laid out again. Returns `tp`.
void* fiber_tls_recycle(void* tp, void* owner_thread_tp) noexcept;
// Makes the block of a fiber that moved to another hub right for the OS
// thread whose thread pointer is `owner_thread_tp`: what adopt_thread carried
// over per OS thread (the descriptor's tid, malloc's cache and arena, the
// runtime's own TLS) is taken from the new thread; everything of the fiber's
// own stays. Call on the new thread, while the fiber does not run.
void fiber_tls_rehome(void* tp, void* owner_thread_tp) noexcept;
// Runs the thread_local destructors registered by the calling fiber, as a
// thread's exit does. Call on the fiber itself; idempotent.
void fiber_tls_run_destructors() noexcept;
// Frees a block made by fiber_tls_create. Never on the fiber it belongs to.
void fiber_tls_destroy(void* tp) noexcept;

// The calling context's thread pointer.
inline void* current_thread_pointer() noexcept {
    void* tp;
    asm volatile("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}
// Makes `tp` the calling OS thread's thread pointer (wrfsbase where the
// kernel allows it, arch_prctl otherwise).
void set_thread_pointer(void* tp) noexcept;

}  // namespace green::detail
