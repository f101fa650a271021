// The hub monitor (runtime/src/monitor.cpp): a fiber that keeps its hub for
// longer than GREEN_BLOCKED_MS while other fibers live on that hub is
// reported with the hub and the fiber's name; nothing is said when nobody
// else waits, or when the monitor is off. Each case runs in a child process
// so that its GREEN_BLOCKED_MS is read fresh.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <green/green.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using testing::AllOf;
using testing::HasSubstr;
using testing::Not;

namespace {

void spin_for(std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

// Out of line and named, so the report's backtrace can show it.
__attribute__((noinline)) void compute_without_yielding(std::chrono::milliseconds d) {
    spin_for(d);
    asm volatile("" ::: "memory");
}

// One fiber computes for 600 ms without yielding; with `bystander`, another
// fiber of the same hub is parked meanwhile and cannot run.
[[noreturn]] void child(const char* blocked_ms, bool bystander) {
    setenv("GREEN_BLOCKED_MS", blocked_ms, 1);
    green::run([&] {
        green::Event never;
        green::Task<void> other;
        if (bystander) other = green::spawn([&] { never.wait_for(std::chrono::seconds(5)); }, {"bystander"});
        green::this_fiber::yield();
        green::spawn([] { compute_without_yielding(std::chrono::milliseconds(600)); }, {"spinner"}).join();
        never.set();
    });
    std::fprintf(stderr, "child done\n");
    std::exit(0);
}

}  // namespace

TEST(MonitorDeathTest, ReportsAFiberThatBlocksItsHub) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(child("100", true), testing::ExitedWithCode(0),
                AllOf(testing::ContainsRegex("green: hub [0-9]+ \\(thread [0-9]+\\) blocked for [0-9]+ ms in fiber [0-9]+ "
                                             "\"spinner\""),
                      HasSubstr("child done")));
}

TEST(MonitorDeathTest, ReportShowsTheBlockingFibersStack) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(child("100", true), testing::ExitedWithCode(0),
                testing::ContainsRegex("blocked for [0-9]+ ms in fiber [0-9]+ \"spinner\"[^\n]*\n"
                                       "  stack of fiber [0-9]+:\n( +#[0-9]+ [^\n]*\n)*"
                                       " +#[0-9]+ [^\n]*compute_without_yielding[^\n]*test_monitor.cpp:[0-9]+"));
}

TEST(MonitorDeathTest, SilentWhenNoOtherFiberWaitsOnThatHub) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(child("100", false), testing::ExitedWithCode(0), AllOf(Not(HasSubstr("blocked")), HasSubstr("child done")));
}

TEST(MonitorDeathTest, OffWithZero) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(child("0", true), testing::ExitedWithCode(0), AllOf(Not(HasSubstr("blocked")), HasSubstr("child done")));
}
