// Primitives shared between hubs (one per OS thread) and with plain threads.
//
// Every waiter must be resumed by its own hub: each fiber records the thread
// id it started on and checks it after every wait.
#include "test_util.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

using namespace green_test;

namespace {

// A thread whose body runs as a fiber under green::run. A Deadlock or any
// other exception escaping the body becomes a test failure, not a terminate.
class HubThread {
public:
    template <class F>
    explicit HubThread(F body, std::latch* all_have_hubs = nullptr)
        : thread_([body = std::move(body), all_have_hubs]() mutable {
              (void)green::this_fiber::id();  // creates this thread's hub
              if (all_have_hubs) all_have_hubs->arrive_and_wait();
              try {
                  green::run(body, "hub-thread");
              } catch (const std::exception& e) {
                  ADD_FAILURE() << "hub thread ended with: " << e.what();
              }
          }) {}
    ~HubThread() { join(); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }

private:
    std::thread thread_;
};

// Asserts, on scope exit, that the fiber is still on the thread it began on.
struct SameThread {
    pid_t tid = gettid_now();
    void check() const { EXPECT_EQ(gettid_now(), tid) << "fiber resumed on a foreign thread"; }
};

}  // namespace

// Two hubs ping-pong through semaphores, so each one keeps going idle with
// the other's wake in flight. Runs in a child process where the main thread
// has no hub: with a hub of its own (not idle while it blocks in join) the
// deadlock detector could never fire, and a false alarm would go unseen.
[[noreturn]] void ping_pong_child(int rounds) {
    green::Semaphore ping(0), pong(0);
    std::latch hubs(2);
    std::atomic<int> failures{0};
    auto side = [&](bool first) {
        (void)green::this_fiber::id();
        hubs.arrive_and_wait();
        try {
            green::run([&] {
                for (int i = 0; i < rounds; ++i) {
                    if (first) {
                        ping.release();
                        pong.acquire();
                    } else {
                        ping.acquire();
                        pong.release();
                    }
                }
            });
        } catch (const green::Deadlock& d) {
            std::fprintf(stderr, "false deadlock: %s", d.what());
            ++failures;
            std::_Exit(1);  // the other side can never finish now
        }
    };
    std::thread a(side, true), b(side, false);
    a.join();
    b.join();
    std::fprintf(stderr, "ping-pong finished\n");
    std::_Exit(failures.load() == 0 ? 0 : 1);
}

TEST(CrossHubDeathTest, NoFalseDeadlockWhileWakesAreInFlight) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(ping_pong_child(20000), testing::ExitedWithCode(0), "ping-pong finished");
}

TEST(CrossHub, EventWakesFibersOnAnotherHubOnTheirOwnThread) {
    green::Event go, b_parked, b_done;
    std::atomic<int> woken{0};
    std::latch hubs(2);
    HubThread b([&] {
        std::vector<green::Task<void>> waiters;
        for (int i = 0; i < 5; ++i) waiters.push_back(green::spawn([&] {
            SameThread st;
            go.wait();
            st.check();
            ++woken;
        }));
        green::spawn([&] { b_parked.set(); }).join();  // after all five parked
        for (auto& w : waiters) w.join();
        b_done.set();
    }, &hubs);
    HubThread a([&] {
        SameThread st;
        b_parked.wait();
        st.check();
        EXPECT_EQ(woken.load(), 0);
        go.set();
        b_done.wait();
        st.check();
        EXPECT_EQ(woken.load(), 5);
    }, &hubs);
}

TEST(CrossHub, SemaphorePingPong) {
    constexpr int kRounds = 2000;
    green::Semaphore ping(0), pong(0);
    std::latch hubs(2);
    HubThread b([&] {
        SameThread st;
        for (int i = 0; i < kRounds; ++i) {
            ping.acquire();
            pong.release();
        }
        st.check();
    }, &hubs);
    HubThread a([&] {
        SameThread st;
        for (int i = 0; i < kRounds; ++i) {
            ping.release();
            pong.acquire();
        }
        st.check();
    }, &hubs);
    a.join();
    b.join();
    EXPECT_EQ(ping.value(), 0u);
    EXPECT_EQ(pong.value(), 0u);
}

TEST(CrossHub, MutexExcludesFibersOnDifferentHubs) {
    constexpr int kThreads = 3, kFibers = 3, kIters = 300;
    green::Mutex m;
    long counter = 0;  // guarded by m, not atomic on purpose
    std::atomic<int> inside{0}, max_inside{0};
    std::latch hubs(kThreads);
    std::vector<std::unique_ptr<HubThread>> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.push_back(std::make_unique<HubThread>([&] {
            std::vector<green::Task<void>> fibers;
            for (int f = 0; f < kFibers; ++f) fibers.push_back(green::spawn([&] {
                SameThread st;
                for (int i = 0; i < kIters; ++i) {
                    std::lock_guard lock(m);
                    int now = ++inside;
                    int seen = max_inside.load();
                    while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
                    }
                    long c = counter;
                    if (i % 7 == 0) green::this_fiber::yield();  // suspend while holding it
                    counter = c + 1;
                    --inside;
                }
                st.check();
            }));
            for (auto& f : fibers) f.join();
        }, &hubs));
    }
    threads.clear();
    EXPECT_EQ(counter, long{kThreads} * kFibers * kIters);
    EXPECT_EQ(max_inside.load(), 1);
    EXPECT_EQ(m.owner(), 0u);
}

TEST(CrossHub, TimedOutWaitersAreNeverHandedAPermitOrTheMutex) {
    // Races each wake against the waiter's own (very short) timeout. Whoever
    // loses must not strand what the winner handed over: every permit is
    // eventually acquired, and the mutex ends up free.
    constexpr int kPermits = 3000;
    green::Semaphore sem(0);
    green::Mutex m;
    std::atomic<int> acquired{0}, locked{0};
    std::atomic<bool> producer_done{false};
    std::latch hubs(2);
    HubThread consumer([&] {
        SameThread st;
        auto give_up = Clock::now() + 20s;
        while (acquired.load() < kPermits && Clock::now() < give_up) {
            if (sem.acquire_for(std::chrono::microseconds(50))) ++acquired;
            if (m.try_lock_for(std::chrono::microseconds(50))) {
                ++locked;
                m.unlock();
            }
        }
        st.check();
    }, &hubs);
    HubThread producer([&] {
        SameThread st;
        for (int i = 0; i < kPermits; ++i) {
            sem.release();
            std::lock_guard lock(m);
            green::this_fiber::yield();
        }
        producer_done = true;
        st.check();
    }, &hubs);
    producer.join();
    consumer.join();
    EXPECT_EQ(acquired.load(), kPermits) << "a permit was lost to a waiter that had timed out";
    EXPECT_EQ(sem.value(), 0u);
    EXPECT_EQ(m.owner(), 0u) << "the mutex was handed to a waiter that had timed out";
    EXPECT_TRUE(producer_done.load());
}

TEST(CrossHub, CondVarProducerConsumer) {
    constexpr int kItems = 2000;
    green::Mutex m;
    green::CondVar not_empty;
    std::deque<int> queue;
    bool finished = false;
    long sum = 0;
    std::latch hubs(2);
    HubThread consumer([&] {
        SameThread st;
        for (;;) {
            std::unique_lock lock(m);
            not_empty.wait(m, [&] { return finished || !queue.empty(); });
            st.check();
            if (queue.empty()) break;
            sum += queue.front();
            queue.pop_front();
        }
    }, &hubs);
    HubThread producer([&] {
        for (int i = 1; i <= kItems; ++i) {
            {
                std::lock_guard lock(m);
                queue.push_back(i);
            }
            not_empty.notify_one();
            if (i % 16 == 0) green::this_fiber::yield();
        }
        std::lock_guard lock(m);
        finished = true;
        not_empty.notify_all();
    }, &hubs);
    producer.join();
    consumer.join();
    EXPECT_EQ(sum, long{kItems} * (kItems + 1) / 2);
}

TEST(CrossHub, ChannelBetweenSeveralHubs) {
    constexpr int kProducerThreads = 2, kConsumerThreads = 2, kFibersEach = 3, kPerFiber = 400;
    green::Channel<int> ch(4);
    green::WaitGroup producing;
    producing.add(kProducerThreads * kFibersEach);
    std::atomic<long> sum{0};
    std::atomic<int> count{0};
    std::latch hubs(kProducerThreads + kConsumerThreads + 1);
    std::vector<std::unique_ptr<HubThread>> threads;
    for (int t = 0; t < kProducerThreads; ++t) {
        threads.push_back(std::make_unique<HubThread>([&, t] {
            std::vector<green::Task<void>> fibers;
            for (int f = 0; f < kFibersEach; ++f) fibers.push_back(green::spawn([&, t, f] {
                SameThread st;
                int base = (t * kFibersEach + f) * kPerFiber;
                for (int i = 0; i < kPerFiber; ++i) ch.send(base + i);
                st.check();
                producing.done();
            }));
            for (auto& f : fibers) f.join();
        }, &hubs));
    }
    for (int t = 0; t < kConsumerThreads; ++t) {
        threads.push_back(std::make_unique<HubThread>([&] {
            std::vector<green::Task<void>> fibers;
            for (int f = 0; f < kFibersEach; ++f) fibers.push_back(green::spawn([&] {
                SameThread st;
                while (auto v = ch.recv()) {
                    sum += *v;
                    ++count;
                }
                st.check();
            }));
            for (auto& f : fibers) f.join();
        }, &hubs));
    }
    // The closer: a hub of its own that waits for every producer fiber.
    threads.push_back(std::make_unique<HubThread>([&] {
        producing.wait();
        ch.close();
    }, &hubs));
    threads.clear();
    constexpr int n = kProducerThreads * kFibersEach * kPerFiber;
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), long{n} * (n - 1) / 2);
}

TEST(CrossHub, JoinAFiberOfAnotherHub) {
    // The Task crosses to another thread, which joins it: the joiner parks
    // on its hub, the fiber finishes on its own, and the record and stack are
    // released by the joining thread.
    std::promise<green::Task<pid_t>> handoff;
    green::Event release_fiber, b_may_exit;
    std::latch hubs(2);
    pid_t b_tid = 0;
    HubThread b([&] {
        b_tid = gettid_now();
        handoff.set_value(green::spawn([&] {
            release_fiber.wait();
            return gettid_now();
        }));
        b_may_exit.wait();
    }, &hubs);
    HubThread a([&] {
        green::Task<pid_t> t = handoff.get_future().get();  // b sets it before parking
        release_fiber.set();
        pid_t ran_on = t.join();
        EXPECT_EQ(ran_on, b_tid);
        EXPECT_NE(ran_on, gettid_now());
        b_may_exit.set();
    }, &hubs);
}

TEST(CrossHub, PlainThreadSetsAnEventAFiberWaitsOn) {
    in_green([] {
        for (int round = 0; round < 50; ++round) {
            green::Event ev;
            SameThread st;
            // Without this, this hub (the only one) would be declared
            // deadlocked while the thread below has not called set() yet: a
            // plain thread has no hub the detector could know about.
            green::ExternalWaker external;
            int handed_over = -1;
            std::thread setter([&] {
                handed_over = round;  // published to the fiber by set()
                ev.set();
            });
            ev.wait();
            st.check();
            EXPECT_EQ(handed_over, round);
            setter.join();
        }
    });
}

TEST(CrossHub, PlainThreadBlocksOnEventWithALazilyCreatedHub) {
    in_green([] {
        for (int round = 0; round < 50; ++round) {
            green::Event ev, about_to_wait;
            bool timed_out_first = false;
            pid_t before = 0, after = 0;
            std::latch has_hub(1);
            std::thread waiter([&] {
                before = gettid_now();
                // The first wait creates the thread's hub; the latch keeps
                // this fiber from parking before it exists (until then this
                // would be the only hub, idle: a deadlock, correctly).
                timed_out_first = !ev.wait_for(1ms);  // parks on its own new hub with a timer
                has_hub.count_down();
                about_to_wait.set();
                ev.wait();
                after = gettid_now();
            });
            has_hub.wait();
            about_to_wait.wait();
            ev.set();
            waiter.join();
            EXPECT_TRUE(timed_out_first);
            EXPECT_EQ(before, after);
        }
    });
}

TEST(CrossHub, PlainThreadsFinishAWaitGroup) {
    in_green([] {
        constexpr int kThreads = 4;
        green::WaitGroup wg;
        wg.add(kThreads);
        std::atomic<int> work{0};
        green::ExternalWaker external;  // the threads below have no hub
        std::vector<std::thread> threads;
        for (int i = 0; i < kThreads; ++i) threads.emplace_back([&] {
            ++work;
            wg.done();
        });
        SameThread st;
        wg.wait();
        st.check();
        EXPECT_EQ(work.load(), kThreads);
        for (auto& t : threads) t.join();
    });
}
