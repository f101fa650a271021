// Cancellation and green::Deadline at every suspension point.
//
// The matrix (SuspensionPoint x How) parks a fiber in one blocking operation
// and ends the wait by cancelling it (while parked, from another thread,
// before it ever ran) or by an enclosing Deadline scope. Throwing operations
// must throw green::Cancelled / green::DeadlineExceeded; the value-returning
// ones (wait_fd, wait_until) must return WaitResult::Cancelled / Expired.
#include "test_util.hpp"

#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace green_test;

namespace {

// Everything an operation may block on; outlives the fiber under test.
struct Ctx {
    green::Event ev;
    green::Event blocker;
    green::Semaphore sem{0};
    green::Mutex m;
    green::CondVar cv;
    green::Channel<int> full{1};
    green::Channel<int> empty{1};
    green::WaitGroup wg;
    SocketPair sp;
    green::Task<void> other;
    green::WaitGroup others;  // `other` may have been detached by a cancelled join
    bool mutex_held_after_throw = false;

    Ctx() {
        full.send(0);
        wg.add(1);
    }
    ~Ctx() {
        blocker.set();
        others.wait();  // nothing may still use this Ctx afterwards
        if (other.joinable()) other.join();
    }
    void spawn_other() {
        others.add(1);
        other = green::spawn([this] {
            blocker.wait();
            others.done();
        });
    }
};

struct Case {
    std::string name;
    // The blocking call. Returns the WaitResult for value-returning
    // operations, nullopt for throwing ones (which should not return).
    std::function<std::optional<green::WaitResult>(Ctx&)> op;
    bool returns_value = false;
    // Runs in the test fiber after the waiter is gone: the primitive must not
    // have kept (or been handed something for) the departed waiter.
    std::function<void(Ctx&)> after = [](Ctx&) {};
};

std::vector<Case> cases() {
    using R = std::optional<green::WaitResult>;
    return {
        {"sleep_for", [](Ctx&) -> R { green::this_fiber::sleep_for(10s); return {}; }},
        {"Event_wait", [](Ctx& c) -> R { c.ev.wait(); return {}; },
         false, [](Ctx& c) { c.ev.set(); }},
        {"Event_wait_until", [](Ctx& c) -> R { c.ev.wait_until(Clock::now() + 10s); return {}; }},
        {"Semaphore_acquire", [](Ctx& c) -> R { c.sem.acquire(); return {}; },
         false, [](Ctx& c) {
             c.sem.release();
             EXPECT_EQ(c.sem.value(), 1u) << "a permit was handed to the departed waiter";
         }},
        {"Semaphore_acquire_until", [](Ctx& c) -> R { c.sem.acquire_for(10s); return {}; }},
        {"CondVar_wait", [](Ctx& c) -> R {
             std::unique_lock lock(c.m);
             try {
                 c.cv.wait(c.m);
             } catch (...) {
                 c.mutex_held_after_throw = c.m.owner() == green::this_fiber::id();
                 throw;
             }
             return {};
         }, false, [](Ctx& c) {
             EXPECT_TRUE(c.mutex_held_after_throw) << "CondVar::wait must re-acquire the mutex before throwing";
             EXPECT_EQ(c.m.owner(), 0u) << "unique_lock released it while unwinding";
             c.cv.notify_all();
         }},
        {"CondVar_wait_for_pred", [](Ctx& c) -> R {
             std::unique_lock lock(c.m);
             try {
                 c.cv.wait_for(c.m, 10s, [] { return false; });
             } catch (...) {
                 c.mutex_held_after_throw = c.m.owner() == green::this_fiber::id();
                 throw;
             }
             return {};
         }, false, [](Ctx& c) { EXPECT_TRUE(c.mutex_held_after_throw); }},
        {"Channel_recv", [](Ctx& c) -> R { c.empty.recv(); return {}; },
         false, [](Ctx& c) {
             c.empty.send(5);
             EXPECT_EQ(c.empty.try_recv(), 5) << "the item went to the departed receiver";
         }},
        {"Channel_recv_for", [](Ctx& c) -> R { c.empty.recv_for(10s); return {}; }},
        {"Channel_send", [](Ctx& c) -> R { c.full.send(1); return {}; },
         false, [](Ctx& c) {
             EXPECT_EQ(c.full.try_recv(), 0);
             EXPECT_EQ(c.full.try_recv(), std::nullopt) << "the cancelled send must not have delivered";
         }},
        {"join", [](Ctx& c) -> R {
             c.spawn_other();
             c.other.join();
             return {};
         }},
        {"Task_wait_until", [](Ctx& c) -> R {
             c.spawn_other();
             c.other.wait_until(Clock::now() + 10s);
             return {};
         }},
        {"WaitGroup_wait", [](Ctx& c) -> R { c.wg.wait(); return {}; }},
        {"wait_fd", [](Ctx& c) -> R { return green::wait_fd(c.sp.a(), green::kReadable); }, true},
        {"wait_fd_with_deadline",
         [](Ctx& c) -> R { return green::wait_fd(c.sp.a(), green::kReadable, Clock::now() + 10s); }, true},
        {"wait_until", [](Ctx&) -> R { return green::wait_until(Clock::now() + 10s); }, true},
    };
}

enum class How { CancelParked, CancelFromOtherThread, CancelBeforeFirstRun, DeadlineScope };

const char* to_string(How h) {
    switch (h) {
        case How::CancelParked: return "CancelParked";
        case How::CancelFromOtherThread: return "CancelFromOtherThread";
        case How::CancelBeforeFirstRun: return "CancelBeforeFirstRun";
        case How::DeadlineScope: return "DeadlineScope";
    }
    return "?";
}

class SuspensionPoint : public testing::TestWithParam<std::tuple<Case, How>> {};

TEST_P(SuspensionPoint, EndsTheWait) {
    const Case& c = std::get<0>(GetParam());
    const How how = std::get<1>(GetParam());
    const bool cancel = how != How::DeadlineScope;
    in_green([&] {
        Ctx ctx;
        bool reached = false, threw_expected = false, threw_other = false, returned = false;
        bool next_wait_clean = false;
        std::optional<green::WaitResult> result;
        auto start = Clock::now();
        auto fiber = green::spawn([&] {
            std::optional<green::Deadline> scope;
            if (!cancel) scope.emplace(30ms);
            reached = true;
            try {
                result = c.op(ctx);
                returned = true;
            } catch (const green::Cancelled&) {
                threw_expected = cancel;
                threw_other = !cancel;
            } catch (const green::DeadlineExceeded&) {
                threw_expected = !cancel;
                threw_other = cancel;
            }
            scope.reset();
            // A cancel is delivered once: the next wait is not interrupted.
            next_wait_clean = green::wait_until(Clock::now() + 1ms) == green::WaitResult::TimedOut;
        }, {"victim"});

        switch (how) {
            case How::CancelBeforeFirstRun:
                fiber.cancel();  // runnable, never ran: delivered at its first suspension point
                fiber.join();
                break;
            case How::CancelParked:
                let_runnable_fibers_run();
                EXPECT_TRUE(reached);
                EXPECT_FALSE(fiber.done()) << "the operation did not block";
                fiber.cancel();
                fiber.join();
                break;
            case How::CancelFromOtherThread: {
                let_runnable_fibers_run();
                EXPECT_FALSE(fiber.done()) << "the operation did not block";
                // This hub may have nothing of its own left to wake it while
                // the thread works: say that a foreign thread will.
                green::ExternalWaker external;
                std::latch go(1);
                std::thread canceller([&] {
                    go.wait();
                    fiber.cancel();  // races with this fiber parking in wait_until below
                });
                go.count_down();
                // wait_until, not join: join() takes the handle out of `fiber`
                // while the other thread may still be reading it.
                EXPECT_TRUE(fiber.wait_until(Clock::now() + 20s));
                canceller.join();
                fiber.join();
                break;
            }
            case How::DeadlineScope:
                fiber.join();
                EXPECT_GE(ms_since(start), 30.0);
                break;
        }
        EXPECT_TRUE(reached);
        // A wait that ran to its own 10 s timeout returns normally (false,
        // nullopt, TimedOut): the checks below tell it from an interrupted one.
        if (c.returns_value) {
            EXPECT_TRUE(returned);
            EXPECT_FALSE(threw_expected || threw_other);
            ASSERT_TRUE(result.has_value());
            EXPECT_EQ(*result, cancel ? green::WaitResult::Cancelled : green::WaitResult::Expired)
                << "got " << green::to_string(*result);
        } else {
            EXPECT_TRUE(threw_expected) << (threw_other ? "threw the wrong exception" : "did not throw");
            EXPECT_FALSE(returned);
        }
        EXPECT_TRUE(next_wait_clean);
        c.after(ctx);
    });
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, SuspensionPoint,
    testing::Combine(testing::ValuesIn(cases()),
                     testing::Values(How::CancelParked, How::CancelFromOtherThread, How::CancelBeforeFirstRun,
                                     How::DeadlineScope)),
    [](const testing::TestParamInfo<std::tuple<Case, How>>& info) {
        return std::get<0>(info.param).name + "_" + to_string(std::get<1>(info.param));
    });

}  // namespace

// --- more cancellation ---------------------------------------------------------

TEST(Cancel, RunnableFiberRunsUntilItsNextSuspensionPoint) {
    in_green([] {
        int steps = 0;
        bool saw_request = false;
        auto t = green::spawn([&] {
            ++steps;  // runs: cancel() does not stop a fiber that is not suspended
            saw_request = green::this_fiber::cancel_requested();
            ++steps;
            green::this_fiber::sleep_for(10s);
            ++steps;  // never reached
        });
        t.cancel();
        EXPECT_THROW(t.join(), green::Cancelled);
        EXPECT_EQ(steps, 2);
        EXPECT_TRUE(saw_request);
    });
}

TEST(Cancel, CheckCancelThrowsInABusyFiber) {
    in_green([] {
        long spins = 0;
        auto t = green::spawn([&] {
            for (;;) {
                green::this_fiber::check_cancel();
                ++spins;
                green::this_fiber::yield();
            }
        });
        let_runnable_fibers_run();
        t.cancel();
        EXPECT_THROW(t.join(), green::Cancelled);
        EXPECT_GT(spins, 0);
    });
}

TEST(Cancel, CancelIsOneShotAndCanBeRepeated) {
    in_green([] {
        green::Event ev, waiting_again;
        int cancels = 0;
        auto t = green::spawn([&] {
            for (int i = 0; i < 2; ++i) {
                try {
                    if (i == 1) waiting_again.set();
                    ev.wait();
                } catch (const green::Cancelled&) {
                    ++cancels;
                }
            }
            return cancels;
        });
        let_runnable_fibers_run();
        t.cancel();
        t.cancel();  // a second request before delivery is the same request
        waiting_again.wait();
        let_runnable_fibers_run();
        EXPECT_EQ(cancels, 1);
        EXPECT_FALSE(t.done());
        t.cancel();
        EXPECT_EQ(t.join(), 2);
    });
}

TEST(Cancel, CancellingAFinishedOrEmptyTaskIsANoOp) {
    in_green([] {
        auto t = green::spawn([] { return 3; });
        EXPECT_TRUE(t.wait_for(10s));
        t.cancel();
        EXPECT_EQ(t.join(), 3);
        green::Task<int> empty;
        empty.cancel();
    });
}

TEST(Cancel, CallBlockingIsNotACancellationPoint) {
    in_green([] {
        green::Event job_started;
        std::promise<void> proceed;
        std::shared_future<void> proceed_f = proceed.get_future().share();
        bool cancelled_after = false;
        auto t = green::spawn([&] {
            int v = green::call_blocking([&] {
                job_started.set();  // from a pool thread
                proceed_f.wait();   // a genuinely blocking call
                return 42;
            });
            try {
                green::this_fiber::sleep_for(10s);
            } catch (const green::Cancelled&) {
                cancelled_after = true;
            }
            return v;
        });
        job_started.wait();
        t.cancel();
        let_runnable_fibers_run();
        EXPECT_FALSE(t.done()) << "cancel() interrupted call_blocking";
        proceed.set_value();
        EXPECT_EQ(t.join(), 42) << "call_blocking must return the job's result despite the cancel";
        EXPECT_TRUE(cancelled_after) << "the cancel must be delivered at the next suspension point";
    });
}

// --- deadlines -----------------------------------------------------------------

TEST(Deadline, NestedScopesEarliestWins) {
    in_green([] {
        green::Event never;
        // The later scope is an hour away: had it won, the wait would outlast
        // the test's timeout.
        constexpr auto kLater = 1h;
        // The outer scope is the earlier one.
        auto start = Clock::now();
        try {
            green::Deadline outer(30ms);
            green::Deadline inner(kLater);
            EXPECT_EQ(inner.when() - outer.when() > 5s, true);
            never.wait();
            FAIL() << "wait returned";
        } catch (const green::DeadlineExceeded&) {
        }
        EXPECT_GE(ms_since(start), 30.0);

        // The inner scope is the earlier one; leaving it restores the outer.
        green::Deadline outer(kLater);
        start = Clock::now();
        EXPECT_THROW(
            {
                green::Deadline inner(30ms);
                never.wait();
            },
            green::DeadlineExceeded);
        EXPECT_GE(ms_since(start), 30.0);
        EXPECT_FALSE(never.wait_for(20ms)) << "the outer scope must not have expired";
    });
}

TEST(Deadline, OwnTimeoutsReturnFalseInsideALongerScope) {
    in_green([] {
        green::Deadline scope(10s);
        green::Event ev;
        green::Semaphore sem;
        green::Mutex m;
        green::CondVar cv;
        green::Channel<int> ch(1);
        green::WaitGroup wg;
        wg.add(1);
        SocketPair sp;
        green::Event hold;
        auto holder = green::spawn([&] {
            std::lock_guard lock(m);
            hold.wait();
        });
        let_runnable_fibers_run();

        auto soon = [] { return Clock::now() + 10ms; };
        EXPECT_FALSE(ev.wait_until(soon()));
        EXPECT_FALSE(sem.acquire_until(soon()));
        EXPECT_FALSE(ch.recv_until(soon()).has_value());
        EXPECT_FALSE(wg.wait_until(soon()));
        EXPECT_FALSE(holder.wait_until(soon()));
        EXPECT_FALSE(m.try_lock_until(soon()));
        EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable, soon()), green::WaitResult::TimedOut);
        EXPECT_EQ(green::wait_until(soon()), green::WaitResult::TimedOut);
        hold.set();
        holder.join();
        std::unique_lock lock(m);
        EXPECT_FALSE(cv.wait_until(m, soon()));
        EXPECT_EQ(m.owner(), green::this_fiber::id());
    });
}

TEST(Deadline, ShorterScopeBeatsAnOwnTimeout) {
    in_green([] {
        green::Event ev;
        SocketPair sp;
        {
            green::Deadline scope(20ms);
            EXPECT_THROW(ev.wait_until(Clock::now() + 10s), green::DeadlineExceeded);
        }
        {
            green::Deadline scope(20ms);
            EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable, Clock::now() + 10s), green::WaitResult::Expired);
        }
        {
            green::Deadline scope(10s);
            EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable, Clock::now() + 20ms), green::WaitResult::TimedOut);
        }
        {
            // Already expired: no wait at all.
            green::Deadline scope(Clock::now() - 1s);
            EXPECT_EQ(switches_during([&] {
                          EXPECT_THROW(ev.wait(), green::DeadlineExceeded);
                          EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable), green::WaitResult::Expired);
                          EXPECT_THROW(green::this_fiber::sleep_for(10s), green::DeadlineExceeded);
                      }),
                      0u) << "a wait in an expired scope parked";
            // What is already set needs no wait and succeeds even so.
            ev.set();
            EXPECT_NO_THROW(ev.wait());
        }
    });
}

TEST(Deadline, ScopeIsPerFiberAndNotInherited) {
    in_green([] {
        green::Task<void> child;
        bool child_finished = false;
        {
            green::Deadline scope(10ms);
            child = green::spawn([&] {
                green::this_fiber::sleep_for(40ms);
                child_finished = true;
            });
        }
        child.join();
        EXPECT_TRUE(child_finished);
    });
}

TEST(Deadline, MutexLockIgnoresTheScope) {
    // Like pthread_mutex_lock, green::Mutex::lock is not bounded by a scope,
    // so RAII lock/unlock pairs cannot fail halfway.
    in_green([] {
        green::Mutex m;
        green::Event locked;
        auto holder = green::spawn([&] {
            std::lock_guard lock(m);
            locked.set();
            green::this_fiber::sleep_for(40ms);
        });
        locked.wait();
        green::Deadline scope(5ms);
        m.lock();
        EXPECT_EQ(m.owner(), green::this_fiber::id());
        m.unlock();
        holder.join();
    });
}

// --- what is ready needs no wait ----------------------------------------------------

TEST(Cancel, ACallThatNeedsNoWaitKeepsTheCancelPending) {
    // An operation that can complete at once does not suspend: it succeeds,
    // and the cancel is delivered at the next real suspension point instead
    // of being dropped.
    struct Ready {
        const char* name;
        std::function<void()> op;
    };
    green::Semaphore sem(10);
    green::Event set_event;
    set_event.set();
    green::WaitGroup zero;
    green::Channel<int> ch;
    for (int i = 0; i < 10; ++i) ch.send(i);
    std::vector<Ready> ops = {
        {"Semaphore::acquire", [&] { sem.acquire(); }},
        {"Semaphore::acquire_until", [&] { EXPECT_TRUE(sem.acquire_until(Clock::now() + 10s)); }},
        {"Event::wait", [&] { set_event.wait(); }},
        {"WaitGroup::wait", [&] { zero.wait(); }},
        {"Channel::recv", [&] { EXPECT_TRUE(ch.recv().has_value()); }},
    };
    in_green([&] {
        for (auto& r : ops) {
            bool completed = false;
            auto t = green::spawn([&] {
                r.op();
                completed = true;
                green::this_fiber::sleep_for(3s);  // the cancel must end this
            });
            t.cancel();  // before it runs
            // Had the cancel been dropped, the sleep would end normally and
            // so would the fiber.
            EXPECT_THROW(t.join(), green::Cancelled) << r.name << " swallowed the pending cancel";
            EXPECT_TRUE(completed) << r.name;
        }
    });
}

TEST(Deadline, ReadyBeatsAPastDeadline) {
    in_green([] {
        auto past = Clock::now() - 1s;
        green::Semaphore sem(1);
        EXPECT_TRUE(sem.acquire_until(past));
        green::Event ev;
        ev.set();
        EXPECT_TRUE(ev.wait_until(past));
        green::Mutex m;
        EXPECT_TRUE(m.try_lock_until(past));
        m.unlock();
        green::WaitGroup wg;
        EXPECT_TRUE(wg.wait_until(past));
        green::Channel<int> ch;
        ch.send(1);
        EXPECT_EQ(ch.recv_until(past), 1);
        auto t = green::spawn([] {});
        EXPECT_TRUE(t.wait_until(Clock::now() + 10s));
        EXPECT_TRUE(t.wait_until(past));
        t.join();

        // The same inside an expired scope.
        green::Deadline scope(past);
        sem.release();
        EXPECT_NO_THROW(sem.acquire());
        EXPECT_NO_THROW(ev.wait());
        EXPECT_NO_THROW(wg.wait());
        ch.send(2);
        EXPECT_EQ(ch.recv(), 2);
        m.lock();
        m.unlock();
    });
}
