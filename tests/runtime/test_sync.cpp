// Event, Semaphore, Mutex, RecursiveMutex, CondVar, WaitGroup and Group
// between fibers of one hub (cross-hub use is in test_cross_hub.cpp).
#include "test_util.hpp"

#include "../common/token_pool.hpp"

#include <gmock/gmock.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

using namespace green_test;

// --- Event -----------------------------------------------------------------

TEST(Event, SetWakesEveryWaiter) {
    in_green([] {
        green::Event ev;
        int woken = 0;
        std::vector<green::Task<void>> waiters;
        for (int i = 0; i < 10; ++i) waiters.push_back(green::spawn([&] {
            ev.wait();
            ++woken;
        }));
        let_runnable_fibers_run();
        EXPECT_EQ(woken, 0);
        EXPECT_FALSE(ev.is_set());
        ev.set();
        EXPECT_TRUE(ev.is_set());
        for (auto& w : waiters) w.join();
        EXPECT_EQ(woken, 10);
    });
}

TEST(Event, WaitAfterSetReturnsAtOnceAndResetRearms) {
    in_green([] {
        green::Event ev;
        ev.set();
        ev.wait();
        EXPECT_TRUE(ev.wait_for(0ms));
        ev.reset();
        EXPECT_FALSE(ev.is_set());
        auto start = Clock::now();
        EXPECT_FALSE(ev.wait_for(20ms));
        EXPECT_GE(ms_since(start), 20.0);
        EXPECT_FALSE(ev.wait_until(Clock::now() - 1s));
    });
}

TEST(Event, TimedWaitSucceedsWhenSetInTime) {
    in_green([] {
        green::Event ev;
        auto setter = green::spawn([&] { ev.set(); });
        EXPECT_TRUE(ev.wait_for(10s));
        setter.join();
    });
}

// --- Semaphore ---------------------------------------------------------------

TEST(Semaphore, CountsPermits) {
    in_green([] {
        green::Semaphore s(2);
        EXPECT_EQ(s.value(), 2u);
        EXPECT_TRUE(s.try_acquire());
        s.acquire();
        EXPECT_EQ(s.value(), 0u);
        EXPECT_FALSE(s.try_acquire());
        s.release(3);
        EXPECT_EQ(s.value(), 3u);
    });
}

TEST(Semaphore, AcquireBlocksUntilReleaseAndWakesInFifoOrder) {
    in_green([] {
        green::Semaphore s(0);
        std::vector<int> order;
        std::vector<green::Task<void>> waiters;
        for (int i = 0; i < 5; ++i) waiters.push_back(green::spawn([&, i] {
            s.acquire();
            order.push_back(i);
        }));
        let_runnable_fibers_run();
        EXPECT_TRUE(order.empty());
        s.release(2);
        EXPECT_EQ(s.value(), 0u) << "permits go to parked waiters, not to the count";
        EXPECT_FALSE(s.try_acquire()) << "a handed-over permit must not be stolen";
        let_runnable_fibers_run();
        EXPECT_EQ(order, (std::vector<int>{0, 1}));
        s.release(3);
        for (auto& w : waiters) w.join();
        EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
        EXPECT_EQ(s.value(), 0u);
    });
}

TEST(Semaphore, TimedAcquireTimesOutWithoutEatingLaterPermits) {
    in_green([] {
        green::Semaphore s(0);
        auto start = Clock::now();
        EXPECT_FALSE(s.acquire_for(20ms));
        EXPECT_GE(ms_since(start), 20.0);
        s.release();
        EXPECT_EQ(s.value(), 1u);
        EXPECT_TRUE(s.acquire_for(10s));
        EXPECT_EQ(s.value(), 0u);
    });
}

// --- Mutex -------------------------------------------------------------------

TEST(Mutex, ExcludesFibersOfOneHub) {
    in_green([] {
        green::Mutex m;
        int inside = 0, max_inside = 0, entries = 0;
        std::vector<green::Task<void>> fibers;
        for (int f = 0; f < 4; ++f) {
            fibers.push_back(green::spawn([&] {
                for (int i = 0; i < 50; ++i) {
                    std::lock_guard lock(m);
                    ++inside;
                    max_inside = std::max(max_inside, inside);
                    ++entries;
                    green::this_fiber::yield();  // suspends while holding the lock
                    --inside;
                }
            }));
        }
        for (auto& f : fibers) f.join();
        EXPECT_EQ(entries, 200);
        EXPECT_EQ(max_inside, 1);
        EXPECT_EQ(m.owner(), 0u);
    });
}

TEST(Mutex, RelockByOwnerThrowsEdeadlk) {
    in_green([] {
        green::Mutex m;
        m.lock();
        EXPECT_EQ(m.owner(), green::this_fiber::id());
        try {
            m.lock();
            FAIL() << "relock did not throw";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
        }
        try {
            m.try_lock_for(10ms);
            FAIL() << "timed relock did not throw";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
        }
        EXPECT_FALSE(m.try_lock());
        m.unlock();
    });
}

TEST(Mutex, UnlockHandsOffInFifoOrderWithoutBarging) {
    in_green([] {
        green::Mutex m;
        std::vector<int> order;
        m.lock();
        std::vector<green::Task<void>> waiters;
        for (int i = 0; i < 5; ++i) waiters.push_back(green::spawn([&, i] {
            m.lock();
            order.push_back(i);
            m.unlock();
        }));
        let_runnable_fibers_run();  // all five are parked in lock(), in order
        m.unlock();
        EXPECT_NE(m.owner(), 0u) << "unlock must hand the mutex to the oldest waiter";
        EXPECT_EQ(m.owner(), waiters[0].id());
        EXPECT_FALSE(m.try_lock()) << "the unlocking fiber barged in ahead of a woken waiter";
        for (auto& w : waiters) w.join();
        EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
        EXPECT_EQ(m.owner(), 0u);
    });
}

TEST(Mutex, TryLockAndTimedLock) {
    in_green([] {
        green::Mutex m;
        green::Event locked, release;
        auto holder = green::spawn([&] {
            m.lock();
            locked.set();
            release.wait();
            m.unlock();
        });
        locked.wait();
        EXPECT_FALSE(m.try_lock());
        auto start = Clock::now();
        EXPECT_FALSE(m.try_lock_for(20ms));
        EXPECT_GE(ms_since(start), 20.0);
        EXPECT_EQ(m.owner(), holder.id());
        auto releaser = green::spawn([&] { release.set(); });
        EXPECT_TRUE(m.try_lock_for(10s));
        EXPECT_EQ(m.owner(), green::this_fiber::id());
        m.unlock();
        holder.join();
        releaser.join();
        EXPECT_TRUE(m.try_lock());
        m.unlock();
    });
}

TEST(Mutex, LockIsNotACancellationPoint) {
    in_green([] {
        green::Mutex m;
        m.lock();
        bool got_lock = false, cancelled_later = false;
        auto t = green::spawn([&] {
            m.lock();  // cancelled while parked here: must still get the lock
            got_lock = true;
            m.unlock();
            try {
                green::this_fiber::sleep_for(10s);
            } catch (const green::Cancelled&) {
                cancelled_later = true;
            }
        });
        let_runnable_fibers_run();
        t.cancel();
        let_runnable_fibers_run();
        EXPECT_FALSE(got_lock);
        m.unlock();
        t.join();
        EXPECT_TRUE(got_lock);
        EXPECT_TRUE(cancelled_later) << "the cancel must be delivered at the next suspension point";
    });
}

// --- RecursiveMutex ------------------------------------------------------------

TEST(RecursiveMutex, OwnerRelocksAndOthersWaitForTheLastUnlock) {
    in_green([] {
        green::RecursiveMutex m;
        m.lock();
        m.lock();
        EXPECT_TRUE(m.try_lock());
        EXPECT_TRUE(m.try_lock_for(1ms));
        bool other_got_it = false;
        auto other = green::spawn([&] {
            EXPECT_FALSE(m.try_lock());
            m.lock();
            other_got_it = true;
            m.unlock();
        });
        for (int depth = 4; depth > 0; --depth) {
            let_runnable_fibers_run();
            EXPECT_FALSE(other_got_it) << "released at depth " << depth;
            m.unlock();
        }
        other.join();
        EXPECT_TRUE(other_got_it);
    });
}

// Both mutexes: an unlock by a fiber that does not hold the mutex throws
// EPERM and leaves the mutex as it was (free, or held by its owner).
template <class M>
class UnlockByNonOwner : public testing::Test {};
using MutexTypes = testing::Types<green::Mutex, green::RecursiveMutex>;
struct MutexTypeName {
    template <class M>
    static std::string GetName(int) {
        return std::is_same_v<M, green::Mutex> ? "Mutex" : "RecursiveMutex";
    }
};
TYPED_TEST_SUITE(UnlockByNonOwner, MutexTypes, MutexTypeName);

TYPED_TEST(UnlockByNonOwner, ThrowsEpermAndTheOwnerKeepsTheMutex) {
    in_green([] {
        TypeParam m;
        auto unlock_fails_with_eperm = [&] {
            try {
                m.unlock();
                return false;
            } catch (const std::system_error& e) {
                return e.code() == std::errc::operation_not_permitted;
            }
        };
        EXPECT_TRUE(unlock_fails_with_eperm()) << "unlock of a free mutex";
        m.lock();
        EXPECT_TRUE(green::spawn(unlock_fails_with_eperm).join()) << "unlock by another fiber";
        if constexpr (requires { m.owner(); }) {
            EXPECT_EQ(m.owner(), green::this_fiber::id()) << "a failed unlock must not release the mutex";
        }
        EXPECT_FALSE(green::spawn([&] { return m.try_lock_for(10ms); }).join()) << "released by a failed unlock";
        EXPECT_NO_THROW(m.unlock());
        auto after = green::spawn([&] {
            bool ok = m.try_lock();
            if (ok) m.unlock();
            return ok;
        });
        EXPECT_TRUE(after.join());
    });
}

// --- CondVar -----------------------------------------------------------------

TEST(CondVar, NotifyOneWakesOneNotifyAllWakesAll) {
    in_green([] {
        green::Mutex m;
        green::CondVar cv;
        int woken = 0;
        std::vector<green::Task<void>> waiters;
        for (int i = 0; i < 3; ++i) waiters.push_back(green::spawn([&] {
            std::unique_lock lock(m);
            cv.wait(m);
            EXPECT_EQ(m.owner(), green::this_fiber::id()) << "wait must return with the mutex held";
            ++woken;
        }));
        let_runnable_fibers_run();
        EXPECT_EQ(woken, 0);
        cv.notify_one();
        let_runnable_fibers_run();
        EXPECT_EQ(woken, 1);
        cv.notify_all();
        for (auto& w : waiters) w.join();
        EXPECT_EQ(woken, 3);
        cv.notify_one();  // nobody waits: a no-op
        cv.notify_all();
    });
}

TEST(CondVar, PredicateFormWaitsForTheCondition) {
    in_green([] {
        green::Mutex m;
        green::CondVar cv;
        int value = 0;
        auto waiter = green::spawn([&] {
            std::unique_lock lock(m);
            cv.wait(m, [&] { return value == 3; });
            return value;
        });
        for (int i = 1; i <= 3; ++i) {
            let_runnable_fibers_run();
            {
                std::lock_guard lock(m);
                value = i;
            }
            cv.notify_all();  // wakes the waiter for 1 and 2 too; it re-checks
        }
        EXPECT_EQ(waiter.join(), 3);
    });
}

// tests/common/token_pool.hpp: the waiting orders of a pool behind a
// green::Mutex and green::CondVar.
using GreenTokenPool = green_test::TokenPool<green::Mutex, green::CondVar>;

TEST(CondVar, WaiterThatFindsItsWakeTakenKeepsItsPlace) {
    in_green([] { green_test::expect_waiter_that_finds_its_wake_taken_keeps_its_place<GreenTokenPool>(); });
}

TEST(CondVar, NewWaitAfterReleasingTheMutexQueuesLast) {
    in_green([] { green_test::expect_new_wait_after_releasing_the_mutex_queues_last<GreenTokenPool>(); });
}

TEST(CondVar, TimedWaitTimesOutWithTheMutexHeld) {
    in_green([] {
        green::Mutex m;
        green::CondVar cv;
        std::unique_lock lock(m);
        auto start = Clock::now();
        EXPECT_FALSE(cv.wait_until(m, Clock::now() + 20ms));
        EXPECT_GE(ms_since(start), 20.0);
        EXPECT_EQ(m.owner(), green::this_fiber::id());

        start = Clock::now();
        EXPECT_FALSE(cv.wait_for(m, 20ms, [] { return false; }));
        EXPECT_GE(ms_since(start), 20.0);
        EXPECT_EQ(m.owner(), green::this_fiber::id());

        EXPECT_TRUE(cv.wait_for(m, 10s, [] { return true; }));
    });
}

TEST(CondVar, TimedPredicateWaitSucceedsWhenNotified) {
    in_green([] {
        green::Mutex m;
        green::CondVar cv;
        bool ready = false;
        auto notifier = green::spawn([&] {
            std::lock_guard lock(m);
            ready = true;
            cv.notify_one();
        });
        std::unique_lock lock(m);
        EXPECT_TRUE(cv.wait_for(m, 10s, [&] { return ready; }));
        lock.unlock();
        notifier.join();
    });
}

TEST(CondVar, WaitWithoutHoldingTheMutexThrowsAndLeavesTheCondVarUsable) {
    in_green([] {
        green::Mutex m;
        green::CondVar cv;
        auto misuse = [&] {
            // Deep enough that the frame of the failed wait is overwritten
            // by the calls below if anything still points into it.
            try {
                cv.wait_until(m, Clock::now() + 1s);
                return false;
            } catch (const std::system_error& e) {
                return e.code() == std::errc::operation_not_permitted;
            }
        };
        EXPECT_TRUE(misuse());
        EXPECT_TRUE(green::spawn(misuse).join()) << "from another fiber";
        // The failed waits must have left nothing behind in the CondVar: a
        // notify reaches the next real waiter (which would otherwise sit out
        // its whole 10s timeout).
        bool flag = false;
        auto waiter = green::spawn([&] {
            std::unique_lock lock(m);
            return cv.wait_until(m, Clock::now() + 10s);
        });
        let_runnable_fibers_run();
        {
            std::lock_guard lock(m);
            flag = true;
        }
        cv.notify_all();
        EXPECT_TRUE(waiter.join()) << "the notify was lost";  // false: it sat out its timeout
        EXPECT_TRUE(flag);
        std::unique_lock lock(m);
        EXPECT_FALSE(cv.wait_until(m, Clock::now() + 5ms));
    });
}

// --- WaitGroup -----------------------------------------------------------------

TEST(WaitGroup, WaitReturnsWhenAllAreDone) {
    in_green([] {
        green::WaitGroup wg;
        EXPECT_EQ(wg.count(), 0);
        wg.wait();  // zero: returns at once
        int finished = 0;
        wg.add(5);
        for (int i = 0; i < 5; ++i) green::spawn([&, i] {
            for (int y = 0; y < i; ++y) green::this_fiber::yield();
            ++finished;
            wg.done();
        }).detach();
        // Two waiters: both are released.
        auto second = green::spawn([&] {
            wg.wait();
            return finished;
        });
        wg.wait();
        EXPECT_EQ(finished, 5);
        EXPECT_EQ(wg.count(), 0);
        EXPECT_EQ(second.join(), 5);
    });
}

TEST(WaitGroup, TimedWaitTimesOut) {
    in_green([] {
        green::WaitGroup wg;
        wg.add();
        auto start = Clock::now();
        EXPECT_FALSE(wg.wait_until(Clock::now() + 20ms));
        EXPECT_GE(ms_since(start), 20.0);
        auto finisher = green::spawn([&] { wg.done(); });
        EXPECT_TRUE(wg.wait_until(Clock::now() + 10s));
        finisher.join();
    });
}

TEST(WaitGroupDeathTest, DoneWithoutAddAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            green::WaitGroup wg;
            wg.done();
        },
        "WaitGroup counter went negative");
}

// --- Group -------------------------------------------------------------------

TEST(Group, BoundsConcurrency) {
    in_green([] {
        constexpr std::size_t kLimit = 3;
        green::Group g(kLimit);
        int running = 0, max_running = 0, finished = 0;
        std::size_t max_reported = 0;
        for (int i = 0; i < 20; ++i) {
            g.spawn([&, i] {
                ++running;
                max_running = std::max(max_running, running);
                for (int y = 0; y < 1 + i % 4; ++y) green::this_fiber::yield();
                --running;
                ++finished;
            });
            max_reported = std::max(max_reported, g.running());
            EXPECT_LE(g.running(), kLimit);
        }
        g.wait();
        EXPECT_EQ(finished, 20);
        EXPECT_EQ(max_running, static_cast<int>(kLimit)) << "the limit was never reached or was exceeded";
        EXPECT_LE(max_reported, kLimit);
        EXPECT_EQ(g.running(), 0u);
    });
}

TEST(Group, WaitRethrowsTheFirstError) {
    in_green([] {
        green::Group g;
        green::Event second_may_fail;
        g.spawn([&] { throw std::runtime_error("first"); });
        g.spawn([&] {
            second_may_fail.wait();
            throw std::logic_error("second");
        });
        g.spawn([] { throw green::Cancelled(); });  // a cancelled member is not an error
        g.spawn([&] {
            green::this_fiber::yield();
            second_may_fail.set();
        });
        try {
            g.wait();
            FAIL() << "wait() did not rethrow";
        } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "first");
        }
        g.wait();  // the error was handed out once
    });
}

TEST(Group, CancelledMemberIsNotAnError) {
    in_green([] {
        green::Group g;
        bool ran = false;
        g.spawn([&] {
            ran = true;
            throw green::Cancelled();
        });
        EXPECT_NO_THROW(g.wait());
        EXPECT_TRUE(ran) << "wait returned before the member ended";
    });
}

TEST(Group, DestructorWaitsForMembers) {
    in_green([] {
        int finished = 0;
        {
            green::Group g(2);
            for (int i = 0; i < 6; ++i) g.spawn([&] {
                green::this_fiber::yield();
                ++finished;
            });
        }
        EXPECT_EQ(finished, 6);
    });
}
