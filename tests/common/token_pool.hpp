// A pool of tokens behind a mutex and a condition variable, the way a
// connection pool is written, and the two waiting orders every condition
// variable of green keeps (the runtime's green::CondVar and the shim's
// pthread_cond_t, through std::condition_variable). Each test body runs as a
// fiber on one hub, so which fiber runs when is decided by the test, not by
// timing.
//
// Fibers of one hub cannot run side by side: a woken waiter runs only once
// its notifier suspends, and the notifier may take back what it just
// announced (a server thread that returns a pooled connection and, its next
// request already there, takes one again). The waiter's predicate loop then
// waits again; it keeps its place at the head of the line instead of going
// behind every waiter that arrived since. A wait after the fiber released
// the mutex is a new one and queues last.
#pragma once

#include <gtest/gtest.h>

#include <green/green.hpp>

#include <condition_variable>
#include <mutex>
#include <string>

namespace green_test {

inline void wait_on(std::condition_variable& cv, std::unique_lock<std::mutex>& lock) { cv.wait(lock); }
inline void wait_on(green::CondVar& cv, std::unique_lock<green::Mutex>& lock) { cv.wait(*lock.mutex()); }

template <class Mutex, class CondVar>
struct TokenPool {
    Mutex m;
    CondVar cv;
    int tokens = 0;
    int parked = 0;  // takers inside a wait
    int woken = 0;   // returns from a wait
    std::string order;  // who got a token, in order

    void take(char name) {
        std::unique_lock lock(m);
        while (tokens == 0) {
            ++parked;
            wait_on(cv, lock);
            --parked;
            ++woken;
        }
        --tokens;
        order += name;
    }
    void put() {
        {
            std::lock_guard lock(m);
            ++tokens;
        }
        cv.notify_one();
    }
    template <class Pred>
    void yield_until(Pred pred) {
        for (;;) {
            {
                std::lock_guard lock(m);
                if (pred()) return;
            }
            green::this_fiber::yield();
        }
    }
};

// A waits, B waits; a token is put (A woken) and taken back by the putter
// before A runs; A waits again, still ahead of B.
template <class Pool>
void expect_waiter_that_finds_its_wake_taken_keeps_its_place() {
    Pool pool;
    auto first = green::spawn([&] { pool.take('A'); });
    pool.yield_until([&] { return pool.parked == 1; });
    auto second = green::spawn([&] { pool.take('B'); });
    pool.yield_until([&] { return pool.parked == 2; });
    pool.put();
    pool.take('x');
    pool.yield_until([&] { return pool.woken == 1 && pool.parked == 2; });
    pool.put();
    pool.put();
    first.join();
    second.join();
    EXPECT_EQ(pool.order, "xAB");
}

// A gets a token and, after releasing the mutex, waits again later: that is
// a new wait, behind B who waited meanwhile.
template <class Pool>
void expect_new_wait_after_releasing_the_mutex_queues_last() {
    Pool pool;
    green::Event second_waits;
    auto first = green::spawn([&] {
        pool.take('A');
        second_waits.wait();
        pool.take('A');
    });
    pool.yield_until([&] { return pool.parked == 1; });
    pool.put();  // A takes it: nobody takes it back
    auto second = green::spawn([&] { pool.take('B'); });
    pool.yield_until([&] { return pool.parked == 1 && !pool.order.empty(); });
    second_waits.set();
    pool.yield_until([&] { return pool.parked == 2; });
    pool.put();
    pool.put();
    first.join();
    second.join();
    EXPECT_EQ(pool.order, "ABA");
}

}  // namespace green_test
