// The thread half of the differential probe: plain pthreads / std::thread
// programs whose observable results (return values, errno names, orderings
// forced by synchronisation) must be identical patched and unpatched, where
// patched means every thread below is a fiber. Timings only as lower bounds.
#include <dlfcn.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe_main.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <limits>
#include <mutex>
#include <semaphore>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using green::probe::Clock;
using green::probe::errno_name;
using green::probe::ms_since;

timespec in_ms(clockid_t clock, int ms) {
    timespec t{};
    clock_gettime(clock, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

void* return_arg_plus_one(void* p) { return reinterpret_cast<void*>(reinterpret_cast<long>(p) + 1); }
void* exit_with_42(void*) {
    pthread_exit(reinterpret_cast<void*>(42));
    return nullptr;
}

pthread_once_t g_once = PTHREAD_ONCE_INIT;
int g_once_runs = 0;
void once_body() { ++g_once_runs; }

std::atomic<int> g_destructed{0};
void key_destructor(void* v) {
    if (v) ++g_destructed;
}

void case_lifecycle() {
    pthread_t t;
    void* ret = nullptr;
    std::printf("create = %s\n", errno_name(pthread_create(&t, nullptr, return_arg_plus_one, reinterpret_cast<void*>(41))));
    int joined = pthread_join(t, &ret);
    std::printf("join = %s, value %ld\n", errno_name(joined), reinterpret_cast<long>(ret));
    pthread_create(&t, nullptr, exit_with_42, nullptr);
    pthread_join(t, &ret);
    std::printf("pthread_exit value %ld\n", reinterpret_cast<long>(ret));
    std::printf("join self = %s\n", errno_name(pthread_join(pthread_self(), nullptr)));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // The detached thread stays alive until the join was tried: joining a
    // detached thread that has already ended is undefined (its pthread_t is
    // gone), and with several hubs it would run and end in parallel.
    struct Detached {
        std::atomic<bool> may_end{false}, ran{false};
    } d;
    pthread_create(&t, &attr, [](void* p) -> void* {
        auto* d = static_cast<Detached*>(p);
        while (!d->may_end.load()) sched_yield();
        d->ran.store(true);
        return nullptr;
    }, &d);
    std::printf("join detached = %s\n", errno_name(pthread_join(t, nullptr)));
    d.may_end = true;
    while (!d.ran.load()) sched_yield();
    std::printf("detached ran\n");
    // Identity: distinct, stable, equal to itself.
    pthread_t self_seen[2];
    std::thread a([&] { self_seen[0] = pthread_self(); std::printf("stable %d\n", pthread_equal(self_seen[0], pthread_self()) != 0); });
    a.join();
    std::thread b([&] { self_seen[1] = pthread_self(); });
    b.join();
    std::printf("distinct from main %d\n", !pthread_equal(self_seen[0], pthread_self()));
    std::printf("std::thread ids distinct %d\n", [] {
        std::thread::id x, y;
        std::thread t1([&] { x = std::this_thread::get_id(); });
        std::thread t2([&] { y = std::this_thread::get_id(); });
        t1.join();
        t2.join();
        return x != y && x != std::this_thread::get_id();
    }());
    std::printf("hardware_concurrency unchanged %d\n", std::thread::hardware_concurrency() == sysconf(_SC_NPROCESSORS_ONLN));
    // Names.
    char name[32];
    std::thread n([&] {
        std::printf("setname long = %s\n", errno_name(pthread_setname_np(pthread_self(), "this-name-is-too-long")));
        std::printf("setname = %s\n", errno_name(pthread_setname_np(pthread_self(), "worker-7")));
        std::printf("getname = %s %s\n", errno_name(pthread_getname_np(pthread_self(), name, sizeof name)), name);
        std::printf("getname small buffer = %s\n", errno_name(pthread_getname_np(pthread_self(), name, 4)));
    });
    n.join();
    // Attributes read back.
    pthread_attr_t a2;
    pthread_attr_init(&a2);
    pthread_attr_setstacksize(&a2, 256 * 1024);
    size_t got = 0;
    pthread_attr_getstacksize(&a2, &got);
    std::printf("attr stacksize %zu\n", got);
    pthread_create(&t, &a2, [](void*) -> void* {
        pthread_attr_t mine;
        pthread_getattr_np(pthread_self(), &mine);
        size_t size = 0;
        pthread_attr_getstacksize(&mine, &size);
        int detach = -1;
        pthread_attr_getdetachstate(&mine, &detach);
        std::printf("running thread: stack >= 128K %d, joinable %d\n", size >= 128 * 1024, detach == PTHREAD_CREATE_JOINABLE);
        pthread_attr_destroy(&mine);
        return nullptr;
    }, nullptr);
    pthread_join(t, nullptr);
    // once, from many threads.
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; ++i) ts.emplace_back([] { pthread_once(&g_once, once_body); });
    for (auto& x : ts) x.join();
    std::printf("once ran %d time(s)\n", g_once_runs);
    std::once_flag flag;
    int calls = 0;
    for (int i = 0; i < 3; ++i) {
        try {
            std::call_once(flag, [&] {
                ++calls;
                if (calls == 1) throw std::runtime_error("first attempt fails");
            });
        } catch (const std::exception& e) {
            std::printf("call_once threw: %s\n", e.what());
        }
    }
    std::printf("call_once calls %d\n", calls);
    std::printf("sched_yield = %d\n", sched_yield());
}

void case_keys() {
    pthread_key_t key;
    std::printf("key_create = %s\n", errno_name(pthread_key_create(&key, key_destructor)));
    static int main_value = 1;
    pthread_setspecific(key, &main_value);
    std::vector<std::thread> ts;
    std::atomic<int> own_seen{0};
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&, i] {
            if (pthread_getspecific(key) == nullptr) ++own_seen;  // fresh thread: no value
            static int values[4];
            pthread_setspecific(key, &values[i]);
            std::this_thread::yield();
            if (pthread_getspecific(key) == &values[i]) ++own_seen;  // not disturbed by the others
        });
    for (auto& t : ts) t.join();
    std::printf("each thread saw only its own value: %d\n", own_seen.load() == 8);
    std::printf("destructors ran %d\n", g_destructed.load());
    std::printf("main value kept %d\n", pthread_getspecific(key) == &main_value);
    pthread_key_delete(key);
    pthread_key_t key2;
    pthread_key_create(&key2, nullptr);
    std::printf("new key starts empty %d\n", pthread_getspecific(key2) == nullptr);
    std::printf("setspecific deleted key = %s\n", errno_name(pthread_setspecific(key, &main_value)));
    thread_local int tl = 0;
    std::printf("thread_local readable %d\n", ++tl);
}

void case_mutex_types() {
    pthread_mutex_t normal = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_t rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    pthread_mutex_t chk = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    int r1 = pthread_mutex_lock(&rec);
    int r2 = pthread_mutex_lock(&rec);
    std::printf("recursive lock x2 = %s %s\n", errno_name(r1), errno_name(r2));
    std::thread([&] { std::printf("other trylock recursive = %s\n", errno_name(pthread_mutex_trylock(&rec))); }).join();
    r1 = pthread_mutex_unlock(&rec);
    r2 = pthread_mutex_unlock(&rec);
    std::printf("recursive unlock x2 = %s %s\n", errno_name(r1), errno_name(r2));
    std::printf("recursive unlock again = %s\n", errno_name(pthread_mutex_unlock(&rec)));
    r1 = pthread_mutex_lock(&chk);
    r2 = pthread_mutex_lock(&chk);
    std::printf("errorcheck lock = %s, relock = %s\n", errno_name(r1), errno_name(r2));
    std::thread([&] { std::printf("errorcheck unlock by other = %s\n", errno_name(pthread_mutex_unlock(&chk))); }).join();
    r1 = pthread_mutex_unlock(&chk);
    r2 = pthread_mutex_unlock(&chk);
    std::printf("errorcheck unlock = %s, again = %s\n", errno_name(r1), errno_name(r2));
    pthread_mutex_lock(&normal);
    std::thread([&] {
        std::printf("trylock held normal = %s\n", errno_name(pthread_mutex_trylock(&normal)));
        auto t0 = Clock::now();
        timespec ts = in_ms(CLOCK_REALTIME, 30);
        std::printf("timedlock held = %s\n", errno_name(pthread_mutex_timedlock(&normal, &ts)));
        std::printf("timedlock waited >= 25ms %d\n", ms_since(t0) >= 25);
        ts = in_ms(CLOCK_MONOTONIC, 20);
        std::printf("clocklock held = %s\n", errno_name(pthread_mutex_clocklock(&normal, CLOCK_MONOTONIC, &ts)));
    }).join();
    pthread_mutex_unlock(&normal);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t m2;
    pthread_mutex_init(&m2, &attr);
    int type = -1;
    pthread_mutexattr_gettype(&attr, &type);
    r1 = pthread_mutex_lock(&m2);
    r2 = pthread_mutex_lock(&m2);
    std::printf("init errorcheck: type %d, lock %s relock %s\n", type, errno_name(r1), errno_name(r2));
    std::printf("destroy locked = %s\n", errno_name(pthread_mutex_destroy(&m2)));
    pthread_mutex_unlock(&m2);
    std::printf("destroy = %s\n", errno_name(pthread_mutex_destroy(&m2)));
    // Contended counter: exact.
    std::mutex m;
    long counter = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < 50; ++i)
        ts.emplace_back([&] {
            for (int k = 0; k < 2000; ++k) {
                std::lock_guard g(m);
                long c = counter;
                if (k % 500 == 0) std::this_thread::yield();  // hold the lock across a switch
                counter = c + 1;
            }
        });
    for (auto& t : ts) t.join();
    std::printf("counter %ld\n", counter);
    std::timed_mutex tm;
    tm.lock();
    std::thread([&] { std::printf("try_lock_for held %d\n", tm.try_lock_for(std::chrono::milliseconds(20))); }).join();
    tm.unlock();
    std::recursive_timed_mutex rtm;
    bool l1 = rtm.try_lock();
    bool l2 = rtm.try_lock();
    std::printf("recursive_timed x2 %d %d\n", l1, l2);
    rtm.unlock();
    rtm.unlock();
}

void case_condvar() {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    int ready = 0, woken = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < 5; ++i)
        ts.emplace_back([&] {
            pthread_mutex_lock(&m);
            while (!ready) pthread_cond_wait(&c, &m);
            ++woken;
            pthread_mutex_unlock(&m);
        });
    // The predicate loop makes the outcome independent of who waits first.
    pthread_mutex_lock(&m);
    ready = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    for (auto& t : ts) t.join();
    std::printf("broadcast woke %d\n", woken);
    pthread_mutex_lock(&m);
    auto t0 = Clock::now();
    timespec ts1 = in_ms(CLOCK_REALTIME, 30);
    std::printf("timedwait = %s\n", errno_name(pthread_cond_timedwait(&c, &m, &ts1)));
    bool waited = ms_since(t0) >= 25;
    std::printf("timedwait waited >= 25ms %d, mutex held after: trylock = %s\n", waited, errno_name(pthread_mutex_trylock(&m)));
    pthread_mutex_unlock(&m);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t mono;
    pthread_cond_init(&mono, &ca);
    pthread_mutex_lock(&m);
    timespec ts2 = in_ms(CLOCK_MONOTONIC, 20);
    std::printf("monotonic timedwait = %s\n", errno_name(pthread_cond_timedwait(&mono, &m, &ts2)));
    ts2 = in_ms(CLOCK_MONOTONIC, 20);
    std::printf("clockwait = %s\n", errno_name(pthread_cond_clockwait(&mono, &m, CLOCK_MONOTONIC, &ts2)));
    pthread_mutex_unlock(&m);
    std::printf("signal with no waiter = %s\n", errno_name(pthread_cond_signal(&c)));
    // std::condition_variable with a predicate and a timeout.
    std::mutex sm;
    std::condition_variable cv;
    bool flag = false;
    std::thread setter([&] {
        std::lock_guard g(sm);
        flag = true;
        cv.notify_one();
    });
    {
        std::unique_lock l(sm);
        std::printf("wait_for pred %d\n", cv.wait_for(l, std::chrono::seconds(10), [&] { return flag; }));
        std::printf("wait_for timeout %d\n", cv.wait_for(l, std::chrono::milliseconds(20), [] { return false; }));
        std::printf("wait_until timeout %d\n",
                    static_cast<int>(cv.wait_until(l, std::chrono::steady_clock::now() + std::chrono::milliseconds(10))));
    }
    setter.join();
}

void case_rwlock() {
    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    std::printf("rdlock = %s\n", errno_name(pthread_rwlock_rdlock(&l)));
    std::thread([&] {
        std::printf("second reader tryrdlock = %s\n", errno_name(pthread_rwlock_tryrdlock(&l)));
        std::printf("writer trywrlock while read-held = %s\n", errno_name(pthread_rwlock_trywrlock(&l)));
        timespec ts = in_ms(CLOCK_REALTIME, 20);
        std::printf("timedwrlock = %s\n", errno_name(pthread_rwlock_timedwrlock(&l, &ts)));
        pthread_rwlock_unlock(&l);
    }).join();
    pthread_rwlock_unlock(&l);
    std::printf("wrlock = %s\n", errno_name(pthread_rwlock_wrlock(&l)));
    std::printf("rdlock while writing self = %s\n", errno_name(pthread_rwlock_rdlock(&l)));
    std::thread([&] {
        std::printf("tryrdlock while write-held = %s\n", errno_name(pthread_rwlock_tryrdlock(&l)));
        timespec ts = in_ms(CLOCK_REALTIME, 20);
        std::printf("timedrdlock = %s\n", errno_name(pthread_rwlock_timedrdlock(&l, &ts)));
    }).join();
    std::printf("unlock = %s\n", errno_name(pthread_rwlock_unlock(&l)));
    // Readers share, writers exclude: check with counters.
    std::shared_mutex sm;
    std::atomic<int> readers{0}, max_readers{0}, writers_inside{0};
    bool writer_overlap = false;
    std::latch all_readers_in(3);
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; ++i)
        ts.emplace_back([&] {
            std::shared_lock r(sm);
            int now = ++readers;
            int m = max_readers.load();
            while (now > m && !max_readers.compare_exchange_weak(m, now)) {
            }
            all_readers_in.arrive_and_wait();  // all three inside at once
            --readers;
        });
    for (auto& t : ts) t.join();
    ts.clear();
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&] {
            for (int k = 0; k < 100; ++k) {
                std::unique_lock w(sm);
                if (++writers_inside != 1 || readers.load() != 0) writer_overlap = true;
                std::this_thread::yield();
                --writers_inside;
            }
        });
    for (auto& t : ts) t.join();
    std::printf("max concurrent readers %d, writer overlap %d\n", max_readers.load(), writer_overlap);
}

void case_barrier_sem() {
    pthread_barrier_t b;
    std::printf("barrier init 0 = %s\n", errno_name(pthread_barrier_init(&b, nullptr, 0)));
    pthread_barrier_init(&b, nullptr, 4);
    std::atomic<int> serial{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&] {
            if (pthread_barrier_wait(&b) == PTHREAD_BARRIER_SERIAL_THREAD) ++serial;
        });
    for (auto& t : ts) t.join();
    std::printf("barrier serial threads %d\n", serial.load());
    pthread_barrier_destroy(&b);
    sem_t s;
    sem_init(&s, 0, 2);
    int v = -1;
    sem_getvalue(&s, &v);
    std::printf("sem value %d\n", v);
    int w1 = sem_trywait(&s);
    int w2 = sem_trywait(&s);
    int w3 = sem_trywait(&s);
    std::printf("trywait x3 = %d %d %d errno %s\n", w1, w2, w3, errno_name(errno));
    timespec ts1 = in_ms(CLOCK_REALTIME, 20);
    int r = sem_timedwait(&s, &ts1);
    std::printf("timedwait = %d %s\n", r, errno_name(errno));
    std::thread poster([&] { sem_post(&s); });
    std::printf("wait posted = %d\n", sem_wait(&s));
    poster.join();
    sem_destroy(&s);
    // futex-based std primitives
    std::latch l(5);
    std::vector<std::thread> ls;
    for (int i = 0; i < 5; ++i) ls.emplace_back([&] { l.arrive_and_wait(); });
    for (auto& t : ls) t.join();
    std::printf("latch released\n");
    std::counting_semaphore<8> cs(0);
    std::thread rel([&] { cs.release(3); });
    cs.acquire();
    cs.acquire();
    cs.acquire();
    rel.join();
    std::printf("counting_semaphore ok, try_acquire_for empty %d\n", cs.try_acquire_for(std::chrono::milliseconds(10)));
    std::atomic<int> flag{0};
    std::thread notifier([&] {
        flag.store(1);
        flag.notify_one();
    });
    flag.wait(0);
    notifier.join();
    std::printf("atomic wait saw %d\n", flag.load());
}

// Runs `wait` on another thread while this one holds what it waits for,
// then lets go with `release`, and prints what the wait returned (an errno
// name). Whether the wait starts before the release or after, it succeeds.
template <class Wait, class Release>
void wait_then_release(const char* what, Wait wait, Release release) {
    std::latch about_to_wait(1);
    int r = -1;
    std::thread t([&] {
        about_to_wait.count_down();
        r = wait();
    });
    about_to_wait.wait();
    release();
    t.join();
    std::printf("%s = %s\n", what, errno_name(r));
}

// A lock call's result, once `unlock` undid it if it took the lock.
template <class Unlock>
int unlocked_after(int r, Unlock unlock) {
    if (r == 0) unlock();
    return r;
}

// Timeouts so far ahead that they mean "never" (tv_sec = LONG_MAX, as
// programs write it): each wait ends when it is released, never timed out.
void case_far_deadlines() {
    const timespec never{std::numeric_limits<time_t>::max(), 0};
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    auto unlock_m = [&] { pthread_mutex_unlock(&m); };
    wait_then_release("mutex_timedlock", [&] { return unlocked_after(pthread_mutex_timedlock(&m, &never), unlock_m); }, unlock_m);
    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    pthread_rwlock_rdlock(&l);
    auto unlock_l = [&] { pthread_rwlock_unlock(&l); };
    wait_then_release("rwlock_timedwrlock", [&] { return unlocked_after(pthread_rwlock_timedwrlock(&l, &never), unlock_l); },
                      unlock_l);
    sem_t s;
    sem_init(&s, 0, 0);
    wait_then_release("sem_timedwait", [&] { return sem_timedwait(&s, &never) == 0 ? 0 : errno; }, [&] { sem_post(&s); });
    sem_destroy(&s);
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    bool ready = false;
    wait_then_release(
        "cond_timedwait", [&] {
            int r = 0;
            pthread_mutex_lock(&m);
            while (!ready && r == 0) r = pthread_cond_timedwait(&c, &m, &never);
            pthread_mutex_unlock(&m);
            return r;
        },
        [&] {
            pthread_mutex_lock(&m);
            ready = true;
            pthread_cond_signal(&c);
            pthread_mutex_unlock(&m);
        });
    // Relative timeouts: futex (what std::atomic::wait is made of) and ppoll.
    std::atomic<std::uint32_t> word{0};
    wait_then_release(
        "futex_wait", [&] {
            while (word.load() == 0)
                if (syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &never, nullptr, 0) != 0 && errno != EAGAIN &&
                    errno != EINTR)
                    return errno;
            return 0;
        },
        [&] {
            word.store(1);
            syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
        });
    int p[2];
    if (pipe(p) != 0) return;
    wait_then_release(
        "ppoll", [&] {
            pollfd fd{p[0], POLLIN, 0};
            return ppoll(&fd, 1, &never, nullptr) == 1 ? 0 : errno;
        },
        [&] { (void)!write(p[1], "x", 1); });
    close(p[0]);
    close(p[1]);
}

// The clock argument of the clock* waits: the futex clocks are accepted,
// any other is EINVAL before the object is looked at. The objects are free
// and the time is past, so no call waits.
void case_clock_ids() {
    const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID, 12345};
    const timespec past{1, 0};
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    auto unlock_m = [&] { pthread_mutex_unlock(&m); };
    auto unlock_l = [&] { pthread_rwlock_unlock(&l); };
    sem_t s;
    sem_init(&s, 0, 1);
    for (clockid_t clock : clocks) {
        std::printf("clock %d:", static_cast<int>(clock));
        std::printf(" mutex_clocklock %s", errno_name(unlocked_after(pthread_mutex_clocklock(&m, clock, &past), unlock_m)));
        std::printf(" rwlock_clockrdlock %s", errno_name(unlocked_after(pthread_rwlock_clockrdlock(&l, clock, &past), unlock_l)));
        std::printf(" rwlock_clockwrlock %s", errno_name(unlocked_after(pthread_rwlock_clockwrlock(&l, clock, &past), unlock_l)));
        pthread_mutex_lock(&m);
        std::printf(" cond_clockwait %s", errno_name(pthread_cond_clockwait(&c, &m, clock, &past)));
        pthread_mutex_unlock(&m);
        const int r = sem_clockwait(&s, clock, &past) == 0 ? 0 : errno;
        if (r == 0) sem_post(&s);
        std::printf(" sem_clockwait %s\n", errno_name(r));
    }
    sem_destroy(&s);
}

// POSIX lets the last user of an object free it right after unlocking its
// mutex, even while the thread that handed the mutex over is still inside
// pthread_mutex_unlock / pthread_cond_signal. Each object sits alone in a
// page that its last user unmaps, so any late touch by the waker faults.
struct Shared {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    sem_t sem;
    bool ready = false;
    int refs = 2;
};

void drop(Shared* s) {
    pthread_mutex_lock(&s->m);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->m);
    if (last) {
        sem_destroy(&s->sem);
        s->~Shared();
        munmap(s, 4096);
    }
}

void* free_after_wake_waiter(void* p) {
    auto* s = static_cast<Shared*>(p);
    sem_wait(&s->sem);  // the poster may be inside sem_post still
    pthread_mutex_lock(&s->m);
    while (!s->ready) pthread_cond_wait(&s->c, &s->m);
    pthread_mutex_unlock(&s->m);
    drop(s);
    return nullptr;
}

void case_free_after_wake() {
    constexpr int kObjects = 3000;
    std::vector<pthread_t> waiters(kObjects);
    for (int i = 0; i < kObjects; ++i) {
        void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        auto* s = new (page) Shared();
        sem_init(&s->sem, 0, 0);
        pthread_create(&waiters[static_cast<std::size_t>(i)], nullptr, free_after_wake_waiter, s);
        sem_post(&s->sem);
        pthread_mutex_lock(&s->m);
        s->ready = true;
        pthread_cond_signal(&s->c);
        pthread_mutex_unlock(&s->m);
        drop(s);
    }
    for (pthread_t t : waiters) pthread_join(t, nullptr);
    std::printf("objects freed by their last user while being woken: %d\n", kObjects);
}

void case_process() {
    std::fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        // Only the forking thread exists in the child: a new thread works.
        std::thread t([] { std::printf("child thread ran\n"); });
        t.join();
        std::fflush(stdout);
        _exit(7);
    }
    int status = 0;
    std::printf("waitpid = %d\n", waitpid(child, &status, 0) == child);
    std::printf("child exit %d\n", WEXITSTATUS(status));
    std::printf("system = %d\n", WEXITSTATUS(system("exit 3")));
    FILE* p = popen("echo from-popen", "r");
    char line[64] = {};
    if (std::fgets(line, sizeof line, p)) std::printf("popen: %s", line);
    std::printf("pclose = %d\n", WEXITSTATUS(pclose(p)));
    // fork while other threads exist: they do not exist in the child.
    std::atomic<bool> stop{false};
    std::thread busy([&] {
        while (!stop.load()) std::this_thread::yield();
    });
    std::fflush(stdout);
    child = fork();
    if (child == 0) _exit(5);
    waitpid(child, &status, 0);
    std::printf("fork with a busy thread: child exit %d\n", WEXITSTATUS(status));
    stop = true;
    busy.join();
}

// The cases below end the process in ways the test compares too.

void case_exit_from_thread() {
    std::thread t([] {
        std::printf("thread calls exit(7)\n");
        std::exit(7);
    });
    t.join();  // never returns: the process ends from the thread
    std::printf("not reached\n");
}

void case_uncaught_in_thread() {
    std::printf("a thread throws\n");
    std::thread t([] { throw std::runtime_error("escaped a thread"); });
    t.join();
    std::printf("not reached\n");
}

void case_main_pthread_exit() {
    static std::atomic<bool> main_gone{false};
    std::thread([] {
        while (!main_gone.load()) std::this_thread::yield();
        std::printf("thread outlived main\n");
    }).detach();
    std::printf("main calls pthread_exit\n");
    main_gone = true;
    pthread_exit(nullptr);
}

void case_main_returns_with_threads_blocked() {
    static pthread_mutex_t never = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&never);
    std::thread([] { pthread_mutex_lock(&never); }).detach();
    std::this_thread::yield();
    std::printf("main returns 4 while a thread is blocked\n");
    std::exit(4);
}

// Not differential (unpatched it hangs forever): the shim must report it.
// glibc's entry points behind C's pthread_cleanup_push (the C++ macro uses a
// destructor instead); called here the way the C macro expands.
extern "C" {
void __pthread_register_cancel(__pthread_unwind_buf_t*);
void __pthread_unregister_cancel(__pthread_unwind_buf_t*);
[[noreturn]] void __pthread_unwind_next(__pthread_unwind_buf_t*);
}

// What the cancelled threads did, printed by the main thread after the join
// (with two hubs their output would otherwise interleave with main's).
std::mutex g_log_mutex;
std::string g_log;
void note(const std::string& line) {
    std::lock_guard g(g_log_mutex);
    g_log += line + "\n";
}
void flush_log() {
    std::lock_guard g(g_log_mutex);
    std::fputs(g_log.c_str(), stdout);
    g_log.clear();
}

struct Noisy {
    const char* what;
    ~Noisy() { note(std::string("destructor: ") + what); }
};

void c_cleanup(void* what) { note(std::string("cleanup handler: ") + static_cast<const char*>(what)); }

int g_cancel_pipe[2];
int g_ready_pipe[2];

void say_ready() { (void)!write(g_ready_pipe[1], "r", 1); }
void wait_ready_byte() {
    char c;
    (void)!read(g_ready_pipe[0], &c, 1);
}

// Blocks in read() (a cancellation point) inside a C++ cleanup handler, a
// destructor and a catch (...) that rethrows.
__attribute__((noinline)) void read_until_cancelled() {
    pthread_cleanup_push(c_cleanup, const_cast<char*>("C++ cleanup_push"));
    Noisy n{"reader's local"};
    try {
        say_ready();
        char c;
        (void)!read(g_cancel_pipe[0], &c, 1);
        note("read returned (not cancelled)");
    } catch (...) {
        note("catch (...) saw the unwind, rethrows");
        throw;
    }
    pthread_cleanup_pop(0);
}

// The same inside a C cleanup buffer, written as C's pthread_cleanup_push expands.
void* blocked_reader(void*) {
    __pthread_unwind_buf_t buf;
    if (__sigsetjmp(reinterpret_cast<__jmp_buf_tag*>(buf.__cancel_jmp_buf), 0)) {
        c_cleanup(const_cast<char*>("C buffer"));
        __pthread_unwind_next(&buf);
    }
    __pthread_register_cancel(&buf);
    read_until_cancelled();
    __pthread_unregister_cancel(&buf);
    return nullptr;
}

void* disabled_then_test(void*) {
    int old = -1;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    note(std::string("old state enabled: ") + (old == PTHREAD_CANCEL_ENABLE ? "1" : "0"));
    say_ready();
    char c;
    // Not cancelled while disabled: the main thread cancels, then writes.
    ssize_t r = read(g_cancel_pipe[0], &c, 1);
    note("read while disabled = " + std::to_string(r));
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, nullptr);
    Noisy n{"disabled thread's local"};
    pthread_testcancel();
    note("after testcancel (not reached)");
    return nullptr;
}

void* exits_with_value(void*) {
    pthread_cleanup_push(c_cleanup, const_cast<char*>("pthread_exit's handler"));
    Noisy n{"exiting thread's local"};
    pthread_exit(reinterpret_cast<void*>(42));
    pthread_cleanup_pop(0);
    return nullptr;
}

void* sleeper(void*) {
    Noisy n{"sleeper's local"};
    say_ready();
    for (;;) sleep(1000);
}

void* finishes(void*) { return reinterpret_cast<void*>(7); }

pthread_mutex_t g_cancel_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cancel_cond = PTHREAD_COND_INITIALIZER;

void unlock_mutex(void* m) {
    note("cleanup handler unlocks the mutex it holds again");
    pthread_mutex_unlock(static_cast<pthread_mutex_t*>(m));
}

// The classic worker: waits on a condvar that is never signalled.
void* cond_waiter(void*) {
    pthread_mutex_lock(&g_cancel_mutex);
    pthread_cleanup_push(unlock_mutex, &g_cancel_mutex);
    say_ready();
    for (;;) pthread_cond_wait(&g_cancel_cond, &g_cancel_mutex);
    pthread_cleanup_pop(1);
    return nullptr;
}

void nothing() {}
void unblock_reader() { (void)!write(g_cancel_pipe[1], "x", 1); }
void wait_for_cond_waiter() {
    pthread_mutex_lock(&g_cancel_mutex);  // the waiter is inside pthread_cond_wait now
    pthread_mutex_unlock(&g_cancel_mutex);
}

// Starts `fn`, waits for its ready byte, cancels it between `before` and
// `after`, joins it, and prints its log and what cancel and join returned
// (the line is left open for the caller to end).
void cancel_when_ready(void* (*fn)(void*), void (*before)(), void (*after)()) {
    pthread_t t;
    void* ret = nullptr;
    pthread_create(&t, nullptr, fn, nullptr);
    wait_ready_byte();
    before();
    int c = pthread_cancel(t);
    after();
    int j = pthread_join(t, &ret);
    flush_log();
    std::printf("cancel = %s, join = %s, PTHREAD_CANCELED: %d", errno_name(c), errno_name(j), ret == PTHREAD_CANCELED);
}

void case_cancel() {
    if (pipe(g_cancel_pipe) != 0 || pipe(g_ready_pipe) != 0) return;
    pthread_t t;
    void* ret = nullptr;

    cancel_when_ready(blocked_reader, nothing, nothing);
    std::printf("\n");
    cancel_when_ready(disabled_then_test, nothing, unblock_reader);
    std::printf("\n");

    pthread_create(&t, nullptr, exits_with_value, nullptr);
    int j = pthread_join(t, &ret);
    flush_log();
    std::printf("join = %s, pthread_exit value = %ld\n", errno_name(j), static_cast<long>(reinterpret_cast<intptr_t>(ret)));

    cancel_when_ready(sleeper, nothing, nothing);
    std::printf("\n");
    cancel_when_ready(cond_waiter, wait_for_cond_waiter, nothing);
    std::printf(", mutex free: %s\n", errno_name(pthread_mutex_trylock(&g_cancel_mutex)));
    pthread_mutex_unlock(&g_cancel_mutex);

    std::printf("main's own cancel state disable = %s\n", errno_name(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr)));
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, nullptr);
    pthread_create(&t, nullptr, finishes, nullptr);
    j = pthread_join(t, &ret);
    std::printf("join = %s, value = %ld\n", errno_name(j), static_cast<long>(reinterpret_cast<intptr_t>(ret)));
}

// A thread made by libc's own pthread_create, as a library that bypasses
// the shim (or one started before it) would: under the shim it has no hub, so
// its locks must block it like glibc's, against fibers holding the same locks.
using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
using JoinFn = int (*)(pthread_t, void**);

pthread_mutex_t g_foreign_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_foreign_cond = PTHREAD_COND_INITIALIZER;
int g_turn = 0;  // 0: main's turn, 1: the foreign thread's
long g_shared = 0;
pthread_key_t g_foreign_key;
pthread_once_t g_foreign_once = PTHREAD_ONCE_INIT;
int g_foreign_once_runs = 0;

void foreign_key_destructor(void* v) { note(std::string("key destructor at thread exit: ") + static_cast<const char*>(v)); }

// 1000 turns of a ping-pong on g_turn between the two threads: waits for
// turn `mine`, adds `add` to g_shared, hands the turn to the other.
void take_turns(int mine, int add) {
    for (int i = 0; i < 1000; ++i) {
        pthread_mutex_lock(&g_foreign_mutex);
        while (g_turn != mine) pthread_cond_wait(&g_foreign_cond, &g_foreign_mutex);
        g_shared += add;
        g_turn = 1 - mine;
        pthread_cond_signal(&g_foreign_cond);
        pthread_mutex_unlock(&g_foreign_mutex);
    }
}

void* foreign_body(void*) {
    pthread_once(&g_foreign_once, [] { ++g_foreign_once_runs; });
    pthread_setspecific(g_foreign_key, const_cast<char*>("foreign value"));
    // Its first lock makes it known to the shim (as a thread that may wake
    // fibers); until then a fiber waiting for it would look deadlocked.
    pthread_mutex_lock(&g_foreign_mutex);
    pthread_mutex_unlock(&g_foreign_mutex);
    say_ready();
    take_turns(1, 2);
    return static_cast<char*>(pthread_getspecific(g_foreign_key)) == std::string("foreign value") ? nullptr
                                                                                                  : reinterpret_cast<void*>(1);
}

void case_foreign_thread() {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    auto real_create = reinterpret_cast<CreateFn>(dlsym(libc, "pthread_create"));
    auto real_join = reinterpret_cast<JoinFn>(dlsym(libc, "pthread_join"));
    pthread_key_create(&g_foreign_key, foreign_key_destructor);
    if (pipe(g_ready_pipe) != 0) return;
    pthread_t t;
    std::printf("libc pthread_create = %s\n", errno_name(real_create(&t, nullptr, foreign_body, nullptr)));
    wait_ready_byte();
    pthread_once(&g_foreign_once, [] { ++g_foreign_once_runs; });
    take_turns(0, 1);
    void* ret = reinterpret_cast<void*>(2);
    int j = real_join(t, &ret);
    std::printf("libc pthread_join = %s, key value seen: %d\n", errno_name(j), ret == nullptr);
    flush_log();
    std::printf("shared = %ld, once ran %d time(s)\n", g_shared, g_foreign_once_runs);
}

// A catch (...) that swallows the cancellation: glibc aborts the process.
void* swallows(void*) {
    try {
        say_ready();
        char c;
        (void)!read(g_cancel_pipe[0], &c, 1);
    } catch (...) {
        std::printf("caught, not rethrown\n");
    }
    return nullptr;
}

void case_cancel_swallowed() {
    if (pipe(g_cancel_pipe) != 0 || pipe(g_ready_pipe) != 0) return;
    pthread_t t;
    pthread_create(&t, nullptr, swallows, nullptr);
    wait_ready_byte();
    pthread_cancel(t);
    pthread_join(t, nullptr);
    std::printf("not reached\n");
}

// A key's value read in an atexit handler: exit() keeps it, unpatched.
pthread_key_t g_exit_key;
char g_exit_value[] = "main thread's value";
void read_key_at_exit() {
    auto* v = static_cast<const char*>(pthread_getspecific(g_exit_key));
    std::printf("atexit handler sees: %s\n", v ? v : "null");
}

void case_exit_time_keys() {
    pthread_key_create(&g_exit_key, nullptr);
    pthread_setspecific(g_exit_key, g_exit_value);
    std::atexit(read_key_at_exit);
    std::printf("set\n");
}

// Two threads that each take their first lock, meet, then ask for the
// other's: neither can go on, and the shim reports the cycle (exit status 3).
void lock_crosswise(const char* name1, void (*take1)(bool second), const char* name2, void (*take2)(bool second)) {
    static std::latch both_hold(2);
    auto run = [](const char* name, void (*take)(bool)) {
        pthread_setname_np(pthread_self(), name);
        take(false);
        both_hold.arrive_and_wait();
        take(true);
    };
    std::thread t1(run, name1, take1);
    std::thread t2(run, name2, take2);
    t1.join();
    t2.join();
}

pthread_mutex_t g_mutex_a = PTHREAD_MUTEX_INITIALIZER, g_mutex_b = PTHREAD_MUTEX_INITIALIZER;
pthread_rwlock_t g_rwlock_a = PTHREAD_RWLOCK_INITIALIZER, g_rwlock_b = PTHREAD_RWLOCK_INITIALIZER;

void case_lock_cycle() {
    lock_crosswise("locks-a-then-b", [](bool second) { pthread_mutex_lock(second ? &g_mutex_b : &g_mutex_a); },
                   "locks-b-then-a", [](bool second) { pthread_mutex_lock(second ? &g_mutex_a : &g_mutex_b); });
}

// A reader waits for a writer that waits for readers: the report names the
// direction of each rwlock wait, and the holder where there is a writer.
void case_rwlock_cycle() {
    lock_crosswise("writes-a-then-b", [](bool second) { pthread_rwlock_wrlock(second ? &g_rwlock_b : &g_rwlock_a); },
                   "reads-b-then-a", [](bool second) { pthread_rwlock_rdlock(second ? &g_rwlock_a : &g_rwlock_b); });
}

// A writer queued behind a reader must get the lock when it is released,
// even if the reader's timeout expires at that moment. Under the shim on one
// hub the moment is forced: a thread computing without a pause holds the hub
// while the holder's sleep (20 ms) and the reader's timeout (30 ms) both
// expire, so they are served in one batch, the holder's first: it unlocks
// while the timed-out reader is still queued.
void case_rwlock_reader_timeout() {
    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    timespec start{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    auto at_ms = [&](long ms) {
        timespec t = start;
        t.tv_nsec += ms * 1000000L;
        t.tv_sec += t.tv_nsec / 1000000000L;
        t.tv_nsec %= 1000000000L;
        return t;
    };
    pthread_rwlock_wrlock(&l);
    int reader = -1, writer = -1;
    std::thread r([&] {
        timespec until = in_ms(CLOCK_REALTIME, 30);
        reader = pthread_rwlock_timedrdlock(&l, &until);
        if (reader == 0) pthread_rwlock_unlock(&l);  // unpatched it may win the lock at 20 ms
    });
    std::thread w([&] {
        writer = pthread_rwlock_wrlock(&l);
        if (writer == 0) pthread_rwlock_unlock(&l);
    });
    std::thread spin([&] {
        timespec end = at_ms(60), now{};
        do clock_gettime(CLOCK_MONOTONIC, &now);
        while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
    });
    timespec wake = at_ms(20);
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nullptr);
    pthread_rwlock_unlock(&l);
    spin.join();
    r.join();
    w.join();
    std::printf("reader %s, writer behind it wrlock = %s\n",
                reader == 0 || reader == ETIMEDOUT ? "got the lock or timed out" : errno_name(reader), errno_name(writer));
}

// Not differential: C++ thread_local is per OS thread, so under the shim two
// "threads" (fibers) of one hub share it. Prints 1 if they saw one address.
const green::probe::Case kCases[] = {
    {"lifecycle", case_lifecycle}, {"keys", case_keys},   {"mutex_types", case_mutex_types},
    {"condvar", case_condvar},     {"rwlock", case_rwlock}, {"rwlock_reader_timeout", case_rwlock_reader_timeout}, {"barrier_sem", case_barrier_sem}, {"far_deadlines", case_far_deadlines},
    {"clock_ids", case_clock_ids},
    {"process", case_process},     {"free_after_wake", case_free_after_wake},     {"exit_from_thread", case_exit_from_thread},
    {"uncaught_in_thread", case_uncaught_in_thread}, {"main_pthread_exit", case_main_pthread_exit},
    {"main_returns_with_threads_blocked", case_main_returns_with_threads_blocked},
    {"foreign_thread", case_foreign_thread}, {"cancel", case_cancel}, {"cancel_swallowed", case_cancel_swallowed}, {"exit_time_keys", case_exit_time_keys},
    {"lock_cycle", case_lock_cycle}, {"rwlock_cycle", case_rwlock_cycle},
};

}  // namespace

int main(int argc, char** argv) { return green::probe::main("probe_threads", kCases, argc, argv); }
