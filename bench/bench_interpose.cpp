// Cost of interposition on the hot path: a hooked read/write pair on a
// socket that is always ready, next to the same pair through libc's own
// functions, in one process and one run (this program links the shim, the
// "linking as a library" use, so the main thread is a hub's root fiber and
// every hook takes its full decision path: hub, fd table, user flags).
//
// Target (issue: LD_PRELOAD shim part 1): hooked <= 1.15x real.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

namespace {

using ReadFn = ssize_t (*)(int, void*, size_t);
using WriteFn = ssize_t (*)(int, const void*, size_t);

struct Libc {
    ReadFn read;
    WriteFn write;
    Libc() {
        void* h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        read = reinterpret_cast<ReadFn>(dlsym(h, "read"));
        write = reinterpret_cast<WriteFn>(dlsym(h, "write"));
    }
};
const Libc libc_fns;

struct Pair {
    int sv[2];
    Pair() {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) std::abort();  // hooked: a managed socket
    }
    ~Pair() {
        close(sv[0]);
        close(sv[1]);
    }
};

void BM_RealReadWrite(benchmark::State& state) {
    Pair p;
    char c = 'x';
    for (auto _ : state) {
        if (libc_fns.write(p.sv[1], &c, 1) != 1 || libc_fns.read(p.sv[0], &c, 1) != 1) state.SkipWithError("io");
    }
}
BENCHMARK(BM_RealReadWrite);

void BM_HookedReadWrite(benchmark::State& state) {
    Pair p;
    char c = 'x';
    for (auto _ : state) {
        if (write(p.sv[1], &c, 1) != 1 || read(p.sv[0], &c, 1) != 1) state.SkipWithError("io");
    }
}
BENCHMARK(BM_HookedReadWrite);

class RatioReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs)
            if (r.run_type == Run::RT_Iteration || r.aggregate_name == "median")
                times_[r.run_name.function_name] = r.GetAdjustedRealTime();
        ConsoleReporter::ReportRuns(runs);
    }
    void ratio(const char* a, const char* b, double target) {
        if (!times_.count(a) || !times_.count(b)) return;
        double x = times_[a] / times_[b];
        std::printf("ratio %s / %s = %.3fx (target <= %.2fx: %s)\n", a, b, x, target, x <= target ? "met" : "missed");
    }

private:
    std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.ratio("BM_HookedReadWrite", "BM_RealReadWrite", 1.15);
    benchmark::Shutdown();
}
