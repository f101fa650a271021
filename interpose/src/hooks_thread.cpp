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
// Thread-specific data (pthread_key_*) is per fiber; C++ thread_local and
// __thread are per OS thread, i.e. shared by all fibers of one hub — that
// cannot be changed by a preload (the compiler addresses them directly).
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "fiber_futex.hpp"
#include "hook_context.hpp"
#include "hubs.hpp"
#include "os.hpp"
#include "real.hpp"
#include "signals.hpp"
#include "spinlock.hpp"

using namespace green;
using namespace green::interpose;

namespace {

constexpr std::uint64_t kHandleMagic = 0x67726e5468726561ull;  // "grnThrea"
constexpr unsigned kMaxKeys = PTHREAD_KEYS_MAX;

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
    std::vector<KeyValue> keys;
    SigState sig;  // the thread's signal mask and pending signals
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
KeySlot g_keys[kMaxKeys];

thread_local std::vector<KeyValue> tls_keys;  // for contexts that are not pthread fibers

ThreadHandle* as_handle(pthread_t t) noexcept {
    auto* h = reinterpret_cast<ThreadHandle*>(t);
    return (h && h->magic == kHandleMagic) ? h : nullptr;
}

ThreadHandle* current_handle() noexcept {
    detail::Hub* h = detail::Hub::current_if_any();
    if (!h || h->in_scheduler()) return nullptr;
    return static_cast<ThreadHandle*>(h->running()->user);
}

std::vector<KeyValue>& my_keys() {
    ThreadHandle* th = current_handle();
    return th ? th->keys : tls_keys;
}

void run_key_destructors(std::vector<KeyValue>& values) {
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
        bool any = false;
        for (unsigned k = 0; k < values.size(); ++k) {
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
        th->result = th->start(th->arg);
    } catch (const ThreadExit& e) {
        th->result = e.value;
    }
    run_key_destructors(th->keys);
    signals_thread_ended(&th->sig);
    if (th->state.exchange(2, std::memory_order_acq_rel) == 1) release_handle(th);  // detached: nobody joins
}

void run_payload(void* payload) { run_thread(*static_cast<ThreadHandle**>(payload)); }
void destroy_payload(void*) noexcept {}
constexpr detail::TaskOps kThreadOps{&run_payload, &destroy_payload, true};

std::size_t stack_size_for(const pthread_attr_t* attr) {
    std::size_t def = config().stack_size;
    std::size_t want = 0;
    if (!attr || pthread_attr_getstacksize(attr, &want) != 0 || want == 0) return def;
    // Honour the program's request within bounds: glibc reports its 8 MiB
    // default for any initialised attr, which would be wasted on a fiber.
    return std::clamp<std::size_t>(want, 16 * 1024, std::max<std::size_t>(def, 1024 * 1024));
}

#define REAL(name) GREEN_NEXT(name)

}  // namespace

SigState* green::interpose::sigstate_of_handle(void* user) noexcept { return &static_cast<ThreadHandle*>(user)->sig; }

extern "C" {

int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
    if (!g_shim_ready.load(std::memory_order_acquire)) return REAL(pthread_create)(thread, attr, start, arg);
    count_call(Family::Thread);
    detail::Hub& here = detail::Hub::current();
    int detach = PTHREAD_CREATE_JOINABLE;
    if (attr) pthread_attr_getdetachstate(attr, &detach);
    auto* th = new ThreadHandle();
    th->start = start;
    th->arg = arg;
    th->state.store(detach == PTHREAD_CREATE_DETACHED ? 1 : 0, std::memory_order_relaxed);
    void* payload = nullptr;
    detail::FiberRecord* f;
    try {
        f = here.create_fiber(SpawnOptions{{}, stack_size_for(attr)}, sizeof(ThreadHandle*), alignof(ThreadHandle*),
                              &kThreadOps, &payload, place_new_thread());
    } catch (...) {
        delete th;
        return EAGAIN;
    }
    *static_cast<ThreadHandle**>(payload) = th;
    f->user = th;
    th->fiber = f;
    signals_thread_created(&th->sig, f);
    *thread = reinterpret_cast<pthread_t>(th);
    here.start(f);
    return 0;
}

int pthread_join(pthread_t t, void** ret) {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_join)(t, ret);
    if (th == current_handle()) return EDEADLK;
    if (th->state.load(std::memory_order_acquire) == 1) return EINVAL;
    detail::fiber_join(th->fiber);
    if (ret) *ret = th->result;
    release_handle(th);
    return 0;
}

int pthread_tryjoin_np(pthread_t t, void** ret) {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_tryjoin_np)(t, ret);
    if (th->state.load(std::memory_order_acquire) == 1) return EINVAL;
    if (!detail::fiber_done(th->fiber)) return EBUSY;
    return pthread_join(t, ret);
}

int pthread_timedjoin_np(pthread_t t, void** ret, const struct timespec* abstime) {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_timedjoin_np)(t, ret, abstime);
    if (th->state.load(std::memory_order_acquire) == 1) return EINVAL;
    if (abstime && !detail::fiber_join_until(th->fiber, deadline_at(CLOCK_REALTIME, abstime))) return ETIMEDOUT;
    return pthread_join(t, ret);
}

int pthread_detach(pthread_t t) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_detach)(t);
    int old = th->state.exchange(1, std::memory_order_acq_rel);
    if (old == 1) return EINVAL;
    if (old == 2) release_handle(th);  // already finished: nobody will join
    return 0;
}

void pthread_exit(void* value) {
    if (current_handle()) throw ThreadExit{value};
    detail::Hub* h = detail::Hub::current_if_any();
    if (h && g_shim_ready.load() && h->running()->is_root && !h->in_scheduler()) {
        // main() called pthread_exit: the process lives on until the last
        // thread ends, as unpatched. The root parks for good; when no fiber
        // is left anywhere, the runtime ends the process with status 0.
        for (;;) h->park_idle();
    }
    REAL(pthread_exit)(value);
    __builtin_unreachable();
}

pthread_t pthread_self() noexcept {
    if (ThreadHandle* th = current_handle()) return reinterpret_cast<pthread_t>(th);
    return REAL(pthread_self)();
}

int pthread_equal(pthread_t a, pthread_t b) noexcept { return a == b; }

int pthread_setname_np(pthread_t t, const char* name) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_setname_np)(t, name);
    std::size_t n = std::strlen(name);
    if (n > 15) return ERANGE;  // the kernel's limit, which glibc enforces
    std::memcpy(th->fiber->name, name, n + 1);
    return 0;
}

int pthread_getname_np(pthread_t t, char* buf, size_t len) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_getname_np)(t, buf, len);
    std::size_t n = std::strlen(th->fiber->name);
    if (len < n + 1) return ERANGE;
    std::memcpy(buf, th->fiber->name, n + 1);
    return 0;
}

int pthread_getattr_np(pthread_t t, pthread_attr_t* attr) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_getattr_np)(t, attr);
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
        return REAL(pthread_kill)(t, sig);
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
    if (!as_handle(t)) return REAL(pthread_cancel)(t);
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
        detail::os::write_stderr("green: pthread_cancel of a fiber thread is not supported; ignored\n");
    return ENOTSUP;
}

int pthread_setaffinity_np(pthread_t t, size_t size, const cpu_set_t* set) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_setaffinity_np)(t, size, set);
    return sched_setaffinity(th->fiber->hub->tid(), size, set) == 0 ? 0 : errno;
}

int pthread_getaffinity_np(pthread_t t, size_t size, cpu_set_t* set) noexcept {
    ThreadHandle* th = as_handle(t);
    if (!th) return REAL(pthread_getaffinity_np)(t, size, set);
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
    return REAL(sched_yield)();
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
    std::vector<KeyValue>& v = my_keys();
    if (key >= v.size()) return nullptr;
    // A value set under an earlier key with the same number is not seen.
    std::uint32_t gen = __atomic_load_n(&g_keys[key].generation, __ATOMIC_ACQUIRE);
    return v[key].generation == gen ? v[key].value : nullptr;
}

int pthread_setspecific(pthread_key_t key, const void* value) noexcept {
    if (key >= kMaxKeys) return EINVAL;
    std::uint32_t gen = __atomic_load_n(&g_keys[key].generation, __ATOMIC_ACQUIRE);
    if (gen % 2 == 0) return EINVAL;
    std::vector<KeyValue>& v = my_keys();
    if (key >= v.size()) v.resize(key + 1);
    v[key] = KeyValue{gen, const_cast<void*>(value)};
    return 0;
}

}  // extern "C"
