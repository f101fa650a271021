// Runtime micro-benchmarks, each next to the baseline it is judged against.
//
// Every figure in docs/benchmarks.md is a ratio of two benchmarks measured in
// the same run of this program (the machines are noisy; numbers from
// different runs are never compared). After the run, main() prints those
// ratios from the medians the reporter collected.
//
//   BM_RawContextRoundTrip    boost::context::fiber resume and back (2 switches)
//   BM_FiberYieldRoundTrip    fiber A yields to B, B yields back, through the
//                             hub's run queue                    target <= 3x raw
//   BM_ThreadSpawnJoin        pthread_create + pthread_join
//   BM_FiberSpawnJoin         green::spawn + join, trivial body  target >= 100x cheaper
//   BM_OwnTls*                the same two with own_thread_locals (the shim's thread-fibers)
//   BM_FiberSpawnJoinThreadStack  the same with an 8 MiB stack (a thread's default)
//   BM_ThreadBurst64K<N>      N threads at once, each using 64 KiB of stack
//   BM_FiberBurst64K<N>       the same as fibers with 8 MiB stacks (N=1024: recycling trims)
//   BM_ThreadCondvarPingPong  two std::threads, std::mutex + condition_variable
//   BM_FiberEventPingPong     two fibers on one hub, two green::Events
//   BM_CrossHubPingPong       two fibers on two hubs (two OS threads running
//                             green::run), two green::Semaphores
//
// One iteration is always one full round trip (or one spawn+join, or one burst).
//
// Benchmarks run inside a hub: the benchmark thread's own stack is its hub's
// root fiber, so each benchmark spawns the fibers it needs, runs the
// `for (auto _ : state)` loop inside one of them, and joins them from the
// benchmark thread. Only the loop is timed; spawning and joining the
// participants are not. All use real (wall-clock) time, since several have
// the work on threads other than the benchmark thread.
//
// Resident memory per parked fiber is measured by bench/bench_rss.cpp, in a
// fresh process per stack size (a warm stack pool would hide it).
#include <green/green.hpp>

#include <benchmark/benchmark.h>
#include <boost/context/fiber.hpp>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace ctx = boost::context;

// --- Context switch ----------------------------------------------------------

// The floor: one resume into a peer context and one back, with nothing else.
void BM_RawContextRoundTrip(benchmark::State& state) {
    ctx::fiber peer{[](ctx::fiber&& caller) {
        for (;;) caller = std::move(caller).resume();
        return std::move(caller);
    }};
    for (auto _ : state) peer = std::move(peer).resume();
    // Destroying `peer` unwinds its stack (boost's forced_unwind).
}
BENCHMARK(BM_RawContextRoundTrip)->Unit(benchmark::kNanosecond)->UseRealTime();

// Two spawned fibers take turns through the run queue. A runs the timed loop;
// each iteration is A's yield (B runs) plus B's yield (A runs again). The
// benchmark thread's root fiber is parked in join() meanwhile, so it is not
// in the run queue.
void BM_FiberYieldRoundTrip(benchmark::State& state) {
    bool stop = false;
    auto b = green::spawn([&] {
        while (!stop) green::this_fiber::yield();
    });
    auto a = green::spawn([&] {
        for (auto _ : state) green::this_fiber::yield();
        stop = true;
    });
    a.join();
    b.join();
}
BENCHMARK(BM_FiberYieldRoundTrip)->Unit(benchmark::kNanosecond)->UseRealTime();

// The same between two fibers with TLS blocks of their own (the shim's
// thread-fibers): every switch also moves the thread pointer.
void BM_OwnTlsYieldRoundTrip(benchmark::State& state) {
    green::SpawnOptions own;
    own.own_thread_locals = true;
    bool stop = false;
    auto b = green::spawn(
        [&] {
            while (!stop) green::this_fiber::yield();
        },
        own);
    auto a = green::spawn(
        [&] {
            for (auto _ : state) green::this_fiber::yield();
            stop = true;
        },
        own);
    a.join();
    b.join();
}
BENCHMARK(BM_OwnTlsYieldRoundTrip)->Unit(benchmark::kNanosecond)->UseRealTime();

// --- Spawn + join ------------------------------------------------------------

void* trivial_thread(void*) { return nullptr; }

void BM_ThreadSpawnJoin(benchmark::State& state) {
    for (auto _ : state) {
        pthread_t t;
        if (pthread_create(&t, nullptr, &trivial_thread, nullptr) != 0) {
            state.SkipWithError("pthread_create failed");
            break;
        }
        pthread_join(t, nullptr);
    }
}
BENCHMARK(BM_ThreadSpawnJoin)->Unit(benchmark::kNanosecond)->UseRealTime();

// Spawn from inside a fiber (the usual case) with the default stack size;
// after the first iteration the stack comes from the hub's warm pool.
void BM_FiberSpawnJoin(benchmark::State& state) {
    green::spawn([&] {
        for (auto _ : state) green::spawn([] {}).join();
    }).join();
}
BENCHMARK(BM_FiberSpawnJoin)->Unit(benchmark::kNanosecond)->UseRealTime();

// A thread-fiber's spawn + join: the fiber also gets and frees a TLS block.
void BM_OwnTlsSpawnJoin(benchmark::State& state) {
    green::SpawnOptions own;
    own.own_thread_locals = true;
    green::spawn([&] {
        for (auto _ : state) green::spawn([] {}, own).join();
    }).join();
}
BENCHMARK(BM_OwnTlsSpawnJoin)->Unit(benchmark::kNanosecond)->UseRealTime();
// The stack a thread gets by default (8 MiB here), as the shim gives its
// thread-fibers: only the touched top pages cost, so spawn+join from the warm
// pool should cost what the default size does.
void BM_FiberSpawnJoinThreadStack(benchmark::State& state) {
    green::SpawnOptions opts;
    opts.stack_size = 8 * 1024 * 1024;
    green::spawn([&] {
        for (auto _ : state) green::spawn([] {}, opts).join();
    }).join();
}
BENCHMARK(BM_FiberSpawnJoinThreadStack)->Unit(benchmark::kNanosecond)->UseRealTime();

// Bursts: N threads (fibers) alive at once, each using 64 KiB of its stack,
// then all joined; one iteration is one burst. 128 stays within the stacks a
// hub caches untrimmed while it never idles (runtime/src/stack_pool.hpp);
// 1024 goes past that, so the fiber version includes releasing the touched
// pages of recycled stacks and faulting them in again, as glibc does for
// thread stacks.
__attribute__((noinline)) int use_64k() {
    volatile char frame[64 * 1024];
    for (std::size_t i = 0; i < sizeof frame; i += 512) frame[i] = static_cast<char>(i);
    return frame[4096];
}

void* use_64k_thread(void*) { return reinterpret_cast<void*>(static_cast<long>(use_64k())); }

template <int N>
void BM_ThreadBurst64K(benchmark::State& state) {
    std::vector<pthread_t> ts(N);
    for (auto _ : state) {
        for (auto& t : ts) pthread_create(&t, nullptr, &use_64k_thread, nullptr);
        for (auto& t : ts) pthread_join(t, nullptr);
    }
}
BENCHMARK_TEMPLATE(BM_ThreadBurst64K, 128)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_ThreadBurst64K, 1024)->Unit(benchmark::kMicrosecond)->UseRealTime();

template <int N>
void BM_FiberBurst64K(benchmark::State& state) {
    green::SpawnOptions opts;
    opts.stack_size = 8 * 1024 * 1024;
    green::spawn([&] {
        std::vector<green::Task<int>> ts;
        ts.reserve(N);
        for (auto _ : state) {
            for (int i = 0; i < N; ++i) ts.push_back(green::spawn([] { return use_64k(); }, opts));
            for (auto& t : ts) t.join();
            ts.clear();
        }
    }).join();
}
BENCHMARK_TEMPLATE(BM_FiberBurst64K, 128)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_FiberBurst64K, 1024)->Unit(benchmark::kMicrosecond)->UseRealTime();

// --- Ping-pong -----------------------------------------------------------------

// A bumps `seq` to odd and waits for even; B waits for odd and bumps it to
// even. One iteration = A -> B -> A.
void BM_ThreadCondvarPingPong(benchmark::State& state) {
    std::mutex m;
    std::condition_variable cv;
    std::uint64_t seq = 0;
    bool stop = false;
    std::thread b([&] {
        std::unique_lock lock(m);
        for (;;) {
            cv.wait(lock, [&] { return stop || (seq & 1) != 0; });
            if (stop) return;
            ++seq;
            cv.notify_one();
        }
    });
    std::thread a([&] {
        std::unique_lock lock(m);
        for (auto _ : state) {
            ++seq;
            cv.notify_one();
            cv.wait(lock, [&] { return (seq & 1) == 0; });
        }
        stop = true;
        cv.notify_one();
    });
    a.join();
    b.join();
}
BENCHMARK(BM_ThreadCondvarPingPong)->Unit(benchmark::kNanosecond)->UseRealTime();

// The fiber ping-pongs below share their two loops: A gives `ping` once per
// iteration and takes `pong`; B takes each ping and gives a pong, until A
// sets `stop` and gives a last ping. Signal adapts the primitive measured.
template <class Signal>
void answer_pings(Signal& ping, Signal& pong, const std::atomic<bool>& stop) {
    for (;;) {
        ping.take();
        if (stop.load(std::memory_order_relaxed)) return;
        pong.give();
    }
}

template <class Signal>
void send_pings(benchmark::State& state, Signal& ping, Signal& pong, std::atomic<bool>& stop) {
    for (auto _ : state) {
        ping.give();
        pong.take();
    }
    stop.store(true, std::memory_order_relaxed);  // published by the give below
    ping.give();
}

// An Event taken is reset by the side that consumed it: safe, because the
// two sides never run at once (one hub) and each Event is set again only
// after the reset.
struct EventSignal {
    green::Event event;
    void give() { event.set(); }
    void take() {
        event.wait();
        event.reset();
    }
};

struct SemaphoreSignal {
    green::Semaphore semaphore;
    void give() { semaphore.release(); }
    void take() { semaphore.acquire(); }
};

// Same shape on one hub, with Events.
void BM_FiberEventPingPong(benchmark::State& state) {
    EventSignal ping, pong;
    std::atomic<bool> stop{false};
    auto b = green::spawn([&] { answer_pings(ping, pong, stop); });
    auto a = green::spawn([&] { send_pings(state, ping, pong, stop); });
    a.join();
    b.join();
}
BENCHMARK(BM_FiberEventPingPong)->Unit(benchmark::kNanosecond)->UseRealTime();

// Two hubs: each std::thread runs green::run, so A and B are fibers on
// different OS threads and every wake crosses hubs (remote queue + ev_async).
void BM_CrossHubPingPong(benchmark::State& state) {
    // The hubs start one after the other: without this, B's hub could park
    // before A's hub exists and look like the whole process deadlocked.
    green::ExternalWaker starting;
    SemaphoreSignal ping, pong;
    std::atomic<bool> stop{false};
    std::thread b([&] { green::run([&] { answer_pings(ping, pong, stop); }); });
    std::thread a([&] { green::run([&] { send_pings(state, ping, pong, stop); }); });
    a.join();
    b.join();
}
BENCHMARK(BM_CrossHubPingPong)->Unit(benchmark::kNanosecond)->UseRealTime();

// --- Reporting -------------------------------------------------------------------

// Prints like the ConsoleReporter and remembers, per benchmark, the median
// real time per iteration (ns) over the repetitions of this run.
class RatioReporter : public benchmark::ConsoleReporter {
public:
    using ConsoleReporter::ConsoleReporter;

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& r : runs) {
            if (r.error_occurred) continue;
            const std::string& name = r.run_name.function_name;
            double ns = r.GetAdjustedRealTime() * to_ns(r.time_unit);
            if (r.run_type == Run::RT_Aggregate) {
                if (r.aggregate_name == "median") medians_[name] = ns;
            } else {
                samples_[name].push_back(ns);
            }
        }
    }

    // Median real ns per iteration, or a negative value if it did not run.
    double ns(const std::string& name) const {
        if (auto it = medians_.find(name); it != medians_.end()) return it->second;
        auto it = samples_.find(name);
        if (it == samples_.end() || it->second.empty()) return -1;
        std::vector<double> v = it->second;
        std::sort(v.begin(), v.end());
        std::size_t n = v.size();
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

private:
    static double to_ns(benchmark::TimeUnit u) {
        switch (u) {
            case benchmark::kNanosecond: return 1;
            case benchmark::kMicrosecond: return 1e3;
            case benchmark::kMillisecond: return 1e6;
            case benchmark::kSecond: return 1e9;
        }
        return 1;
    }
    std::map<std::string, double> medians_;
    std::map<std::string, std::vector<double>> samples_;
};

// ratio = slower / faster, printed only when both ran. `target` describes
// the goal; `met` is null for ratios that are informational only.
void print_ratio(const RatioReporter& rep, const char* num, const char* den, const char* target,
                 bool (*met)(double)) {
    double n = rep.ns(num), d = rep.ns(den);
    if (n <= 0 || d <= 0) return;
    double r = n / d;
    std::printf("ratio %s / %s = %.2fx (%.1f ns / %.1f ns)", num, den, r, n, d);
    if (target) std::printf(" (target %s: %s)", target, met(r) ? "met" : "MISSED");
    std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    RatioReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                 : benchmark::ConsoleReporter::OO_Tabular);
    benchmark::RunSpecifiedBenchmarks(&reporter);

    std::printf("\nRatios (medians over the repetitions of this run):\n");
    print_ratio(reporter, "BM_FiberYieldRoundTrip", "BM_RawContextRoundTrip", "<= 3x",
                [](double r) { return r <= 3.0; });
    print_ratio(reporter, "BM_ThreadSpawnJoin", "BM_FiberSpawnJoin", ">= 100x (fiber spawn+join cheaper)",
                [](double r) { return r >= 100.0; });
    print_ratio(reporter, "BM_OwnTlsYieldRoundTrip", "BM_FiberYieldRoundTrip", "<= 1.3x (thread pointer switch)",
                [](double r) { return r <= 1.3; });
    print_ratio(reporter, "BM_ThreadSpawnJoin", "BM_OwnTlsSpawnJoin", ">= 50x (thread-fiber spawn+join cheaper)",
                [](double r) { return r >= 50.0; });
    print_ratio(reporter, "BM_FiberSpawnJoinThreadStack", "BM_FiberSpawnJoin", nullptr, nullptr);
    print_ratio(reporter, "BM_ThreadBurst64K<128>", "BM_FiberBurst64K<128>", nullptr, nullptr);
    print_ratio(reporter, "BM_ThreadBurst64K<1024>", "BM_FiberBurst64K<1024>", nullptr, nullptr);
    print_ratio(reporter, "BM_ThreadCondvarPingPong", "BM_FiberEventPingPong", nullptr, nullptr);
    print_ratio(reporter, "BM_CrossHubPingPong", "BM_FiberEventPingPong", nullptr, nullptr);
    print_ratio(reporter, "BM_ThreadCondvarPingPong", "BM_CrossHubPingPong", nullptr, nullptr);
    print_ratio(reporter, "BM_FiberEventPingPong", "BM_RawContextRoundTrip", nullptr, nullptr);
    std::fflush(stdout);
    benchmark::Shutdown();
    return 0;
}
