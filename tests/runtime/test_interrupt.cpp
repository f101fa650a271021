// Hub::request_interrupt (private runtime API, used by the shim for signal
// handlers): it ends an interruptible wait in progress, from this hub or
// another, leaves waits that are not interruptible alone, and is never
// sticky (a fiber that is not parked when it arrives is not affected).
#include "test_util.hpp"

#include "hub.hpp"

#include <atomic>
#include <thread>

using namespace green_test;
using green::WaitResult;
using green::detail::FiberRecord;
using green::detail::Hub;

namespace {

// Yields until `f` is parked (a condition polled, not a sleep).
void until_parked(FiberRecord* f) {
    while (!(f->state == green::detail::FiberState::Suspended && f->parked)) green::this_fiber::yield();
}

TEST(Interrupt, EndsAnFdWaitOnThisHub) {
    in_green([] {
        SocketPair p;
        std::atomic<FiberRecord*> rec{nullptr};
        auto t = green::spawn([&] {
            rec = Hub::current().running();
            return green::wait_fd(p.a(), green::kReadable, Clock::time_point::max());
        });
        while (!rec) green::this_fiber::yield();
        until_parked(rec);
        Hub::request_interrupt(rec);
        EXPECT_EQ(t.join(), WaitResult::Cancelled);
    });
}

TEST(Interrupt, EndsASleep) {
    in_green([] {
        std::atomic<FiberRecord*> rec{nullptr};
        auto t = green::spawn([&] {
            rec = Hub::current().running();
            return green::wait_until(Clock::now() + 60s);
        });
        while (!rec) green::this_fiber::yield();
        until_parked(rec);
        Hub::request_interrupt(rec);
        EXPECT_EQ(t.join(), WaitResult::Cancelled);
    });
}

TEST(Interrupt, LeavesAWaitThatIsNotInterruptible) {
    in_green([] {
        green::Event ev;
        std::atomic<FiberRecord*> rec{nullptr};
        std::atomic<bool> woke{false};
        auto t = green::spawn([&] {
            rec = Hub::current().running();
            ev.wait();
            woke = true;
        });
        while (!rec) green::this_fiber::yield();
        until_parked(rec);
        Hub::request_interrupt(rec);
        for (int i = 0; i < 10; ++i) green::this_fiber::yield();
        EXPECT_FALSE(woke.load());
        ev.set();
        t.join();
        EXPECT_TRUE(woke.load());
    });
}

TEST(Interrupt, IsNotStickyForAFiberThatIsNotParked) {
    in_green([] {
        SocketPair p;
        green::Event go;
        std::atomic<FiberRecord*> rec{nullptr};
        auto t = green::spawn([&] {
            rec = Hub::current().running();
            go.wait();  // not interruptible: the interrupt arrives here
            return green::wait_fd(p.a(), green::kReadable, Clock::now() + 50ms);
        });
        while (!rec) green::this_fiber::yield();
        until_parked(rec);
        Hub::request_interrupt(rec);
        go.set();
        EXPECT_EQ(t.join(), WaitResult::TimedOut);
    });
}

TEST(Interrupt, ReachesAFiberOnAnotherHub) {
    SocketPair p;
    std::atomic<FiberRecord*> rec{nullptr};
    std::atomic<bool> parked{false};
    WaitResult result = WaitResult::Ready;
    std::thread other([&] {
        in_green([&] {
            rec = Hub::current().running();
            auto watcher = green::spawn([&] {
                until_parked(rec);
                parked = true;
            });
            result = green::wait_fd(p.a(), green::kReadable, Clock::time_point::max());
            watcher.join();
        });
    });
    while (!parked) std::this_thread::yield();
    Hub::request_interrupt(rec);
    other.join();
    EXPECT_EQ(result, WaitResult::Cancelled);
}

}  // namespace
