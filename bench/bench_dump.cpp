// How long the on-demand dump (GREEN_DUMP_SIGNAL, runtime/src/dump.cpp)
// takes for N parked fibers, next to the time it took to spawn and park
// them in the same run (the baseline). Run: build/bench/bench_dump [N]
// (default 100000). The dump itself goes to /dev/null; its first and last
// lines are kept to check that it listed every fiber.
//
// The dump is timed from the signal to the "green: end of dump" line, read
// by a plain thread from a pipe that stands in for stderr; the main fiber
// parks meanwhile, so its hub is free to serve the dump request.
#include <green/green.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
    int p[2];
    if (pipe(p) != 0) return 1;
    const int real_stderr = dup(2);
    dup2(p[1], 2);
    close(p[1]);
    return green::run([&] {
        green::Event release, dumped;
        std::vector<green::Task<void>> tasks;
        tasks.reserve(static_cast<std::size_t>(n));
        auto t0 = Clock::now();
        for (int i = 0; i < n; ++i)
            tasks.push_back(green::spawn([&] { release.wait(); }, {"parked", 16 * 1024}));
        green::this_fiber::yield();  // every fiber runs once and parks
        const double spawn_ms = ms_since(t0);

        std::string first_line, last_line;
        std::size_t bytes = 0;
        green::ExternalWaker reader_wakes_us;  // a plain thread sets `dumped`
        std::thread reader([&] {
            // Reads the dump off the pipe, keeps its first and last lines.
            std::string pending;
            char buf[65536];
            for (;;) {
                ssize_t got = read(p[0], buf, sizeof buf);
                if (got <= 0) break;
                bytes += static_cast<std::size_t>(got);
                pending.append(buf, static_cast<std::size_t>(got));
                std::size_t nl;
                while ((nl = pending.find('\n')) != std::string::npos) {
                    std::string line = pending.substr(0, nl);
                    pending.erase(0, nl + 1);
                    if (first_line.empty()) first_line = line;
                    if (line.rfind("green: end of dump", 0) == 0) {
                        last_line = line;
                        dumped.set();
                        return;
                    }
                }
            }
            dumped.set();
        });
        auto t1 = Clock::now();
        kill(getpid(), green::config().dump_signal);
        dumped.wait();
        const double dump_ms = ms_since(t1);
        reader.join();
        release.set();
        for (auto& t : tasks) t.join();
        dup2(real_stderr, 2);
        std::printf("fibers %d: spawn+park %.0f ms (baseline), dump %.0f ms (%.2fx the baseline), %zu bytes of dump\n",
                    n, spawn_ms, dump_ms, dump_ms / spawn_ms, bytes);
        std::printf("  %s\n  %s\n", first_line.c_str(), last_line.c_str());
        return last_line.empty() ? 1 : 0;
    });
}
