// The blocking pool: real OS threads for calls that cannot be made
// non-blocking (getaddrinfo, regular-file I/O).
//
// Invariants: a job is a node on the submitting fiber's stack, valid until the
// pool wakes that fiber, which stays parked (not cancellable) until then.
// Jobs queue FIFO and are never dropped; threads start lazily up to
// GREEN_POOL_SIZE. Pool threads are plain threads (os::start_plain_thread:
// the shim must not turn them into fibers) and park on a futex, not a pthread
// condvar (which the shim interposes). pool_jobs_in_flight() counts a job
// from submission until its waiter has been woken, so the deadlock detector
// never mistakes a busy pool for a dead process.
#include <green/blocking.hpp>
#include <green/run.hpp>

#include <atomic>

#include "fork.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "spinlock.hpp"

namespace green::detail {

namespace {

struct Job {
    void (*fn)(void*);
    void* arg;
    Waiter waiter;
    Job* next = nullptr;
};

struct Pool {
    std::atomic<std::uint32_t> lock{0};
    Job* head = nullptr;  // guarded by lock
    Job* tail = nullptr;
    std::size_t threads = 0;  // guarded by lock
    std::size_t idle = 0;     // guarded by lock
    std::size_t queued = 0;   // guarded by lock: jobs in the queue, not yet taken by a thread
    std::atomic<std::uint32_t> signal{0};  // futex word: bumped per submission
    std::atomic<std::uint64_t> completed{0};
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: threads may outlive static destructors
    return *p;
}

void* worker(void*) {
    Pool& p = pool();
    for (;;) {
        std::uint32_t seen = p.signal.load(std::memory_order_acquire);
        Job* job = nullptr;
        {
            SpinGuard g(p.lock);
            job = p.head;
            if (job) {
                p.head = job->next;
                if (!p.head) p.tail = nullptr;
                --p.queued;
            } else {
                ++p.idle;
            }
        }
        if (!job) {
            os::futex_wait(&p.signal, seen);
            SpinGuard g(p.lock);
            --p.idle;
            continue;
        }
        job->fn(job->arg);
        p.completed.fetch_add(1, std::memory_order_relaxed);
        Hub::wake(job->waiter, WakeReason::Woken);
        pool_jobs_in_flight().fetch_sub(1);  // after the wake is posted
    }
    return nullptr;
}

}  // namespace

void pool_fork_prepare() noexcept { lock_word_acquire(pool().lock); }
void pool_fork_parent() noexcept { pool().lock.store(0, std::memory_order_release); }
void pool_fork_child() noexcept {
    // The pool's threads do not exist in the child; queued jobs belonged to
    // fibers that do not exist either. Threads start again on demand.
    Pool& p = pool();
    p.head = p.tail = nullptr;
    p.threads = 0;
    p.idle = 0;
    p.lock.store(0, std::memory_order_release);
}

std::uint64_t pool_jobs_completed() noexcept { return pool().completed.load(std::memory_order_relaxed); }

void run_on_pool(void (*fn)(void*), void* arg) noexcept {
    Hub& h = Hub::current();
    Pool& p = pool();
    Job job{fn, arg, Waiter(h.running(), WaitKind::Pool), nullptr};
    pool_jobs_in_flight().fetch_add(1);
    bool start_thread = false;
    {
        SpinGuard g(p.lock);
        if (p.tail) p.tail->next = &job;
        else p.head = &job;
        p.tail = &job;
        ++p.queued;
        // Start a thread unless an idle one will take this job. An idle
        // thread takes one job when it wakes, and it stays counted as idle
        // until then: comparing against `idle == 0` let a burst of
        // submissions all count on the same sleeping thread, so the pool
        // never grew and jobs that wait on each other deadlocked behind it.
        if (p.queued > p.idle && p.threads < config().pool_size) {
            ++p.threads;
            start_thread = true;
        }
    }
    if (start_thread && !os::start_plain_thread(worker, nullptr, 256 * 1024)) {
        SpinGuard g(p.lock);
        --p.threads;  // the queued job is served by an existing thread
        if (p.threads == 0) {
            os::write_stderr("green: cannot start a blocking-pool thread\n");
            std::abort();
        }
    }
    p.signal.fetch_add(1, std::memory_order_release);
    os::futex_wake(&p.signal, 1);
    HubCounters::bump(h.counters.sync_waits);
    // Not cancellable: the job owns state on this stack until it finishes.
    h.park(job.waiter, ParkOptions::uncancellable());
}

}  // namespace green::detail

namespace green {
std::size_t blocking_pool_size() noexcept { return config().pool_size; }
}  // namespace green
