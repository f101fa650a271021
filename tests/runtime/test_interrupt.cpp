// Hub::request_interrupt (private runtime API, used by the shim for signal
// handlers): it ends an interruptible wait in progress, from this hub or
// another, leaves waits that are not interruptible alone, and is never
// sticky (a fiber that is not parked when it arrives is not affected).
#include "test_util.hpp"

#include "hub.hpp"

#include <atomic>
#include <functional>
#include <string>
#include <utility>
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

// Spawns `body` on this hub and returns once the fiber is parked in it: its
// Task and its record.
template <class F>
auto start_parked(F body) {
    FiberRecord* rec = nullptr;
    auto t = green::spawn([&rec, body]() mutable {
        rec = Hub::current().running();
        return body();
    });
    while (!rec) green::this_fiber::yield();
    until_parked(rec);
    return std::make_pair(std::move(t), rec);
}

struct InterruptibleWait {
    const char* name;
    std::function<WaitResult(SocketPair&)> wait;
};

const InterruptibleWait kInterruptibleWaits[] = {
    {"fd_wait", [](SocketPair& p) { return green::wait_fd(p.a(), green::kReadable, Clock::time_point::max()); }},
    {"sleep", [](SocketPair&) { return green::wait_until(Clock::now() + 60s); }},
};

class InterruptOnThisHub : public testing::TestWithParam<InterruptibleWait> {};

TEST_P(InterruptOnThisHub, EndsTheWaitWithCancelled) {
    in_green([] {
        SocketPair p;
        auto [t, rec] = start_parked([&] { return GetParam().wait(p); });
        Hub::request_interrupt(rec);
        EXPECT_EQ(t.join(), WaitResult::Cancelled);
    });
}

INSTANTIATE_TEST_SUITE_P(Waits, InterruptOnThisHub, testing::ValuesIn(kInterruptibleWaits),
                         [](const testing::TestParamInfo<InterruptibleWait>& i) { return std::string(i.param.name); });

TEST(Interrupt, LeavesAWaitThatIsNotInterruptible) {
    in_green([] {
        green::Event ev;
        std::atomic<bool> woke{false};
        auto [t, rec] = start_parked([&] {
            ev.wait();
            woke = true;
        });
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
        auto [t, rec] = start_parked([&] {
            go.wait();  // not interruptible: the interrupt arrives here
            return green::wait_fd(p.a(), green::kReadable, Clock::now() + 50ms);
        });
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
