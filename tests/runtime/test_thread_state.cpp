// Per-fiber thread state in libgreen itself: errno and the C++ exception
// state are each fiber's own across suspensions; thread_local variables are
// shared with the hub thread unless the fiber asks for its own
// (SpawnOptions::own_thread_locals), in which case it starts from fresh
// values and its thread_local destructors run when it ends.
#include <gtest/gtest.h>

#include <green/green.hpp>

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

TEST(ThreadState, ErrnoIsEachFibersOwnAcrossYields) {
    green::run([] {
        std::vector<green::Task<bool>> tasks;
        for (int i = 0; i < 16; ++i) {
            tasks.push_back(green::spawn([i] {
                errno = 2000 + i;
                for (int k = 0; k < 5; ++k) green::this_fiber::yield();
                return errno == 2000 + i;
            }));
        }
        for (auto& t : tasks) EXPECT_TRUE(t.join());
        return 0;
    });
}

TEST(ThreadState, CaughtExceptionSurvivesASuspensionInsideTheCatchBlock) {
    green::run([] {
        std::vector<green::Task<std::string>> tasks;
        for (int i = 0; i < 16; ++i) {
            tasks.push_back(green::spawn([i]() -> std::string {
                const std::string mine = "error " + std::to_string(i);
                try {
                    try {
                        throw std::runtime_error(mine);
                    } catch (const std::exception& e) {
                        green::this_fiber::yield();  // the others throw and catch meanwhile
                        if (std::uncaught_exceptions() != 0) return "uncaught count leaked";
                        if (std::string(e.what()) != mine) return "what() changed";
                        green::this_fiber::yield();
                        throw;
                    }
                } catch (const std::runtime_error& again) {
                    return again.what();
                }
            }));
        }
        for (int i = 0; i < 16; ++i) EXPECT_EQ(tasks[static_cast<std::size_t>(i)].join(), "error " + std::to_string(i));
        return 0;
    });
}

thread_local int tl_value = 5;
int g_destructed = 0;
struct Tracked {
    int id = 0;
    ~Tracked() { ++g_destructed; }
};
thread_local Tracked tl_tracked;

struct ThreadLocalMode : ::testing::TestWithParam<bool> {};

TEST_P(ThreadLocalMode, OwnThreadLocalsAreFreshAndDestroyedOtherwiseShared) {
    const bool own = GetParam();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    if (own) GTEST_SKIP() << "sanitizer builds keep every fiber on its hub thread's TLS (their runtimes live there)";
#endif
    g_destructed = 0;
    green::run([own] {
        tl_value = 99;  // the hub thread's copy
        green::SpawnOptions options;
        options.own_thread_locals = own;
        std::vector<green::Task<int>> tasks;
        for (int i = 0; i < 4; ++i) {
            tasks.push_back(green::spawn(
                [i] {
                    int seen = tl_value;
                    tl_value = 100 + i;
                    tl_tracked.id = i;
                    green::this_fiber::yield();
                    return tl_value == 100 + i ? seen : -1;
                },
                options));
        }
        for (auto& t : tasks) {
            int seen = t.join();
            if (own) EXPECT_EQ(seen, 5);  // the initial value, as in a new thread
            else EXPECT_NE(seen, 5);      // the hub thread's (or a sibling's) copy
        }
        if (own) {
            EXPECT_EQ(tl_value, 99) << "the fibers' copies are their own";
            EXPECT_EQ(g_destructed, 4) << "one destructor per fiber, when it ends";
        } else {
            EXPECT_EQ(g_destructed, 0) << "shared: destroyed with the OS thread, not the fibers";
        }
        return 0;
    });
}

INSTANTIATE_TEST_SUITE_P(Modes, ThreadLocalMode, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Own" : "Shared"; });

}  // namespace
