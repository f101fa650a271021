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
#include <optional>
#include <string>

#include <poll.h>
#include <unistd.h>

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

// The report's stack is named after the fiber moved on (naming reads debug
// info, which takes a while the first time): a child that wants to see it
// reads its own stderr through a pipe until the stack's last frame came,
// passing everything on. Bounded by `limit` so a missing report fails the
// test instead of hanging it.
class StderrTap {
public:
    StderrTap() {
        int p[2];
        if (pipe(p) != 0) std::abort();
        real_ = dup(2);
        dup2(p[1], 2);
        close(p[1]);
        read_ = p[0];
    }
    void pass_on_until(const std::string& needle, std::chrono::seconds limit) {
        auto until = std::chrono::steady_clock::now() + limit;
        while (seen_.find(needle) == std::string::npos) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            pollfd p{read_, POLLIN, 0};
            if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            char buf[4096];
            ssize_t n = read(read_, buf, sizeof buf);
            if (n <= 0) break;
            seen_.append(buf, static_cast<std::size_t>(n));
            (void)!write(real_, buf, static_cast<std::size_t>(n));
        }
        dup2(real_, 2);
    }

private:
    int real_ = -1, read_ = -1;
    std::string seen_;
};

// One fiber computes for 600 ms without yielding; with `bystander`, another
// fiber of the same hub is parked meanwhile and cannot run.
[[noreturn]] void child(const char* blocked_ms, bool bystander, bool wait_for_stack = false) {
    setenv("GREEN_BLOCKED_MS", blocked_ms, 1);
    std::optional<StderrTap> tap;
    if (wait_for_stack) tap.emplace();
    green::run([&] {
        green::Event never;
        green::Task<void> other;
        if (bystander) other = green::spawn([&] { never.wait_for(std::chrono::seconds(5)); }, {"bystander"});
        green::this_fiber::yield();
        green::spawn([] { compute_without_yielding(std::chrono::milliseconds(600)); }, {"spinner"}).join();
        never.set();
    });
    // Every fiber stack ends in Boost.Context's entry trampoline.
    if (tap) tap->pass_on_until("make_fcontext", std::chrono::seconds(60));
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
    EXPECT_EXIT(child("100", true, true), testing::ExitedWithCode(0),
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
