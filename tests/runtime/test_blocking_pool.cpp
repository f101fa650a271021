// call_blocking: runs on pool threads, keeps the hub running, queues excess
// work, propagates results and exceptions.
#include "test_util.hpp"

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace green_test;

namespace {

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2: " << std::strerror(errno);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        ::close(r);
        ::close(w);
    }
};

// A gate that OS threads (pool jobs) block on; opened from a fiber.
class Gate {
public:
    void wait() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return open_; });
    }
    void open() {
        {
            std::lock_guard lock(m_);
            open_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
};

}  // namespace

TEST(BlockingPool, RunsOnAnotherThreadAndReturnsTheResult) {
    in_green([] {
        pid_t hub = gettid_now();
        pid_t job = green::call_blocking([] { return gettid_now(); });
        EXPECT_NE(job, hub);
        EXPECT_EQ(gettid_now(), hub) << "the fiber must come back on its own hub";
        int side = 0;
        green::call_blocking([&] { side = 9; });
        EXPECT_EQ(side, 9);
        std::string s = green::call_blocking([] { return std::string(1000, 'z'); });
        EXPECT_EQ(s.size(), 1000u);
    });
}

TEST(BlockingPool, ExceptionsPropagateToTheCaller) {
    in_green([] {
        try {
            green::call_blocking([]() -> int { throw std::invalid_argument("from the pool"); });
            FAIL() << "call_blocking swallowed the exception";
        } catch (const std::invalid_argument& e) {
            EXPECT_STREQ(e.what(), "from the pool");
        }
        // The pool is fine afterwards.
        EXPECT_EQ(green::call_blocking([] { return 1; }), 1);
    });
}

TEST(BlockingPool, HubKeepsRunningOtherFibersWhileAJobBlocks) {
    in_green([] {
        Pipe pipe;  // blocking pipe: read() really blocks the pool thread
        green::Event job_started;
        bool writer_ran_while_blocked = false;
        auto reader = green::spawn([&] {
            return green::call_blocking([&] {
                job_started.set();
                // Bounded, so that a hub blocked by this call fails the test
                // instead of hanging it: the writer below needs the hub.
                pollfd p{pipe.r, POLLIN, 0};
                if (::poll(&p, 1, 10000) != 1) return -1;
                return read_byte(pipe.r);
            });
        });
        auto writer = green::spawn([&] {
            job_started.wait();
            writer_ran_while_blocked = !reader.done();
            write_byte(pipe.w, 'w');
        });
        EXPECT_EQ(reader.join(), 'w') << "the pool job never saw the write: the hub was blocked";
        writer.join();
        EXPECT_TRUE(writer_ran_while_blocked);
    });
}

TEST(BlockingPool, MoreJobsThanThreadsAreQueuedNotDropped) {
    in_green([] {
        const std::size_t threads = green::blocking_pool_size();
        ASSERT_GE(threads, 1u);
        const std::size_t jobs = 4 * threads;
        std::atomic<std::size_t> running{0}, max_running{0}, completed{0};
        green::Event saturated;
        Gate gate;
        green::Stats before = green::stats();
        std::vector<green::Task<std::size_t>> callers;
        for (std::size_t i = 0; i < jobs; ++i) {
            callers.push_back(green::spawn([&, i] {
                return green::call_blocking([&, i] {
                    std::size_t now = ++running;
                    std::size_t seen = max_running.load();
                    while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
                    }
                    if (now == threads) saturated.set();
                    gate.wait();  // every pool thread is now stuck here
                    --running;
                    ++completed;
                    return i;
                });
            }));
        }
        saturated.wait();
        EXPECT_EQ(running.load(), threads);
        EXPECT_EQ(completed.load(), 0u);
        gate.open();
        for (std::size_t i = 0; i < jobs; ++i) EXPECT_EQ(callers[i].join(), i);
        EXPECT_EQ(completed.load(), jobs);
        EXPECT_EQ(max_running.load(), threads) << "more jobs ran at once than the pool has threads";
        EXPECT_GE(green::stats().pool_jobs - before.pool_jobs, jobs);
    });
}

TEST(BlockingPool, ManyFibersOnSeveralHubs) {
    constexpr int kThreads = 2, kFibers = 40;
    static constexpr int kCalls = 10;
    std::atomic<long> sum{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            green::run([&] {
                pid_t hub = gettid_now();
                std::vector<green::Task<void>> fibers;
                for (int f = 0; f < kFibers; ++f) fibers.push_back(green::spawn([&, f] {
                    for (int c = 0; c < kCalls; ++c) {
                        sum += green::call_blocking([f, c] { return f * kCalls + c; });
                        EXPECT_EQ(gettid_now(), hub);
                    }
                }));
                for (auto& f : fibers) f.join();
            });
        });
    }
    for (auto& t : threads) t.join();
    constexpr long n = kFibers * kCalls;
    EXPECT_EQ(sum.load(), kThreads * n * (n - 1) / 2);
}

TEST(BlockingPool, UsableFromAPlainThread) {
    std::thread t([] {
        pid_t me = gettid_now();
        EXPECT_NE(green::call_blocking([] { return gettid_now(); }), me);
    });
    t.join();
}

// Body of the child process below: GREEN_POOL_SIZE=2 bounds the pool to
// two threads, and eight jobs all complete.
[[noreturn]] void pool_of_two_child() {
    ::setenv("GREEN_POOL_SIZE", "2", 1);
    std::atomic<int> running{0};
    std::atomic<int> max_running{0};
    green::Event saturated;
    Gate gate;
    int completed = green::run([&] {
        std::vector<green::Task<void>> callers;
        for (int i = 0; i < 8; ++i) callers.push_back(green::spawn([&] {
            green::call_blocking([&] {
                int now = ++running;
                int seen = max_running.load();
                while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
                }
                if (now == 2) saturated.set();
                gate.wait();
                --running;
            });
        }));
        saturated.wait();
        gate.open();
        for (auto& c : callers) c.join();
        return static_cast<int>(callers.size());
    });
    std::fprintf(stderr, "pool_size=%zu completed=%d max_running=%d\n", green::blocking_pool_size(), completed,
                 max_running.load());
    std::_Exit(0);
}

TEST(BlockingPoolDeathTest, PoolSizeComesFromGreenPoolSize) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    // In a child process: the configuration is read once per process.
    EXPECT_EXIT(pool_of_two_child(), testing::ExitedWithCode(0), "pool_size=2 completed=8 max_running=2");
}
