// The per-request costs that do not shrink with more hubs, for the scaling
// model in docs/benchmarks.md ("Scaling over hubs"). An ordinary pthread /
// socket program with the shim linked in: run it with GREEN_HUBS=1 (everything
// on one hub) and GREEN_HUBS=2 (the partner thread on the other hub, as
// placement puts the first new thread on the hub without main) to get the
// same-hub and cross-hub cost of each:
//
//   BM_AcceptConnect     loopback connect + accept + two closes: what the one
//                        accepting thread spends per new connection
//   BM_ThreadCreateJoin  pthread_create + pthread_join of an empty thread:
//                        placement, the start on its hub, the join's wake
//   BM_CondvarPingPong   main and a partner thread hand a turn back and forth
//                        through a mutex + two condvars: two wakes per iteration
//   BM_MutexHandoff      main and a partner thread both lock/unlock one
//                        std::mutex in a loop; time per lock of main's
//
// bench/scaling.sh runs it; all timings are wall clock.
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "../tools/common/loopback.hpp"

namespace {

void BM_AcceptConnect(benchmark::State& state) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = green_tools::loopback_address(0);
    socklen_t len = sizeof addr;
    if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 128) != 0 ||
        getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        std::abort();
    for (auto _ : state) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // EINPROGRESS; completes on loopback
        int a = accept(lfd, nullptr, nullptr);
        if (a < 0) std::abort();
        close(a);
        close(c);
    }
    close(lfd);
}
BENCHMARK(BM_AcceptConnect)->UseRealTime();

void* empty(void*) { return nullptr; }

void BM_ThreadCreateJoin(benchmark::State& state) {
    for (auto _ : state) {
        pthread_t t;
        if (pthread_create(&t, nullptr, empty, nullptr) != 0) std::abort();
        pthread_join(t, nullptr);
    }
}
BENCHMARK(BM_ThreadCreateJoin)->UseRealTime();

void BM_CondvarPingPong(benchmark::State& state) {
    std::mutex m;
    std::condition_variable to_partner, to_main;
    int turn = 0;  // 0: main's, 1: partner's, 2: stop
    std::thread partner([&] {
        std::unique_lock<std::mutex> lock(m);
        for (;;) {
            to_partner.wait(lock, [&] { return turn != 0; });
            if (turn == 2) return;
            turn = 0;
            to_main.notify_one();
        }
    });
    {
        std::unique_lock<std::mutex> lock(m);
        for (auto _ : state) {
            turn = 1;
            to_partner.notify_one();
            to_main.wait(lock, [&] { return turn == 0; });
        }
        turn = 2;
        to_partner.notify_one();
    }
    partner.join();
}
BENCHMARK(BM_CondvarPingPong)->UseRealTime();

void BM_MutexHandoff(benchmark::State& state) {
    std::mutex m;
    std::atomic<bool> stop{false};
    long shared = 0;
    std::thread partner([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            std::lock_guard<std::mutex> lock(m);
            ++shared;
        }
    });
    for (auto _ : state) {
        std::lock_guard<std::mutex> lock(m);
        ++shared;
    }
    stop = true;
    partner.join();
    benchmark::DoNotOptimize(shared);
}
BENCHMARK(BM_MutexHandoff)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
