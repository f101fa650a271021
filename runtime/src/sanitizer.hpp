// Telling ASan and TSan about stack switches (-Dfiber_sanitizer=address or
// thread), and valgrind about fiber stacks (-Dvalgrind=true). Without this, ASan reports false stack-buffer overflows after a
// switch and TSan mixes up happens-before between fibers. Everything here
// compiles to nothing in normal builds.
//
// Protocol (ASan's __sanitizer_{start,finish}_switch_fiber): the context that
// switches calls start() with the bounds of the stack it goes to (and a slot
// for its own fake stack; a dying fiber passes none); the context that gets
// control calls finish(), which also reports the bounds of the stack it came
// from. The root fiber's bounds are unknown until then, so they are learnt
// from the first finish() that arrives from the root.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define GREEN_ASAN 1
#endif
#if defined(GREEN_USE_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define GREEN_VALGRIND 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define GREEN_TSAN 1
#endif

namespace green::detail::sanitizer {

struct FiberState {
    const void* stack_bottom = nullptr;  // ASan: lowest address
    std::size_t stack_size = 0;
    void* fake_stack = nullptr;          // ASan: this fiber's saved fake stack
    void* tsan_fiber = nullptr;          // TSan: its fiber handle
    unsigned valgrind_stack = 0;         // valgrind: the registered stack's id
};

// Called on a stack taken from the pool, before anything is placed on it: it
// may carry marks from its previous fiber (memcheck's no-access below that
// fiber's last stack pointer); the new fiber and its creator, writing the
// callable at the top, may use all of it.
inline void on_stack_taken(const void* bottom, std::size_t size) noexcept {
#if GREEN_VALGRIND
    VALGRIND_MAKE_MEM_UNDEFINED(bottom, size);
#endif
    (void)bottom;
    (void)size;
}

// A pooled stack's previous fiber ended inside frames that never returned
// (the switch away from a finished fiber), so their redzones are still
// poisoned: clear them before the stack is used again.
inline void on_create(FiberState& s, const void* bottom, std::size_t size) noexcept {
#if GREEN_ASAN
    __asan_unpoison_memory_region(bottom, size);
#endif
    s.stack_bottom = bottom;
    s.stack_size = size;
#if GREEN_TSAN
    s.tsan_fiber = __tsan_create_fiber(0);
#endif
#if GREEN_VALGRIND
    // -Dvalgrind=true: memcheck must know fiber stacks, or every switch
    // looks like a wild stack-pointer change.
    s.valgrind_stack = VALGRIND_STACK_REGISTER(bottom, static_cast<const char*>(bottom) + size);
#endif
}

inline void on_root(FiberState& s) noexcept {
#if GREEN_TSAN
    s.tsan_fiber = __tsan_get_current_fiber();
#else
    (void)s;
#endif
}

inline void on_destroy(FiberState& s) noexcept {
#if GREEN_VALGRIND
    if (s.valgrind_stack) VALGRIND_STACK_DEREGISTER(s.valgrind_stack);
    s.valgrind_stack = 0;
#endif
#if GREEN_TSAN
    if (s.tsan_fiber) __tsan_destroy_fiber(s.tsan_fiber);
    s.tsan_fiber = nullptr;
#else
    (void)s;
#endif
}

// `from` is switching to `to`; `from_dies` when `from` will never run again.
inline void before_switch(FiberState& from, FiberState& to, bool from_dies) noexcept {
#if GREEN_ASAN
    __sanitizer_start_switch_fiber(from_dies ? nullptr : &from.fake_stack, to.stack_bottom, to.stack_size);
#endif
#if GREEN_TSAN
    __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
    (void)from;
    (void)to;
    (void)from_dies;
}

// `self` got control back from `from` (whose bounds are learnt if unknown).
inline void after_switch(FiberState& self, FiberState* from) noexcept {
#if GREEN_ASAN
    const void* bottom = nullptr;
    std::size_t size = 0;
    __sanitizer_finish_switch_fiber(self.fake_stack, &bottom, &size);
    if (from && !from->stack_bottom) {
        from->stack_bottom = bottom;
        from->stack_size = size;
    }
#endif
    (void)self;
    (void)from;
}

}  // namespace green::detail::sanitizer
