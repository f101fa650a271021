// wait_fd: readiness, timeouts, many waiters, close-and-reuse of fd numbers.
#include "test_util.hpp"

#include <atomic>
#include <functional>
#include <latch>
#include <thread>
#include <vector>

using namespace green_test;
using green::WaitResult;

namespace {

// Fills the socket's send buffer until write() would block.
void fill(int fd) {
    char buf[4096] = {};
    while (::write(fd, buf, sizeof buf) > 0) {
    }
    ASSERT_EQ(errno, EAGAIN);
}

// Makes `pair.a()` have the number `x` (free now): the lowest free number is
// usually `x` already; otherwise dup2 puts it there.
void move_to_number(SocketPair& pair, int x) {
    if (pair.a() != x) {
        ASSERT_EQ(::dup2(pair.a(), x), x);
        ::close(pair.a());  // never waited on: nothing to notify
        pair.fd[0] = x;
    }
    ASSERT_EQ(pair.a(), x);
}

// Returns after this hub has run its event loop at least once, which applies
// pending watcher changes to epoll and collects every event that was ready
// before the call: a fresh socket made readable now is reported by the same
// epoll_wait as, or a later one than, anything that was ready before.
void poll_once() {
    SocketPair probe;
    ASSERT_TRUE(write_byte(probe.b()));
    EXPECT_EQ(green::wait_fd(probe.a(), green::kReadable, Clock::now() + 20s), WaitResult::Ready);
}

void drain(int fd) {
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
}

// Closes `pair.a()` under a fiber parked on it for reading, once
// `meanwhile` has run: the fiber must wake with Closed.
void close_under_a_waiter(SocketPair& pair, const std::function<void()>& meanwhile) {
    const int x = pair.a();
    auto parked = green::spawn([&] { return green::wait_fd(x, green::kReadable); });
    let_runnable_fibers_run();
    meanwhile();
    green::notify_fd_closing(x);
    ::close(x);
    pair.fd[0] = -1;
    EXPECT_EQ(parked.join(), WaitResult::Closed);
}

// Parks a fiber until `fd` is readable, checks that it stays parked while
// there is nothing to read, writes `c` into `peer`, and expects the fiber to
// wake Ready, on this thread, and read exactly `c`.
void expect_woken_by_a_write(int fd, int peer, char c) {
    const pid_t me = gettid_now();
    auto reader = green::spawn([&] {
        WaitResult r = green::wait_fd(fd, green::kReadable, Clock::now() + 20s);
        EXPECT_EQ(gettid_now(), me);
        return std::make_pair(r, read_byte(fd));
    });
    let_runnable_fibers_run();
    EXPECT_FALSE(reader.done()) << "wait_fd returned before anything was written";
    ASSERT_TRUE(write_byte(peer, c));
    auto [r, byte] = reader.join();
    EXPECT_EQ(r, WaitResult::Ready);
    EXPECT_EQ(byte, c);
}

}  // namespace

TEST(WaitFd, ReadableAfterThePeerWrites) {
    in_green([] {
        SocketPair sp;
        expect_woken_by_a_write(sp.a(), sp.b(), 'q');
    });
}

TEST(WaitFd, WritableSocketIsReadyAtOnce) {
    in_green([] {
        SocketPair sp;
        EXPECT_EQ(green::wait_fd(sp.a(), green::kWritable, Clock::now() + 10s), WaitResult::Ready);
        EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable | green::kWritable, Clock::now() + 10s), WaitResult::Ready);
    });
}

TEST(WaitFd, WritableAgainAfterThePeerDrains) {
    in_green([] {
        SocketPair sp;
        fill(sp.a());
        auto writer = green::spawn([&] { return green::wait_fd(sp.a(), green::kWritable); });
        let_runnable_fibers_run();
        EXPECT_FALSE(writer.done()) << "a full socket reported writable";
        drain(sp.b());
        EXPECT_EQ(writer.join(), WaitResult::Ready);
    });
}

TEST(WaitFd, OwnDeadlineTimesOut) {
    in_green([] {
        SocketPair sp;
        auto start = Clock::now();
        EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable, Clock::now() + 25ms), WaitResult::TimedOut);
        EXPECT_GE(ms_since(start), 25.0);
        EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable, Clock::now() - 1s), WaitResult::TimedOut);
        // A readable fd wins over a deadline that has not passed.
        ASSERT_TRUE(write_byte(sp.b()));
        EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable, Clock::now() + 10s), WaitResult::Ready);
    });
}

TEST(WaitFd, WaitUntilJustSleeps) {
    in_green([] {
        auto start = Clock::now();
        EXPECT_EQ(green::wait_until(Clock::now() + 20ms), WaitResult::TimedOut);
        EXPECT_GE(ms_since(start), 20.0);
    });
}

TEST(WaitFd, BadFdOrNoEventsReturnsReadySoTheSyscallReportsTheError) {
    in_green([] {
        EXPECT_EQ(green::wait_fd(-1, green::kReadable), WaitResult::Ready);
        SocketPair sp;
        EXPECT_EQ(green::wait_fd(sp.a(), 0), WaitResult::Ready);
    });
}

TEST(WaitFd, ManyFibersOnManyFds) {
    in_green([] {
        constexpr int kPairs = 300;
        std::vector<SocketPair> pairs(kPairs);
        std::vector<int> got(kPairs, -1);
        std::vector<WaitResult> results(kPairs, WaitResult::TimedOut);
        std::vector<green::Task<void>> readers;
        for (int i = 0; i < kPairs; ++i) {
            readers.push_back(green::spawn([&, i] {
                results[i] = green::wait_fd(pairs[i].a(), green::kReadable, Clock::now() + 20s);
                got[i] = read_byte(pairs[i].a());
            }));
        }
        let_runnable_fibers_run();
        // Wake them in reverse order, one fd at a time, letting each run.
        for (int i = kPairs - 1; i >= 0; --i) {
            ASSERT_TRUE(write_byte(pairs[i].b(), static_cast<char>(i % 100)));
            if (i % 50 == 0) green::this_fiber::yield();
        }
        for (auto& r : readers) r.join();
        for (int i = 0; i < kPairs; ++i) {
            EXPECT_EQ(results[i], WaitResult::Ready) << "fd pair " << i;
            EXPECT_EQ(got[i], i % 100) << "fd pair " << i;
        }
    });
}

TEST(WaitFd, SeveralWaitersOnOneFd) {
    in_green([] {
        SocketPair sp;
        std::vector<green::Task<WaitResult>> readers;
        for (int i = 0; i < 4; ++i) readers.push_back(green::spawn([&] { return green::wait_fd(sp.a(), green::kReadable); }));
        // A writable-waiter on the same fd returns at once while the readers stay parked.
        auto writer = green::spawn([&] { return green::wait_fd(sp.a(), green::kWritable); });
        EXPECT_EQ(writer.join(), WaitResult::Ready);
        let_runnable_fibers_run();
        for (auto& r : readers) EXPECT_FALSE(r.done());
        ASSERT_TRUE(write_byte(sp.b()));
        for (auto& r : readers) EXPECT_EQ(r.join(), WaitResult::Ready);
    });
}

TEST(WaitFd, RepeatedWaitsOnTheSameFd) {
    // The watcher stays armed between waits; readiness nobody waits for must
    // not leak into a later wait after the data was consumed.
    in_green([] {
        SocketPair sp;
        auto echo = green::spawn([&] {
            for (int i = 0; i < 200; ++i) {
                EXPECT_EQ(green::wait_fd(sp.b(), green::kReadable), WaitResult::Ready);
                int c = read_byte(sp.b());
                EXPECT_EQ(c, i % 128);
                EXPECT_TRUE(write_byte(sp.b(), static_cast<char>(c)));
            }
        });
        for (int i = 0; i < 200; ++i) {
            ASSERT_TRUE(write_byte(sp.a(), static_cast<char>(i % 128)));
            ASSERT_EQ(green::wait_fd(sp.a(), green::kReadable), WaitResult::Ready);
            ASSERT_EQ(read_byte(sp.a()), i % 128);
        }
        echo.join();
        EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable, Clock::now() + 20ms), WaitResult::TimedOut);
    });
}

TEST(WaitFd, NotifyFdClosingWakesTheWaiterWithClosed) {
    in_green([] {
        SocketPair sp;
        int fd = sp.a();
        auto waiter = green::spawn([&] { return green::wait_fd(fd, green::kReadable); });
        let_runnable_fibers_run();
        ASSERT_FALSE(waiter.done());
        auto closer = green::spawn([&] {
            green::notify_fd_closing(fd);
            ::close(fd);
        });
        sp.fd[0] = -1;
        closer.join();
        EXPECT_EQ(waiter.join(), WaitResult::Closed);
    });
}

TEST(WaitFd, ReusedFdNumberIsNotConfusedWithTheClosedOne) {
    in_green([] {
        SocketPair old_pair;
        const int x = old_pair.a();
        // The old socket is readable and nobody reads it: stale readiness.
        ASSERT_TRUE(write_byte(old_pair.b(), 'o'));
        // Arm this hub's watcher for both directions on the old file.
        auto waiter = green::spawn([&] { return green::wait_fd(x, green::kWritable, Clock::now() + 20s); });
        auto old_reader = green::spawn([&] { return green::wait_fd(x, green::kReadable, Clock::now() + 20s); });
        EXPECT_EQ(waiter.join(), WaitResult::Ready);
        EXPECT_EQ(old_reader.join(), WaitResult::Ready);

        // Park a waiter on the old file, then close it under the waiter.
        drain(x);
        close_under_a_waiter(old_pair, [&] { EXPECT_TRUE(write_byte(old_pair.b(), 'p')); });  // unread on purpose

        // A new socket gets the same number.
        SocketPair fresh;
        move_to_number(fresh, x);

        // Nothing to read on the new file: the old file's pending byte must
        // not make this wait return.
        EXPECT_EQ(green::wait_fd(x, green::kReadable, Clock::now() + 30ms), WaitResult::TimedOut);
        expect_woken_by_a_write(x, fresh.b(), 'n');
    });
}

TEST(WaitFd, ReusedFdNumberWhileTheOldFileLivesOnInADup) {
    // epoll tracks open file descriptions: with a dup of the old socket still
    // open, the kernel keeps reporting the old file under the old number after
    // close(). A wait on the new file with that number must not see it.
    in_green([] {
        SocketPair old_pair;
        const int x = old_pair.a();
        const int keep = ::dup(x);
        ASSERT_GE(keep, 0);
        close_under_a_waiter(old_pair, [] { poll_once(); });  // the old file is now registered with epoll under x

        SocketPair fresh;
        move_to_number(fresh, x);

        auto reader = green::spawn([&] { return green::wait_fd(x, green::kReadable, Clock::now() + 20s); });
        let_runnable_fibers_run();
        ASSERT_TRUE(write_byte(old_pair.b(), 'o'));  // the old file becomes readable
        // Once the hub has polled again, a wrongly woken reader would be
        // runnable.
        poll_once();
        let_runnable_fibers_run();
        EXPECT_FALSE(reader.done()) << "the old file's readiness woke a waiter on the new file";
        ASSERT_TRUE(write_byte(fresh.b(), 'n'));
        EXPECT_EQ(reader.join(), WaitResult::Ready);
        EXPECT_EQ(read_byte(x), 'n');
        green::notify_fd_closing(keep);
        ::close(keep);
    });
}

TEST(WaitFd, CloseReachesWaitersOnOtherHubs) {
    // Fibers on this hub and on another thread's hub wait on one fd; one
    // write wakes both; a notify_fd_closing from this hub wakes both with
    // Closed, each on its own thread.
    in_green([] {
        SocketPair sp;
        const int x = sp.a();
        green::Event first_done;
        green::Event second_round;
        WaitResult other_first = WaitResult::TimedOut, other_second = WaitResult::TimedOut;
        pid_t other_tid_before = 0, other_tid_after = 0;
        std::latch has_hub(1);
        std::thread other([&] {
            (void)green::this_fiber::id();
            has_hub.count_down();
            other_tid_before = gettid_now();
            other_first = green::wait_fd(x, green::kReadable, Clock::now() + 20s);
            first_done.set();
            second_round.wait();
            other_second = green::wait_fd(x, green::kReadable, Clock::now() + 20s);
            other_tid_after = gettid_now();
        });
        has_hub.wait();
        auto here = green::spawn([&] { return green::wait_fd(x, green::kReadable, Clock::now() + 20s); });
        let_runnable_fibers_run();
        ASSERT_TRUE(write_byte(sp.b()));
        EXPECT_EQ(here.join(), WaitResult::Ready);
        first_done.wait();
        EXPECT_EQ(other_first, WaitResult::Ready);
        drain(x);

        // Round two: wait until the other hub's fiber is parked in wait_fd
        // (fd_waits counts it after it is linked), then close.
        auto here2 = green::spawn([&] { return green::wait_fd(x, green::kReadable); });
        let_runnable_fibers_run();
        std::uint64_t waits_before = green::stats().fd_waits;
        second_round.set();
        ASSERT_TRUE(spin_until([&] { return green::stats().fd_waits > waits_before; }));
        green::notify_fd_closing(x);
        ::close(x);
        sp.fd[0] = -1;
        EXPECT_EQ(here2.join(), WaitResult::Closed);
        other.join();
        EXPECT_EQ(other_second, WaitResult::Closed);
        EXPECT_EQ(other_tid_before, other_tid_after);
    });
}

TEST(WaitFd, ClosingAnFdThatAnIdleHubOnceWatchedReturns) {
    // Regression: notify_fd_closing walks the hub registry under its lock
    // and used to unstick an idle hub by taking that same lock again: a
    // self-deadlock (spinning forever) whenever a hub that had ever waited
    // on the fd was idle at the time of the close. Seen as a server with
    // GREEN_HUBS=2 that stopped answering. The other hub is made idle before
    // each close; the race is hit often, never missed by a fixed runtime.
    in_green([] {
        constexpr int kRounds = 50;
        std::atomic<int> fd_for_other{-1};
        std::atomic<int> rounds_watched{0};
        green::Semaphore next_round(0);
        std::thread other([&] {
            green::ExternalWaker keep;  // the test thread wakes us via next_round
            for (int round = 0; round < kRounds; ++round) {
                next_round.acquire();  // idle ("stuck") here until the next round
                EXPECT_EQ(green::wait_fd(fd_for_other.load(), green::kWritable, Clock::now() + 20s), WaitResult::Ready);
                rounds_watched.fetch_add(1);
            }
        });
        for (int round = 0; round < kRounds; ++round) {
            SocketPair sp;
            fd_for_other = sp.a();
            next_round.release();
            ASSERT_TRUE(spin_until([&] { return rounds_watched.load() == round + 1; }));
            for (int i = 0; i < 200; ++i) std::this_thread::yield();  // let the other hub go idle (not a sync point)
            green::notify_fd_closing(sp.a());  // hung here before the fix
            ::close(sp.a());
            sp.fd[0] = -1;
        }
        other.join();
    });
}

// --- wait_any_fd -------------------------------------------------------------------

TEST(WaitAnyFd, ReadyWhenAnyOneIsReady) {
    in_green([] {
        std::vector<SocketPair> pairs(3);
        std::vector<green::FdInterest> set;
        for (auto& p : pairs) set.push_back({p.a(), green::kReadable});
        auto waiter = green::spawn([&] { return green::wait_any_fd(set.data(), set.size()); });
        let_runnable_fibers_run();
        EXPECT_FALSE(waiter.done());
        ASSERT_TRUE(write_byte(pairs[1].b()));
        EXPECT_EQ(waiter.join(), WaitResult::Ready);
        // Readiness of a set member after the call returned reaches nobody
        // (the wait's members left every fd's list; the watchers stay armed
        // for the next wait) and breaks nothing.
        ASSERT_TRUE(write_byte(pairs[2].b()));
        poll_once();
        EXPECT_EQ(green::wait_fd(pairs[2].a(), green::kReadable, Clock::now() + 10s), WaitResult::Ready);
    });
}

TEST(WaitAnyFd, ManyFdsAndWritable) {
    in_green([] {
        std::vector<SocketPair> pairs(40);  // more than fit in the inline watcher array
        std::vector<green::FdInterest> set;
        for (auto& p : pairs) set.push_back({p.a(), green::kReadable});
        auto waiter = green::spawn([&] { return green::wait_any_fd(set.data(), set.size(), Clock::now() + 20s); });
        let_runnable_fibers_run();
        ASSERT_TRUE(write_byte(pairs.back().b()));
        EXPECT_EQ(waiter.join(), WaitResult::Ready);
        set.push_back({pairs[0].b(), green::kWritable});
        EXPECT_EQ(green::wait_any_fd(set.data(), set.size(), Clock::now() + 20s), WaitResult::Ready);
    });
}

TEST(WaitAnyFd, TimeoutAndIgnoredEntries) {
    in_green([] {
        SocketPair sp;
        green::FdInterest set[] = {{sp.a(), green::kReadable}, {-1, green::kReadable}, {sp.b(), 0}};
        auto start = Clock::now();
        EXPECT_EQ(green::wait_any_fd(set, 3, Clock::now() + 20ms), WaitResult::TimedOut);
        EXPECT_GE(ms_since(start), 20.0);
        // Only ignored entries: nothing to wait for but the deadline.
        EXPECT_EQ(green::wait_any_fd(set + 1, 2, Clock::now() + 10ms), WaitResult::TimedOut);
    });
}

TEST(WaitAnyFd, SharesAnFdWithAWaitFdWaiter) {
    in_green([] {
        SocketPair sp, other;
        green::FdInterest set[] = {{sp.a(), green::kReadable}, {other.a(), green::kReadable}};
        auto single = green::spawn([&] { return green::wait_fd(sp.a(), green::kReadable, Clock::now() + 20s); });
        auto any = green::spawn([&] { return green::wait_any_fd(set, 2, Clock::now() + 20s); });
        let_runnable_fibers_run();
        ASSERT_TRUE(write_byte(sp.b()));
        EXPECT_EQ(single.join(), WaitResult::Ready);
        EXPECT_EQ(any.join(), WaitResult::Ready);
    });
}

// Events on several fds of one set in the same loop turn end the wait once:
// the first member's wake wins the wait, the others find it taken. The set
// then waits again on the same, still armed watchers.
TEST(WaitAnyFd, EventsOnSeveralMembersWakeTheWaitOnce) {
    in_green([] {
        std::vector<SocketPair> pairs(3);
        std::vector<green::FdInterest> set;
        for (auto& p : pairs) set.push_back({p.a(), green::kReadable});
        for (int round = 0; round < 3; ++round) {
            auto waiter = green::spawn([&] { return green::wait_any_fd(set.data(), set.size(), Clock::now() + 20s); });
            let_runnable_fibers_run();
            EXPECT_FALSE(waiter.done());
            for (auto& p : pairs) ASSERT_TRUE(write_byte(p.b()));
            poll_once();
            EXPECT_EQ(waiter.join(), WaitResult::Ready);
            for (auto& p : pairs) drain(p.a());
        }
        EXPECT_EQ(green::wait_any_fd(set.data(), set.size(), Clock::now() + 10ms), WaitResult::TimedOut);
    });
}

// A set waits like wait_fd; the close of one of its fds ends it Ready (the
// caller's zero-timeout recheck then reports the kernel's answer), and the
// long-lived watcher serves the next wait on a new file with the same number.
// Parameter (for the tests of this fixture): how many fds the set holds (1
// is wait_fd's path).
class WaitAnyFdSets : public ::testing::TestWithParam<int> {};

TEST_P(WaitAnyFdSets, SetEndsReadyWhenAnFdCloses) {
    const int others = GetParam() - 1;
    in_green([others] {
        std::vector<SocketPair> quiet(static_cast<std::size_t>(others));
        int fds[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        std::vector<green::FdInterest> set{{fds[0], green::kReadable}};
        for (auto& p : quiet) set.push_back({p.a(), green::kReadable});
        auto waiter = green::spawn([&] { return green::wait_any_fd(set.data(), set.size(), Clock::now() + 20s); });
        let_runnable_fibers_run();
        EXPECT_FALSE(waiter.done());
        green::notify_fd_closing(fds[0]);
        close(fds[0]);
        EXPECT_EQ(waiter.join(), WaitResult::Ready);
        close(fds[1]);

        SocketPair reused;  // likely the same numbers again
        set[0].fd = reused.a();
        auto second = green::spawn([&] { return green::wait_any_fd(set.data(), set.size(), Clock::now() + 20s); });
        let_runnable_fibers_run();
        EXPECT_FALSE(second.done());
        ASSERT_TRUE(write_byte(reused.b()));
        EXPECT_EQ(second.join(), WaitResult::Ready);
    });
}

TEST_P(WaitAnyFdSets, CancelledAndExpired) {
    const std::size_t n = static_cast<std::size_t>(GetParam());
    in_green([n] {
        std::vector<SocketPair> pairs(n);
        std::vector<green::FdInterest> set;
        for (auto& p : pairs) set.push_back({p.a(), green::kReadable});
        auto waiter = green::spawn([&] { return green::wait_any_fd(set.data(), set.size()); });
        let_runnable_fibers_run();
        waiter.cancel();
        EXPECT_EQ(waiter.join(), WaitResult::Cancelled);
        // The cancelled wait left no member behind for a later event to wake.
        for (auto& p : pairs) ASSERT_TRUE(write_byte(p.b()));
        poll_once();
        for (auto& p : pairs) drain(p.a());
        green::Deadline scope(20ms);
        EXPECT_EQ(green::wait_any_fd(set.data(), set.size(), Clock::now() + 10s), WaitResult::Expired);
    });
}

INSTANTIATE_TEST_SUITE_P(SetSizes, WaitAnyFdSets, ::testing::Values(1, 3),
                         [](const ::testing::TestParamInfo<int>& i) { return "fds" + std::to_string(i.param); });
