// Fiber stacks: overflow is reported with the fiber's name, both when it
// hits the guard region and (GREEN_STACK_GUARD=off) when it overwrites the
// canary; a stray write into another stack's guard names the writer; stack
// sizes come from SpawnOptions or GREEN_STACK_SIZE.
#include "test_util.hpp"

#include "stack_pool.hpp"

#include <gmock/gmock.h>

#include <sys/mman.h>

#include <csignal>
#include <functional>
#include <thread>
#include <cstdlib>

using namespace green_test;
using testing::AllOf;
using testing::ContainsRegex;
using testing::HasSubstr;

namespace {

// Non-tail recursion with a written local array per frame, so the compiler
// can neither turn it into a loop nor drop the frame.
__attribute__((noinline)) int recurse(int n) {
    volatile char frame[512];
    for (std::size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<char>(n + i);
    if (n == 0) return frame[7];
    return recurse(n - 1) + frame[n % sizeof frame];
}

// Uses `bytes` of stack in one frame, writing every byte (lowest address
// first), then suspends: the switch-out checks the canary.
__attribute__((noinline)) int big_frame_then_yield() {
    constexpr std::size_t kBytes = 40 * 1024;
    volatile char big[kBytes];
    for (std::size_t i = 0; i < kBytes; ++i) big[i] = static_cast<char>(i);
    green::this_fiber::yield();
    return big[kBytes / 2];
}

[[noreturn]] void guard_page_child() {
    clear_green_env();
    auto t = green::spawn([] { return recurse(1'000'000); }, {"deep", 32 * 1024});
    t.join();
    std::_Exit(0);  // not reached
}

[[noreturn]] void canary_child() {
    clear_green_env();
    ::setenv("GREEN_STACK_GUARD", "off", 1);  // read on first use, which is below
    auto t = green::spawn([] { return big_frame_then_yield(); }, {"shallow", 32 * 1024});
    t.join();
    std::_Exit(0);  // not reached
}

[[noreturn]] void env_stack_size_child() {
    clear_green_env();
    ::setenv("GREEN_STACK_SIZE", "64K", 1);
    auto t = green::spawn([] { return recurse(1'000'000); }, {"default-sized"});
    t.join();
    std::_Exit(0);  // not reached
}

[[noreturn]] void foreign_fault_child() {
    clear_green_env();
    // A fault in a fiber that has nothing to do with its stack: the overflow
    // handler must pass it on (default action: killed by SIGSEGV), not
    // report an overflow.
    void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    auto t = green::spawn([page] { *static_cast<volatile int*>(page) = 1; }, {"faulty"});
    t.join();
    std::_Exit(0);  // not reached
}

[[noreturn]] void foreign_guard_child() {
    clear_green_env();
    // A stray write into the guard region below another fiber's stack: the
    // guard is 1 MiB below a stack of 64 KiB, so 576 KiB below a local of
    // that fiber is inside it whatever the local's depth.
    green::Event parked, release;
    volatile char* local_of_other = nullptr;
    auto other = green::spawn(
        [&] {
            volatile char x = 1;
            local_of_other = &x;
            parked.set();
            release.wait();
        },
        {"victim", 64 * 1024});
    parked.wait();
    auto stray = green::spawn([&] { *(local_of_other - 576 * 1024) = 1; }, {"stray"});
    stray.join();
    std::_Exit(0);  // not reached
}

}  // namespace

TEST(StackDeathTest, AStrayWriteIntoAnotherStacksGuardNamesTheWriter) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(foreign_guard_child(), testing::KilledBySignal(SIGABRT),
                ContainsRegex("fiber [0-9]+ \"stray\" \\(stack of [0-9]+ bytes\\) touched 0x[0-9a-f]+ in the guard "
                              "region below another fiber's stack"));
}

TEST(StackDeathTest, OtherFaultsInAFiberAreNotReportedAsOverflow) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(foreign_fault_child(), testing::KilledBySignal(SIGSEGV), testing::Not(HasSubstr("stack overflow")));
}

TEST(StackDeathTest, OverflowIntoTheGuardPageIsReportedWithTheFiberName) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(guard_page_child(), testing::KilledBySignal(SIGABRT),
                AllOf(ContainsRegex("stack overflow in fiber [0-9]+ \"deep\""), HasSubstr("guard page hit"),
                      HasSubstr("stack of 32768 bytes"), HasSubstr("GREEN_STACK_SIZE")));
}

TEST(StackDeathTest, OverwrittenCanaryIsReportedWhenGuardsAreOff) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(canary_child(), testing::KilledBySignal(SIGABRT),
                AllOf(ContainsRegex("stack overflow in fiber [0-9]+ \"shallow\""), HasSubstr("canary"),
                      HasSubstr("GREEN_STACK_SIZE")));
}

TEST(StackDeathTest, DefaultStackSizeComesFromGreenStackSize) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(env_stack_size_child(), testing::KilledBySignal(SIGABRT),
                AllOf(ContainsRegex("stack overflow in fiber [0-9]+ \"default-sized\""),
                      HasSubstr("stack of 65536 bytes")));
}

TEST(Stack, SpawnOptionsStackSizeIsUsable) {
    // A 64K stack holds what a 64K stack should: ~50K of frames, which
    // compute what they do on this thread's own stack.
    const int expected = recurse(80);
    in_green([&] {
        auto t = green::spawn([] { return recurse(80); }, {"sized", 64 * 1024});
        EXPECT_EQ(t.join(), expected);
    });
}

TEST(Stack, StacksAreReusedAcrossSizes) {
    // Alternating sizes exercise the per-size free lists; every fiber gets a
    // working stack of at least what it asked for.
    const std::size_t sizes[] = {16 * 1024, 64 * 1024, 128 * 1024};
    auto depth = [](std::size_t size) { return static_cast<int>(size / 1024) - 12; };  // ~600 bytes a frame: well inside
    int expected[3];
    for (int i = 0; i < 3; ++i) expected[i] = recurse(depth(sizes[i]));  // on this thread's stack
    in_green([&] {
        int wrong = 0;
        for (int round = 0; round < 200; ++round) {
            const std::size_t size = sizes[round % 3];
            auto t = green::spawn([d = depth(size)] { return recurse(d); }, {"sized", size});
            wrong += t.join() != expected[round % 3];
        }
        EXPECT_EQ(wrong, 0);
    });
}

TEST(Stack, StacksReleasedOnAnotherThreadReturnToTheirPool) {
    // Fibers spawned on this hub and released (their last reference
    // dropped) on another thread's hub. Their stacks must come back to this
    // hub's pool; if they stayed with the releasing hub, this one would map a
    // new 64 MiB slab every few dozen fibers until the other's cache spills
    // into the shared spare list.
    constexpr int kFibers = 2000;
    // Each side waits for the other thread, which may not have a hub yet.
    green::ExternalWaker two_threads;
    green::Channel<green::Task<int>> handoff(1);
    std::thread joiner([&] {
        green::run([&] {
            while (auto t = handoff.recv()) EXPECT_EQ(t->join(), 7);  // the last reference: released here
            return 0;
        });
    });
    long after_warmup = 0;
    in_green([&] {
        for (int i = 0; i < kFibers; ++i) {
            if (i == 200) after_warmup = green::test::proc_status_field(::getpid(), "VmSize");
            auto t = green::spawn([] { return 7; });
            // Ended and switched away from: only `t` holds it now.
            ASSERT_TRUE(t.wait_until(green::Clock::time_point::max()));
            handoff.send(std::move(t));
        }
        handoff.close();
    });
    joiner.join();
    const long at_end = green::test::proc_status_field(::getpid(), "VmSize");
    EXPECT_LE(at_end - after_warmup, 100 * 1024) << "VmSize " << after_warmup << " -> " << at_end << " KiB";
}

// Spawns `n` fibers on this hub that all wait until `while_parked` has run,
// then ends them together (their stacks return to the pool at once);
// returns how many ran to their end.
int park_then_end_together(int n, const std::function<void()>& while_parked) {
    green::Event go;
    std::vector<green::Task<int>> tasks;
    for (int i = 0; i < n; ++i) tasks.push_back(green::spawn([&] {
        go.wait();
        return 1;
    }));
    let_runnable_fibers_run();
    while_parked();
    go.set();
    int ended = 0;
    for (auto& t : tasks) ended += t.join();
    return ended;
}

TEST(Stack, AHubsSurplusStacksServeAnotherHub) {
    // More fibers end on this hub at once than its pool keeps: the surplus
    // goes to the shared spare list, and another thread's hub takes its
    // stacks from there instead of making new ones (counted by the pool;
    // the process's size would also count a sanitizer's per-fiber state).
    constexpr int kFibers = 1000;  // well over the per-hub cache
    auto stacks_made = [] { return green::detail::guarded_stacks_allocated() + green::detail::unguarded_stacks_allocated(); };
    in_green([&] { EXPECT_EQ(park_then_end_together(kFibers, [] {}), kFibers); });
    std::size_t before = 0, during = 0;
    std::thread other([&] {
        green::run([&] {
            before = stacks_made();  // this hub's own scheduler and main stacks are made by now
            EXPECT_EQ(park_then_end_together(kFibers / 2, [&] { during = stacks_made(); }), kFibers / 2);
            return 0;
        });
    });
    other.join();
    // Without the spare list every one of them would be new. With it, at
    // most one slab (its stacks counted all at once) tops up what the spares
    // lack: how many stacks this hub's cache kept depends on the build (a
    // sanitizer's stacks are larger).
    EXPECT_LT(during - before, std::size_t{kFibers / 4}) << "stacks made for the other hub's " << kFibers / 2 << " fibers";
}
