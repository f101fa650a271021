// Threads become fibers: pthread_create, join, detach, exit, self, equal,
// setname/getname, getattr_np, once, keys, sched_yield, kill, affinity.
//
// Identity: a pthread_t made here is a pointer to a ThreadHandle (recognised
// by its magic word; a real glibc pthread_t points at a struct whose first
// word points to itself, so the two never collide). The handle lives until
// the thread is joined, or until a detached thread finishes. Threads that are
// real OS threads (the main thread, hub threads, threads started before the
// shim) keep their real pthread_t and get the real functions.
//
// Thread-specific data (pthread_key_*) is per fiber. C++ thread_local and
// __thread are per fiber too: each thread-fiber runs on a TLS block of its
// own (runtime/src/fiber_tls.hpp), unless GREEN_THREAD_LOCALS=hub.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "fiber_futex.hpp"
#include "fiber_tls.hpp"
#include "fork.hpp"
#include "hook_context.hpp"
#include "hooks_cancel.hpp"
#include "hubs.hpp"
#include "placement.hpp"
#include "os.hpp"
#include "real.hpp"
#include "signals.hpp"
#include "spinlock.hpp"

using namespace green;
using namespace green::interpose;

namespace {

constexpr std::uint64_t kHandleMagic = 0x67726e5468726561ull;  // "grnThrea"
constexpr unsigned kMaxKeys = PTHREAD_KEYS_MAX;
constexpr unsigned kInlineKeys = 32;  // PTHREAD_KEY_2NDLEVEL_SIZE in glibc

struct KeyValue {
    std::uint32_t generation = 0;
    void* value = nullptr;
};

struct ThreadHandle {
    std::uint64_t magic = kHandleMagic;
    void* (*start)(void*) = nullptr;
    void* arg = nullptr;
    void* result = nullptr;
    // 0: running, joinable; 1: detached; 2: finished (the handle waits for join).
    std::atomic<int> state{0};
    detail::FiberRecord* fiber = nullptr;
    // Key values. The first kInlineKeys live here, so pthread_setspecific
    // allocates nothing for them (as glibc's first key block): an allocator
    // that keeps its per-thread state under a key (jemalloc) calls it while
    // it sets that state up, where a malloc would re-enter it half-made.
    KeyValue inline_keys[kInlineKeys] = {};
    KeyValue* keys = inline_keys;
    std::size_t key_slots = kInlineKeys;
    CancelState cancel;
    SigState sig;  // the thread's signal mask and pending signals

    ThreadHandle() = default;
    ThreadHandle(const ThreadHandle&) = delete;
    ThreadHandle& operator=(const ThreadHandle&) = delete;
    ~ThreadHandle() {
        if (keys != inline_keys) delete[] keys;
    }
};

struct ThreadExit {
    void* value;
};

// --- keys ------------------------------------------------------------------

struct KeySlot {
    std::uint32_t generation = 0;  // odd while the key exists
    void (*destructor)(void*) = nullptr;
};
std::atomic<std::uint32_t> g_keys_lock{0};
// A fork child creates keys and runs their destructors too.
[[gnu::constructor]] void hold_keys_lock_across_fork() { detail::hold_across_fork(&g_keys_lock); }
KeySlot g_keys[kMaxKeys];

// Key values of a context that is not a thread-fiber (the main thread, hub
// threads, threads the shim does not own): one mmap'd table per OS thread.
// Not a C++ thread_local object, for two reasons: exit() destroys those
// *before* atexit handlers run, which still read their keys unpatched
// (OpenSSL's cleanup); and constructing one registers a thread-exit hook and
// allocates, which re-enters a program's allocator that keeps its own
// per-thread state in a key (jemalloc). A real glibc key, whose value is the
// table, runs the destructors and frees the table when such a thread ends;
// glibc runs no key destructors for the main thread at exit(), nor does this.
struct ThreadKeys {
    KeyValue values[kMaxKeys];
};
thread_local ThreadKeys* tls_keys __attribute__((tls_model("initial-exec"))) = nullptr;

ThreadHandle* as_handle(pthread_t t) noexcept {
    auto* h = reinterpret_cast<ThreadHandle*>(t);
    return (h && h->magic == kHandleMagic) ? h : nullptr;
}

ThreadHandle* current_handle() noexcept {
    detail::Hub* h = detail::Hub::current_if_any();
    if (!h || h->in_scheduler()) return nullptr;
    return static_cast<ThreadHandle*>(h->running()->user);
}

void run_key_destructors(KeyValue* values, std::size_t n) {
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
        bool any = false;
        for (unsigned k = 0; k < n; ++k) {
            void* v = values[k].value;
            if (!v) continue;
            void (*dtor)(void*) = nullptr;
            {
                detail::SpinGuard g(g_keys_lock);
                if (g_keys[k].generation == values[k].generation) dtor = g_keys[k].destructor;
            }
            values[k].value = nullptr;
            if (dtor) {
                dtor(v);
                any = true;
            }
        }
        if (!any) break;
    }
}

pthread_key_t g_table_key;  // the real glibc key holding a thread's ThreadKeys
std::atomic<std::uint32_t> g_table_key_state{0};  // 0: none, 1: creating, 2: made

void free_thread_keys(void* p) {
    auto* t = static_cast<ThreadKeys*>(p);
    run_key_destructors(t->values, kMaxKeys);
    tls_keys = nullptr;
    munmap(t, sizeof(ThreadKeys));
}

// This thread's table; with `create`, made on first use (mmap: no malloc).
ThreadKeys* thread_keys(bool create) noexcept {
    if (ThreadKeys* t = tls_keys) [[likely]]
        return t;
    if (!create) return nullptr;
    void* p = mmap(nullptr, sizeof(ThreadKeys), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    auto* t = static_cast<ThreadKeys*>(p);  // zero-filled: every value null
    std::uint32_t st = 0;
    if (g_table_key_state.compare_exchange_strong(st, 1, std::memory_order_acq_rel)) {
        real_pthread_key_create()(&g_table_key, free_thread_keys);
        g_table_key_state.store(2, std::memory_order_release);
    }
    while (g_table_key_state.load(std::memory_order_acquire) != 2) sched_yield();
    real_pthread_setspecific()(g_table_key, t);
    tls_keys = t;
    return t;
}

// The calling context's values and how many slots there are (0: none yet).
KeyValue* my_keys(std::size_t need, std::size_t* n) {
    if (ThreadHandle* th = current_handle()) {
        if (th->key_slots < need) {
            auto* grown = new KeyValue[kMaxKeys]();
            std::copy(th->keys, th->keys + th->key_slots, grown);
            if (th->keys != th->inline_keys) delete[] th->keys;
            th->keys = grown;
            th->key_slots = kMaxKeys;
        }
        *n = th->key_slots;
        return th->keys;
    }
    ThreadKeys* t = thread_keys(need > 0);
    *n = t ? kMaxKeys : 0;
    return t ? t->values : nullptr;
}

// --- the fiber body ----------------------------------------------------------

void release_handle(ThreadHandle* th) noexcept {
    detail::fiber_detach(th->fiber);
    delete th;
}

// An exception other than pthread_exit's escaping the thread function is not
// caught anywhere (kThreadOps.uncaught_terminates): it terminates the process
// with the usual "terminate called after throwing" report, as unpatched.
void run_thread(ThreadHandle* th) {
    try {
        th->result = run_cancellable(th->cancel, th->start, th->arg);
    } catch (const ThreadExit& e) {
        th->result = e.value;
    }
    // glibc's order at thread exit: thread_local destructors, then keys.
    if (detail::Hub::current().running()->tls) detail::fiber_tls_run_destructors();
    run_key_destructors(th->keys, th->key_slots);
    placement_thread_ended();
    signals_thread_ended(&th->sig);
    if (th->state.exchange(2, std::memory_order_acq_rel) == 1) release_handle(th);  // detached: nobody joins
}

void run_payload(void* payload) { run_thread(*static_cast<ThreadHandle**>(payload)); }
void destroy_payload(void*) noexcept {}
constexpr detail::TaskOps kThreadOps{&run_payload, &destroy_payload, true};

// The stack a thread would get unpatched: its attribute's size, else the
// process default (glibc's, from RLIMIT_STACK, or pthread_setattr_default_np),
// which GREEN_STACK_SIZE replaces. Only touched pages cost memory
// (runtime/src/stack_pool.hpp). glibc reports the default for an attribute
// whose size was never set, so a size equal to the default counts as unset.
std::size_t stack_size_for(const pthread_attr_t* attr) {
    std::size_t def = 0;
    pthread_attr_t defaults;
    if (pthread_getattr_default_np(&defaults) == 0) {
        pthread_attr_getstacksize(&defaults, &def);
        pthread_attr_destroy(&defaults);
    }
    std::size_t want = 0;
    if (attr && pthread_attr_getstacksize(attr, &want) == 0 && want != 0 && want != def) return want;
    if (config().stack_size_set || def == 0) return config().stack_size;
    return def;
}

}  // namespace

CancelState* green::interpose::current_cancel_state() noexcept {
    ThreadHandle* th = current_handle();
    return th ? &th->cancel : nullptr;
}

SigState* green::interpose::sigstate_of_handle(void* user) noexcept { return &static_cast<ThreadHandle*>(user)->sig; }

extern "C" {

int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
    // A thread without a hub (one the shim does not own) makes real threads:
    // giving it a hub would give it an event loop nobody serves.
    detail::Hub* hub = fiber_context();
    if (!hub) return real_pthread_create()(thread, attr, start, arg);
    count_call(Family::Thread);
    detail::Hub& here = *hub;
    int detach = PTHREAD_CREATE_JOINABLE;
    if (attr) pthread_attr_getdetachstate(attr, &detach);
    auto* th = new ThreadHandle();
    th->start = start;
    th->arg = arg;
    th->state.store(detach == PTHREAD_CREATE_DETACHED ? 1 : 0, std::memory_order_relaxed);
    void* payload = nullptr;
    detail::FiberRecord* f;
    detail::Hub* where = place_new_thread();
    try {
        SpawnOptions options{.stack_size = stack_size_for(attr), .own_thread_locals = g_thread_locals_per_thread};
        f = here.create_fiber(options, sizeof(ThreadHandle*), alignof(ThreadHandle*),
                              &kThreadOps, &payload, where);
    } catch (...) {
        placement_thread_not_started(where);
        delete th;
        return EAGAIN;
    }
    *static_cast<ThreadHandle**>(payload) = th;
    f->user = th;
    th->fiber = f;
    th->cancel.fiber = f;
    signals_thread_created(&th->sig, f);
    *thread = reinterpret_cast<pthread_t>(th);
    here.start(f);
    return 0;
}

int pthread_join(pthread_t t, void** ret) {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_join()(t, ret);
    if (th == current_handle()) return EDEADLK;
    if (th->state.load(std::memory_order_acquire) == 1) return EINVAL;
    for (;;) {
        try {
            detail::fiber_join(th->fiber);
            break;
        } catch (const green::Cancelled&) {
            cancel_point();  // pthread_join is a cancellation point
        }
    }
    if (ret) *ret = th->result;
    release_handle(th);
    return 0;
}

int pthread_tryjoin_np(pthread_t t, void** ret) {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_tryjoin_np()(t, ret);
    if (th->state.load(std::memory_order_acquire) == 1) return EINVAL;
    if (!detail::fiber_done(th->fiber)) return EBUSY;
    return pthread_join(t, ret);
}

int pthread_timedjoin_np(pthread_t t, void** ret, const struct timespec* abstime) {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_timedjoin_np()(t, ret, abstime);
    if (th->state.load(std::memory_order_acquire) == 1) return EINVAL;
    if (abstime && !detail::fiber_join_until(th->fiber, deadline_at(CLOCK_REALTIME, abstime))) return ETIMEDOUT;
    return pthread_join(t, ret);
}

int pthread_detach(pthread_t t) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_detach()(t);
    int old = th->state.exchange(1, std::memory_order_acq_rel);
    if (old == 1) return EINVAL;
    if (old == 2) release_handle(th);  // already finished: nobody will join
    return 0;
}

void pthread_exit(void* value) {
    // Unwound as glibc does (forced unwind: cleanup handlers, destructors).
    if (ThreadHandle* th = current_handle()) exit_by_unwind(th->cancel, value);
    detail::Hub* h = detail::Hub::current_if_any();
    if (h && g_shim_ready.load() && h->running()->is_root && !h->in_scheduler()) {
        // main() called pthread_exit: the process lives on until the last
        // thread ends, as unpatched. The root parks for good; when no fiber
        // is left anywhere, the runtime ends the process with status 0.
        for (;;) h->park_idle();
    }
    real_pthread_exit()(value);
    __builtin_unreachable();
}

pthread_t pthread_self() noexcept {
    if (ThreadHandle* th = current_handle()) return reinterpret_cast<pthread_t>(th);
    return real_pthread_self()();
}

int pthread_equal(pthread_t a, pthread_t b) noexcept { return a == b; }

int pthread_setname_np(pthread_t t, const char* name) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_setname_np()(t, name);
    std::size_t n = std::strlen(name);
    if (n > 15) return ERANGE;  // the kernel's limit, which glibc enforces
    std::memcpy(th->fiber->name, name, n + 1);
    return 0;
}

int pthread_getname_np(pthread_t t, char* buf, size_t len) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_getname_np()(t, buf, len);
    std::size_t n = std::strlen(th->fiber->name);
    if (len < n + 1) return ERANGE;
    std::memcpy(buf, th->fiber->name, n + 1);
    return 0;
}

int pthread_getattr_np(pthread_t t, pthread_attr_t* attr) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_getattr_np()(t, attr);
    pthread_attr_init(attr);
    pthread_attr_setstack(attr, th->fiber->stack.base, th->fiber->stack.size);
    pthread_attr_setdetachstate(attr, th->state.load() == 1 ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
    return 0;
}

int pthread_kill(pthread_t t, int sig) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) {
        // main runs as a fiber too: its signals are the shim's to deliver.
        if (SigState* m = signals_main_thread(t); m && sig != 0)
            if (int r = signals_kill_thread(m, sig); r != -1) return r;
        return real_pthread_kill()(t, sig);
    }
    if (th->state.load() == 2) return ESRCH;
    if (sig == 0) return 0;
    if (int r = signals_kill_thread(&th->sig, sig); r != -1) return r;
    // A signal the kernel keeps delivering itself (signals.hpp): to the
    // fiber's hub thread.
    long r = syscall(SYS_tgkill, getpid(), th->fiber->hub->tid(), sig);
    return r == 0 ? 0 : errno;
}

int pthread_cancel(pthread_t t) {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_cancel()(t);
    if (th->state.load(std::memory_order_acquire) == 2) return 0;  // ended, not yet joined: as glibc
    return request_cancel(th->cancel);
}

int pthread_setaffinity_np(pthread_t t, size_t size, const cpu_set_t* set) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_setaffinity_np()(t, size, set);
    return sched_setaffinity(th->fiber->hub->tid(), size, set) == 0 ? 0 : errno;
}

int pthread_getaffinity_np(pthread_t t, size_t size, cpu_set_t* set) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return real_pthread_getaffinity_np()(t, size, set);
    return sched_getaffinity(th->fiber->hub->tid(), size, set) == 0 ? 0 : errno;
}

int pthread_once(pthread_once_t* once, void (*init)()) {
    // 0: not run; 1: running; 2: done. Waiters park on the word (fiber futex).
    auto* state = reinterpret_cast<std::atomic<std::uint32_t>*>(once);
    if (state->load(std::memory_order_acquire) == 2) return 0;
    for (;;) {
        std::uint32_t expected = 0;
        if (state->compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
            try {
                init();
            } catch (...) {
                // An exception (std::call_once) leaves it not run, as glibc does.
                state->store(0, std::memory_order_release);
                fiber_futex_wake(state, INT_MAX);
                throw;
            }
            state->store(2, std::memory_order_release);
            fiber_futex_wake(state, INT_MAX);
            return 0;
        }
        if (expected == 2) return 0;
        fiber_futex_wait(state, 1);
    }
}

int sched_yield() noexcept {
    if (detail::Hub* h = fiber_context()) {
        h->yield();
        return 0;
    }
    return real_sched_yield()();
}

// (pthread_yield is a header alias of sched_yield in glibc 2.34+.)

int pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) noexcept {
    detail::SpinGuard g(g_keys_lock);
    for (unsigned k = 0; k < kMaxKeys; ++k) {
        if (g_keys[k].generation % 2 == 0) {
            ++g_keys[k].generation;
            g_keys[k].destructor = destructor;
            *key = k;
            return 0;
        }
    }
    return EAGAIN;
}

int pthread_key_delete(pthread_key_t key) noexcept {
    detail::SpinGuard g(g_keys_lock);
    if (key >= kMaxKeys || g_keys[key].generation % 2 == 0) return EINVAL;
    ++g_keys[key].generation;  // every value of the old key becomes stale
    g_keys[key].destructor = nullptr;
    return 0;
}

void* pthread_getspecific(pthread_key_t key) noexcept {
    if (key >= kMaxKeys) return nullptr;
    std::size_t n = 0;
    KeyValue* v = my_keys(0, &n);
    if (key >= n) return nullptr;
    // A value set under an earlier key with the same number is not seen.
    std::uint32_t gen = __atomic_load_n(&g_keys[key].generation, __ATOMIC_ACQUIRE);
    return v[key].generation == gen ? v[key].value : nullptr;
}

int pthread_setspecific(pthread_key_t key, const void* value) noexcept {
    if (key >= kMaxKeys) return EINVAL;
    std::uint32_t gen = __atomic_load_n(&g_keys[key].generation, __ATOMIC_ACQUIRE);
    if (gen % 2 == 0) return EINVAL;
    std::size_t n = 0;
    KeyValue* v = my_keys(key + 1, &n);
    if (key >= n) return ENOMEM;
    v[key] = KeyValue{gen, const_cast<void*>(value)};
    return 0;
}

}  // extern "C"
