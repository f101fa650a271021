// Thread-level costs, as an ordinary pthread program (no green headers).
// bench/bench_interpose.sh runs it unpatched and under the shim in one
// invocation and prints patched/unpatched ratios for each line:
//   mutex_uncontended  lock+unlock of an uncontended pthread mutex
//   mutex_handoff      two threads taking turns through a mutex + condvar
//   thread_create_join pthread_create + pthread_join of an empty thread
// Output: "<name> <ns per operation>" per line.
#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using Clock = std::chrono::steady_clock;

double ns_per(Clock::time_point t0, long n) {
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(n);
}

void* park_until_joined(void* p) {
    auto* m = static_cast<pthread_mutex_t*>(p);
    pthread_mutex_lock(m);  // returns when main unlocks at the end
    pthread_mutex_unlock(m);
    return nullptr;
}

void mutex_uncontended(long n) {
    // Measured in a multi-threaded process: glibc skips atomic instructions
    // while a process has a single thread, which no server is.
    static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&gate);
    pthread_t other;
    pthread_create(&other, nullptr, park_until_joined, &gate);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    double ns = ns_per(t0, n);
    pthread_mutex_unlock(&gate);
    pthread_join(other, nullptr);
    std::printf("mutex_uncontended %.1f\n", ns);
}

struct Turns {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    long turn = 0;  // even: ping's turn, odd: pong's
    long rounds = 0;
};

void* pong(void* p) {
    auto* t = static_cast<Turns*>(p);
    pthread_mutex_lock(&t->m);
    for (long i = 0; i < t->rounds; ++i) {
        while (t->turn % 2 == 0) pthread_cond_wait(&t->c, &t->m);
        ++t->turn;
        pthread_cond_signal(&t->c);
    }
    pthread_mutex_unlock(&t->m);
    return nullptr;
}

void mutex_handoff(long n) {
    Turns t;
    t.rounds = n;
    pthread_t other;
    pthread_create(&other, nullptr, pong, &t);
    auto t0 = Clock::now();
    pthread_mutex_lock(&t.m);
    for (long i = 0; i < n; ++i) {
        while (t.turn % 2 == 1) pthread_cond_wait(&t.c, &t.m);
        ++t.turn;
        pthread_cond_signal(&t.c);
    }
    while (t.turn < 2 * n) pthread_cond_wait(&t.c, &t.m);
    pthread_mutex_unlock(&t.m);
    double ns = ns_per(t0, n);
    pthread_join(other, nullptr);
    std::printf("mutex_handoff %.1f\n", ns);
}

void* nothing(void*) { return nullptr; }

void thread_create_join(long n) {
    auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        pthread_t t;
        pthread_create(&t, nullptr, nothing, nullptr);
        pthread_join(t, nullptr);
    }
    std::printf("thread_create_join %.1f\n", ns_per(t0, n));
}

}  // namespace

int main(int argc, char** argv) {
    double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
    mutex_uncontended(static_cast<long>(20000000 * scale));
    mutex_handoff(static_cast<long>(100000 * scale));
    thread_create_join(static_cast<long>(20000 * scale));
}
