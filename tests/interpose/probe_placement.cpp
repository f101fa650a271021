// Where do new threads land? An ordinary threaded program for the placement
// tests: one thread creates many, each reports the kernel TID it runs on (under
// the shim: its hub's OS thread), and the program prints how many landed on
// each TID. Run patched with several hubs; unpatched every thread has its own.
//
//   probe_placement spread N   N threads, created by main, all alive at once
//   probe_placement alternate N  N long-lived threads as in spread, each
//                              followed by a short one that is joined at once
//                              (a blind round-robin puts every long one on the
//                              same hubs); counts the long-lived ones
//   probe_placement busy N     the same as spread while one thread computes without ever
//                              blocking; counts only the N created after it
//                              has been computing for a while (the spinner is
//                              the first thread: placement puts it off the
//                              creator's hub when loads tie)
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace {

pid_t kernel_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

long long thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Every created thread records its TID, then waits for the gate, so that all
// are alive while the rest are created (a server's connections stay open).
struct Gate {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    void wait() {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return open; });
    }
    void release() {
        {
            std::lock_guard<std::mutex> lock(m);
            open = true;
        }
        cv.notify_all();
    }
};

struct Slot {
    pid_t* tid;
    Gate* gate;
};

void* record_and_wait(void* p) {
    auto* s = static_cast<Slot*>(p);
    *s->tid = kernel_tid();
    s->gate->wait();
    return nullptr;
}

pthread_t create_one(Slot* slot) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t t;
    if (int e = pthread_create(&t, &attr, record_and_wait, slot); e != 0) {
        std::fprintf(stderr, "pthread_create: %s\n", std::strerror(e));
        std::exit(1);
    }
    pthread_attr_destroy(&attr);
    return t;
}

std::vector<pthread_t> create(std::size_t n, std::vector<pid_t>& tids, std::vector<Slot>& slots, Gate& gate) {
    std::vector<pthread_t> threads(n);
    for (std::size_t i = 0; i < n; ++i) {
        slots[i] = Slot{&tids[i], &gate};
        threads[i] = create_one(&slots[i]);
    }
    return threads;
}

void join_all(std::vector<pthread_t>& threads) {
    for (pthread_t t : threads) pthread_join(t, nullptr);
}

// "main N" = threads on main's TID, then "others a b c" in descending order.
void print_counts(const std::vector<pid_t>& tids, pid_t main_tid, pid_t special, const char* special_name) {
    std::map<pid_t, std::size_t> per;
    for (pid_t t : tids) ++per[t];
    std::printf("tids %zu\n", per.size());
    std::printf("main %zu\n", per.count(main_tid) ? per[main_tid] : 0);
    if (special) std::printf("%s %zu\n", special_name, per.count(special) ? per[special] : 0);
    std::vector<std::size_t> others;
    for (auto [tid, n] : per)
        if (tid != main_tid && tid != special) others.push_back(n);
    std::sort(others.rbegin(), others.rend());
    std::printf("others");
    for (std::size_t n : others) std::printf(" %zu", n);
    std::printf("\n");
}

int spread(std::size_t n) {
    std::vector<pid_t> tids(n, 0);
    std::vector<Slot> slots(n);
    Gate gate;
    auto threads = create(n, tids, slots, gate);
    gate.release();
    join_all(threads);
    print_counts(tids, kernel_tid(), 0, "");
    return 0;
}

int alternate(std::size_t n) {
    std::vector<pid_t> tids(n, 0);
    std::vector<Slot> slots(n);
    Gate gate, open_gate;
    open_gate.release();
    std::vector<pthread_t> threads(n);
    for (std::size_t i = 0; i < n; ++i) {
        slots[i] = Slot{&tids[i], &gate};
        threads[i] = create_one(&slots[i]);
        pid_t short_tid = 0;
        Slot short_slot{&short_tid, &open_gate};
        pthread_join(create_one(&short_slot), nullptr);
    }
    gate.release();
    join_all(threads);
    print_counts(tids, kernel_tid(), 0, "");
    return 0;
}

int busy(std::size_t n) {
    int pfd[2];
    if (pipe(pfd) != 0) return 1;
    std::atomic<bool> first_batch_done{false}, stop{false};
    std::atomic<pid_t> spinner_tid{0};
    char c = 0;
    // Computes without a blocking call from start to stop; tells main (a byte
    // on the pipe) when it started and when it has computed 50 ms of CPU time
    // after the first batch.
    std::thread spinner([&] {
        spinner_tid = kernel_tid();
        char s = 's';
        if (write(pfd[1], &s, 1) != 1) std::abort();
        while (!first_batch_done.load()) {
        }
        long long t0 = thread_cpu_ns();
        while (thread_cpu_ns() - t0 < 50'000'000LL) {
        }
        if (write(pfd[1], &s, 1) != 1) std::abort();
        while (!stop.load()) {
        }
    });
    if (read(pfd[0], &c, 1) != 1) return 1;
    Gate gate;
    std::vector<pid_t> tids_a(64, 0), tids_b(n, 0);
    std::vector<Slot> slots_a(64), slots_b(n);
    auto first = create(64, tids_a, slots_a, gate);
    first_batch_done = true;
    if (read(pfd[0], &c, 1) != 1) return 1;
    auto second = create(n, tids_b, slots_b, gate);
    stop = true;
    spinner.join();
    gate.release();
    join_all(first);
    join_all(second);
    print_counts(tids_b, kernel_tid(), spinner_tid.load(), "spinner");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc == 3 && std::strcmp(argv[1], "spread") == 0) return spread(std::strtoul(argv[2], nullptr, 10));
    if (argc == 3 && std::strcmp(argv[1], "alternate") == 0) return alternate(std::strtoul(argv[2], nullptr, 10));
    if (argc == 3 && std::strcmp(argv[1], "busy") == 0) return busy(std::strtoul(argv[2], nullptr, 10));
    std::fprintf(stderr, "usage: %s spread|alternate|busy N\n", argv[0]);
    return 2;
}
