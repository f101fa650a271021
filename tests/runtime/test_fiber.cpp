// Fibers: spawn/join/detach, yield order, sleeps, ids and names, stats.
#include "test_util.hpp"

#include <gmock/gmock.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace green_test;
using testing::HasSubstr;
using testing::Not;

namespace {

struct CustomError : std::runtime_error {
    explicit CustomError(int c) : std::runtime_error("custom error " + std::to_string(c)), code(c) {}
    int code;
};

}  // namespace

TEST(Fiber, JoinReturnsValue) {
    in_green([] {
        auto t = green::spawn([] { return 42; });
        EXPECT_TRUE(t.joinable());
        EXPECT_EQ(t.join(), 42);
        EXPECT_FALSE(t.joinable());
    });
}

TEST(Fiber, JoinReturnsMoveOnlyValue) {
    in_green([] {
        auto t = green::spawn([] { return std::make_unique<std::string>("hello"); });
        std::unique_ptr<std::string> p = t.join();
        ASSERT_TRUE(p);
        EXPECT_EQ(*p, "hello");
    });
}

TEST(Fiber, JoinVoidFiber) {
    in_green([] {
        int ran = 0;
        auto t = green::spawn([&] { ++ran; });
        t.join();
        EXPECT_EQ(ran, 1);
    });
}

TEST(Fiber, JoinRethrowsTheFibersException) {
    in_green([] {
        auto t = green::spawn([]() -> int { throw CustomError(7); });
        try {
            t.join();
            FAIL() << "join() did not rethrow";
        } catch (const CustomError& e) {
            EXPECT_EQ(e.code, 7);
            EXPECT_STREQ(e.what(), "custom error 7");
        }
    });
}

TEST(Fiber, JoinRethrowsAfterTheFiberSuspended) {
    // The exception is thrown after the fiber has parked and resumed once, so
    // join() has to wait for it rather than find it already stored.
    in_green([] {
        green::Event go;
        auto t = green::spawn([&] {
            go.wait();
            throw std::out_of_range("late failure");
        });
        green::this_fiber::yield();
        EXPECT_FALSE(t.done());
        go.set();
        EXPECT_THROW(t.join(), std::out_of_range);
    });
}

TEST(Fiber, SpawnedFiberRunsOnlyWhenCallerSuspends) {
    in_green([] {
        bool ran = false;
        auto t = green::spawn([&] { ran = true; });
        EXPECT_FALSE(ran) << "spawn must not run the fiber before the caller suspends";
        green::this_fiber::yield();
        EXPECT_TRUE(ran);
        t.join();
    });
}

TEST(Fiber, YieldRoundRobinsInSpawnOrder) {
    in_green([] {
        std::vector<std::string> log;
        auto body = [&](std::string n) {
            return [&log, n] {
                for (int round = 1; round <= 3; ++round) {
                    log.push_back(n + std::to_string(round));
                    green::this_fiber::yield();
                }
            };
        };
        auto a = green::spawn(body("A"));
        auto b = green::spawn(body("B"));
        auto c = green::spawn(body("C"));
        a.join();
        b.join();
        c.join();
        EXPECT_EQ(log, (std::vector<std::string>{"A1", "B1", "C1", "A2", "B2", "C2", "A3", "B3", "C3"}));
    });
}

TEST(Fiber, YieldingFibersDoNotStarveTimersOrFds) {
    // The run queue never empties while these fibers spin on yield(); the
    // hub must still poll libev now and then, or the sleeper and the fd
    // waiter would never wake (the loops give up after 10s and fail).
    in_green([] {
        bool slept = false, readable = false;
        SocketPair sp;
        auto sleeper = green::spawn([&] {
            green::this_fiber::sleep_for(20ms);
            slept = true;
        });
        auto reader = green::spawn([&] {
            readable = green::wait_fd(sp.a(), green::kReadable) == green::WaitResult::Ready;
        });
        auto spinner = green::spawn([&] {
            auto give_up = Clock::now() + 10s;
            while (!(slept && readable) && Clock::now() < give_up) green::this_fiber::yield();
        });
        green::this_fiber::yield();
        ASSERT_TRUE(write_byte(sp.b()));
        auto give_up = Clock::now() + 10s;
        while (!(slept && readable) && Clock::now() < give_up) green::this_fiber::yield();
        EXPECT_TRUE(slept);
        EXPECT_TRUE(readable);
        spinner.join();
        sleeper.join();
        reader.join();
    });
}

TEST(Fiber, SleepForWaitsAtLeastTheDuration) {
    in_green([] {
        auto start = Clock::now();
        green::this_fiber::sleep_for(30ms);
        EXPECT_GE(ms_since(start), 30.0);
    });
}

TEST(Fiber, SleepUntilWaitsUntilTheDeadline) {
    in_green([] {
        auto deadline = Clock::now() + 25ms;
        EXPECT_GT(switches_during([&] { green::this_fiber::sleep_until(deadline); }), 0u) << "did not park";
        EXPECT_GE(Clock::now(), deadline);
        // A deadline in the past returns at once, without parking.
        EXPECT_EQ(switches_during([] { green::this_fiber::sleep_until(Clock::now() - 1s); }), 0u);
    });
}

TEST(Fiber, SleepersWakeInDeadlineOrderAndOthersRunMeanwhile) {
    in_green([] {
        std::vector<int> order;
        int ticks = 0;
        bool stop = false;
        auto slow = green::spawn([&] {
            green::this_fiber::sleep_for(60ms);
            order.push_back(60);
        });
        auto fast = green::spawn([&] {
            green::this_fiber::sleep_for(20ms);
            order.push_back(20);
        });
        // A busy fiber keeps yielding while the others sleep: sleeping must
        // not block the hub.
        auto busy = green::spawn([&] {
            while (!stop) {
                ++ticks;
                green::this_fiber::yield();
            }
        });
        slow.join();
        fast.join();
        stop = true;
        busy.join();
        EXPECT_EQ(order, (std::vector<int>{20, 60}));
        EXPECT_GT(ticks, 1);
    });
}

TEST(Fiber, IdsAreUniqueNonZeroAndMatchTheTask) {
    in_green([] {
        std::vector<std::uint64_t> seen(20, 0);
        std::vector<green::Task<void>> tasks;
        for (int i = 0; i < 20; ++i) {
            tasks.push_back(green::spawn([&seen, i] { seen[i] = green::this_fiber::id(); }));
        }
        std::vector<std::uint64_t> expected;
        for (auto& t : tasks) expected.push_back(t.id());
        for (auto& t : tasks) t.join();
        EXPECT_EQ(seen, expected);
        std::sort(seen.begin(), seen.end());
        EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "duplicate fiber ids";
        EXPECT_NE(seen.front(), 0u);
        EXPECT_NE(green::this_fiber::id(), 0u);
        EXPECT_EQ(green::Task<void>{}.id(), 0u);
    });
}

TEST(Fiber, NamesDefaultSetAndTruncate) {
    in_green([] {
        EXPECT_EQ(green::this_fiber::name(), "test-main");

        auto unnamed = green::spawn([] {
            return std::make_pair(std::string(green::this_fiber::name()), green::this_fiber::id());
        });
        auto [name, id] = unnamed.join();
        EXPECT_EQ(name, "fiber-" + std::to_string(id));

        auto named = green::spawn([] { return std::string(green::this_fiber::name()); }, {"worker-7"});
        EXPECT_EQ(named.join(), "worker-7");

        auto renamed = green::spawn([] {
            green::this_fiber::set_name("renamed");
            return std::string(green::this_fiber::name());
        });
        EXPECT_EQ(renamed.join(), "renamed");

        // Names keep 31 characters.
        std::string longname(50, 'n');
        auto truncated = green::spawn([] { return std::string(green::this_fiber::name()); }, {longname});
        EXPECT_EQ(truncated.join(), std::string(31, 'n'));
        auto truncated2 = green::spawn([&] {
            green::this_fiber::set_name(longname);
            return std::string(green::this_fiber::name());
        });
        EXPECT_EQ(truncated2.join(), std::string(31, 'n'));
    });
}

// A fiber that fails and that nobody joins: its exception must not vanish,
// whether its handle was let go before it ran (detach) or after it failed
// (the Task dropped unjoined). stderr names the fiber and the exception.
struct Unjoined {
    const char* name;
    bool detach_before_it_runs;
};

class FailedFiberNobodyJoins : public testing::TestWithParam<Unjoined> {};

TEST_P(FailedFiberNobodyJoins, ExceptionIsReportedWithTheFibersName) {
    const Unjoined u = GetParam();
    const std::string fiber = std::string(u.name) + "-fiber", what = std::string("kaboom-") + u.name;
    testing::internal::CaptureStderr();
    in_green([&] {
        auto t = green::spawn([&] { throw std::runtime_error(what); }, {fiber});
        if (u.detach_before_it_runs) {
            t.detach();
            green::spawn([] {}).join();  // FIFO: the detached fiber runs (and dies) before this one
        } else {
            EXPECT_TRUE(t.wait_for(10s));
            EXPECT_TRUE(t.done());
            t = {};  // move-assign an empty Task: releases the handle unjoined
        }
    });
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_THAT(err, HasSubstr(fiber));
    EXPECT_THAT(err, HasSubstr(what));
    EXPECT_THAT(err, HasSubstr("exception"));
}

INSTANTIATE_TEST_SUITE_P(Fiber, FailedFiberNobodyJoins,
                         testing::Values(Unjoined{"detached", true}, Unjoined{"dropped_after_failing", false}),
                         [](const testing::TestParamInfo<Unjoined>& info) { return std::string(info.param.name); });

TEST(Fiber, JoinedFailureAndCancelledDetachedFiberStayQuiet) {
    testing::internal::CaptureStderr();
    in_green([] {
        auto t = green::spawn([] { throw std::runtime_error("observed"); }, {"joined-fiber"});
        EXPECT_THROW(t.join(), std::runtime_error);

        green::Event never;
        auto c = green::spawn([&] { never.wait(); }, {"cancelled-fiber"});
        green::this_fiber::yield();
        c.cancel();
        c.detach();
        green::spawn([] {}).join();  // lets the cancelled fiber finish first
    });
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_THAT(err, Not(HasSubstr("joined-fiber")));
    EXPECT_THAT(err, Not(HasSubstr("cancelled-fiber")));
}

TEST(Fiber, WaitForReportsCompletionWithoutConsumingTheResult) {
    in_green([] {
        green::Event go;
        auto t = green::spawn([&] {
            go.wait();
            return 5;
        });
        auto start = Clock::now();
        EXPECT_FALSE(t.wait_for(20ms));
        EXPECT_GE(ms_since(start), 20.0);
        EXPECT_FALSE(t.done());
        go.set();
        EXPECT_TRUE(t.wait_until(Clock::now() + 10s));
        EXPECT_TRUE(t.done());
        EXPECT_EQ(t.join(), 5);
    });
}

TEST(Fiber, CancelThroughATaskThatIsBeingJoined) {
    // join() used to clear the handle before waiting, so a cancel() through
    // the same Task from another fiber did nothing and the join hung.
    in_green([] {
        green::Event never;
        auto t = green::spawn([&] { never.wait(); }, {"waits-forever"});
        auto canceller = green::spawn([&] { t.cancel(); });
        EXPECT_THROW(t.join(), green::Cancelled);
        EXPECT_FALSE(t.joinable());
        canceller.join();
    });
}

TEST(Fiber, JoiningItselfThrowsLogicError) {
    in_green([] {
        green::Task<void> self;
        green::Event finished;
        bool threw = false;
        self = green::spawn([&] {
            try {
                self.join();
            } catch (const std::logic_error&) {
                threw = true;
            }
            finished.set();
        });
        finished.wait();
        EXPECT_TRUE(threw);
    });
}

TEST(Fiber, MoveAssignOverJoinableTaskDetachesTheOldFiber) {
    in_green([] {
        green::Event go;
        int finished = 0;
        auto t = green::spawn([&] {
            go.wait();
            ++finished;
        });
        t = green::spawn([&] { ++finished; });  // the first fiber is now detached
        go.set();
        t.join();
        green::this_fiber::yield();
        green::spawn([] {}).join();
        EXPECT_EQ(finished, 2);
    });
}

TEST(Fiber, LargeCaptureTravelsOnTheFiberStack) {
    in_green([] {
        std::array<unsigned char, 8192> big{};
        for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<unsigned char>(i * 7);
        auto t = green::spawn([big] {
            unsigned sum = 0;
            for (auto b : big) sum += b;
            return sum;
        });
        unsigned expected = 0;
        for (auto b : big) expected += b;
        EXPECT_EQ(t.join(), expected);
    });
}

TEST(Fiber, NestedSpawnAndJoin) {
    in_green([] {
        std::function<int(int)> tree = [&](int depth) -> int {
            if (depth == 0) return 1;
            auto l = green::spawn([&, depth] { return tree(depth - 1); });
            auto r = green::spawn([&, depth] { return tree(depth - 1); });
            return l.join() + r.join();
        };
        EXPECT_EQ(tree(8), 256);
    });
}

TEST(Fiber, UsableWithoutRunFromThePlainThreadRoot) {
    // Any thread gets a hub on first use; green::run is optional.
    std::thread t([] {
        auto f = green::spawn([] { return green::this_fiber::id(); });
        std::uint64_t root = green::this_fiber::id();
        std::uint64_t child = f.join();
        EXPECT_NE(root, 0u);
        EXPECT_NE(child, root);
    });
    t.join();
}

TEST(Fiber, StatsCountSpawnsAndSwitches) {
    in_green([] {
        green::Stats before = green::stats();
        for (int i = 0; i < 50; ++i) green::spawn([] { green::this_fiber::yield(); }).join();
        green::Stats after = green::stats();
        EXPECT_GE(after.fibers_spawned - before.fibers_spawned, 50u);
        EXPECT_GE(after.switches - before.switches, 100u);
        EXPECT_GE(after.hubs, 1u);
    });
}

TEST(Fiber, ManySequentialSpawnsReuseStacks) {
    // 20k spawn/join pairs would need 5 GB of 256K stacks if stacks were not
    // recycled; with the pool it is a handful.
    in_green([] {
        long total = 0;
        for (int i = 0; i < 20000; ++i) total += green::spawn([i] { return i % 3; }).join();
        EXPECT_EQ(total, 19999);  // 6666*(0+1+2) + (0+1)
    });
}
