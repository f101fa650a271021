// 100,000 fibers parked at once, with the default stack-guard mode (auto).
//
// vm.max_map_count is 65530 on the CI machine and every guard page splits a
// mapping, so this only passes if the guard budget falls back to canaries
// instead of running out of map entries. The resident memory per parked
// fiber is reported (test property "rss_bytes_per_fiber" and stdout).
#include "test_util.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace green_test;

namespace {

void run_parked_fibers(int n, std::size_t stack_size, const char* label, bool cold) {
    const char* guard = std::getenv("GREEN_STACK_GUARD");
    ASSERT_TRUE(guard == nullptr || std::string(guard) == "auto") << "this test is about the default guard mode";
    in_green([&] {
        green::Event go;
        int parked = 0, finished = 0;
        std::vector<green::Task<void>> tasks;
        tasks.reserve(static_cast<std::size_t>(n));
        green::Stats before = green::stats();
        long rss_before = rss_kib();
        auto start = Clock::now();
        for (int i = 0; i < n; ++i) {
            tasks.push_back(green::spawn([&] {
                ++parked;
                go.wait();
                ++finished;
            }, {{}, stack_size}));
        }
        let_runnable_fibers_run();  // FIFO: every fiber has run and parked
        long rss_parked = rss_kib();
        EXPECT_EQ(parked, n);
        EXPECT_EQ(finished, 0);
        EXPECT_GE(green::stats().sync_waits - before.sync_waits, static_cast<std::uint64_t>(n));
        go.set();
        for (auto& t : tasks) t.join();
        EXPECT_EQ(finished, n);
        double per_fiber = (rss_parked - rss_before) * 1024.0 / n;
        std::printf("[ %s ] %d fibers with %zu-byte stacks: RSS +%ld KiB while parked = %.0f bytes/fiber%s; %.0f ms\n",
                    label, n, stack_size, rss_parked - rss_before, per_fiber,
                    cold ? "" : " (stacks already resident from the first wave)", ms_since(start));
        if (cold) testing::Test::RecordProperty("rss_bytes_per_fiber", static_cast<int>(per_fiber));
    });
}

}  // namespace

TEST(ManyFibers, HundredThousandParkedOnOneEvent) {
    run_parked_fibers(100'000, 16 * 1024, "16K", true);
    // A second wave of the same size comes from the pool: it needs no new
    // mappings (which, with guards, would run into max_map_count).
    run_parked_fibers(100'000, 16 * 1024, "16K again", false);
}
