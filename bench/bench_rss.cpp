// Resident memory of parked fibers: VmRSS delta per fiber.
//
// For each stack size (the configured default, 64 KiB, then 8 MiB: what a
// thread gets by default unpatched and so under the shim) a fresh child
// process spawns 100,000 fibers that each park on one green::Event, reads
// VmRSS from /proc/self/status before and after, then releases and joins
// them. A fresh process per size matters: stacks are pooled and never
// unmapped, so a second measurement in the same process would reuse stacks
// whose pages are already resident.
//
// The delta is everything the runtime keeps resident for a parked fiber:
// the touched top of its stack (FiberRecord, the callable, the frames down to
// the switch), the canary page of stacks beyond the guard-page budget (see
// runtime/src/stack_pool.hpp), and any heap the runtime allocates per fiber
// (none is expected). The fibers are detached, so the benchmark itself keeps
// no per-fiber handle. A checkpoint after the first 10,000 fibers shows the
// cost while every stack still has a guard page (on kernels without guard
// markers). VmPTE (page tables, not part of VmRSS) is printed too: guard
// markers live there.
//
// Usage: bench_rss [fibers]   (default 100000)
#include <green/green.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

long status_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::size_t n = std::strlen(field);
    while (std::getline(in, line)) {
        if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
    }
    return -1;
}

long count_maps() {
    std::ifstream in("/proc/self/maps");
    std::string line;
    long n = 0;
    while (std::getline(in, line)) ++n;
    return n;
}

constexpr double kTargetKiB = 12.0;

int measure(std::size_t stack_size, long fibers) {
    // Create this thread's hub (libev loop, scheduler stack, signal stack)
    // before the baseline: a one-time cost, not a per-fiber one.
    green::this_fiber::yield();

    green::SpawnOptions opts;
    opts.stack_size = stack_size;
    const std::size_t effective = stack_size ? stack_size : green::config().stack_size;

    green::Event release;
    green::WaitGroup parked, finished;
    const long checkpoint = fibers > 10000 ? 10000 : fibers;

    const long rss0 = status_kib("VmRSS");
    const long pte0 = status_kib("VmPTE");
    const long maps0 = count_maps();
    auto spawn_n = [&](long n) {
        parked.add(n);
        finished.add(n);
        for (long i = 0; i < n; ++i) {
            green::spawn(
                [&] {
                    parked.done();
                    release.wait();
                    finished.done();
                },
                opts)
                .detach();
        }
        parked.wait();  // returns once the last of them has parked on `release`
    };
    spawn_n(checkpoint);
    const long rss1 = status_kib("VmRSS");
    spawn_n(fibers - checkpoint);
    const long rss2 = status_kib("VmRSS");
    const long maps2 = count_maps();
    const long pte2 = status_kib("VmPTE");
    release.set();
    finished.wait();

    const double per_fiber = static_cast<double>(rss2 - rss0) / static_cast<double>(fibers);
    const double per_first = static_cast<double>(rss1 - rss0) / static_cast<double>(checkpoint);
    std::printf(
        "rss parked fibers=%ld stack=%zu KiB: VmRSS %ld -> %ld KiB, delta %.2f KiB per fiber "
        "(first %ld fibers: %.2f KiB each; %ld new mappings; page tables %.2f KiB per fiber) (target <= %.0f KiB: %s)\n",
        fibers, effective / 1024, rss0, rss2, per_fiber, checkpoint, per_first, maps2 - maps0,
        static_cast<double>(pte2 - pte0) / static_cast<double>(fibers), kTargetKiB,
        per_fiber <= kTargetKiB ? "met" : "MISSED");
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    long fibers = argc > 1 ? std::atol(argv[1]) : 100000;
    if (fibers <= 0) {
        std::fprintf(stderr, "usage: %s [fibers]\n", argv[0]);
        return 2;
    }
    int status_all = 0;
    for (std::size_t stack : {std::size_t{0}, std::size_t{64 * 1024}, std::size_t{8 * 1024 * 1024}}) {
        std::fflush(stdout);
        pid_t pid = fork();  // before this process ever touched green: a cold pool
        if (pid < 0) {
            std::perror("fork");
            return 1;
        }
        if (pid == 0) _exit(measure(stack, fibers));
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "bench_rss: measurement for stack %zu failed (status %d)\n", stack, status);
            status_all = 1;
        }
    }
    return status_all;
}
