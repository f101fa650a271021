// Channel<T>: bounded and unbounded FIFOs, close semantics, timeouts.
#include "test_util.hpp"

#include <latch>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

using namespace green_test;

TEST(Channel, DeliversInFifoOrder) {
    in_green([] {
        green::Channel<int> ch(4);
        auto producer = green::spawn([&] {
            for (int i = 0; i < 100; ++i) ch.send(i);
            ch.close();
        });
        std::vector<int> got;
        while (auto v = ch.recv()) got.push_back(*v);
        producer.join();
        std::vector<int> expected(100);
        std::iota(expected.begin(), expected.end(), 0);
        EXPECT_EQ(got, expected);
    });
}

TEST(Channel, BoundedChannelBlocksSendersWhenFull) {
    in_green([] {
        green::Channel<int> ch(2);
        int sent = 0;
        auto producer = green::spawn([&] {
            for (int i = 0; i < 5; ++i) {
                ch.send(i);
                ++sent;
            }
        });
        let_runnable_fibers_run();
        EXPECT_EQ(sent, 2) << "a sender must block once the channel holds `capacity` items";
        EXPECT_EQ(ch.size(), 2u);
        EXPECT_FALSE(ch.try_send(99));
        EXPECT_EQ(ch.recv(), 0);
        let_runnable_fibers_run();
        EXPECT_EQ(sent, 3);
        EXPECT_EQ(ch.size(), 2u);
        EXPECT_EQ(ch.recv(), 1);
        EXPECT_EQ(ch.recv(), 2);
        EXPECT_EQ(ch.recv(), 3);
        EXPECT_EQ(ch.recv(), 4);
        producer.join();
        EXPECT_EQ(sent, 5);
    });
}

TEST(Channel, CapacityZeroMeansOne) {
    in_green([] {
        green::Channel<int> ch(0);
        EXPECT_TRUE(ch.try_send(1));
        EXPECT_FALSE(ch.try_send(2));
        EXPECT_EQ(ch.try_recv(), 1);
        EXPECT_EQ(ch.try_recv(), std::nullopt);
    });
}

TEST(Channel, UnboundedChannelNeverBlocksSenders) {
    in_green([] {
        green::Channel<std::string> ch;  // unbounded by default
        // One fiber alone: if send ever blocked, nothing could wake it and
        // green::run would throw green::Deadlock.
        for (int i = 0; i < 10000; ++i) ch.send(std::to_string(i));
        EXPECT_TRUE(ch.try_send("last"));
        EXPECT_EQ(ch.size(), 10001u);
        EXPECT_EQ(ch.recv(), "0");
    });
}

TEST(Channel, MoveOnlyValues) {
    in_green([] {
        green::Channel<std::unique_ptr<int>> ch(1);
        auto producer = green::spawn([&] {
            for (int i = 0; i < 10; ++i) ch.send(std::make_unique<int>(i));
            ch.close();
        });
        int sum = 0;
        while (auto p = ch.recv()) sum += **p;
        producer.join();
        EXPECT_EQ(sum, 45);
    });
}

TEST(Channel, CloseWakesBlockedReceivers) {
    in_green([] {
        green::Channel<int> ch(4);
        int got_nullopt = 0;
        std::vector<green::Task<void>> receivers;
        for (int i = 0; i < 3; ++i) receivers.push_back(green::spawn([&] {
            if (!ch.recv()) ++got_nullopt;
        }));
        let_runnable_fibers_run();
        EXPECT_EQ(got_nullopt, 0);
        ch.close();
        for (auto& r : receivers) r.join();
        EXPECT_EQ(got_nullopt, 3);
        EXPECT_TRUE(ch.closed());
    });
}

TEST(Channel, CloseWakesBlockedSendersWithChannelClosed) {
    in_green([] {
        green::Channel<int> ch(1);
        ch.send(0);
        int threw = 0;
        std::vector<green::Task<void>> senders;
        for (int i = 0; i < 3; ++i) senders.push_back(green::spawn([&, i] {
            try {
                ch.send(i + 1);
            } catch (const green::ChannelClosed&) {
                ++threw;
            }
        }));
        let_runnable_fibers_run();
        EXPECT_EQ(threw, 0);
        ch.close();
        for (auto& s : senders) s.join();
        EXPECT_EQ(threw, 3);
        EXPECT_THROW(ch.send(9), green::ChannelClosed);
        EXPECT_FALSE(ch.try_send(9));
        // What was buffered before close is still delivered.
        EXPECT_EQ(ch.recv(), 0);
        EXPECT_EQ(ch.recv(), std::nullopt);
    });
}

TEST(Channel, ReceiversDrainBufferedItemsAfterClose) {
    in_green([] {
        green::Channel<int> ch;
        for (int i = 0; i < 5; ++i) ch.send(i);
        ch.close();
        std::vector<int> got;
        while (auto v = ch.recv()) got.push_back(*v);
        EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
        EXPECT_EQ(ch.recv(), std::nullopt);
        EXPECT_EQ(ch.try_recv(), std::nullopt);
        EXPECT_EQ(ch.recv_for(10s), std::nullopt);  // closed: returns at once
    });
}

TEST(Channel, RecvForTimesOut) {
    in_green([] {
        green::Channel<int> ch(1);
        auto start = Clock::now();
        EXPECT_EQ(ch.recv_for(20ms), std::nullopt);
        EXPECT_GE(ms_since(start), 20.0);
        EXPECT_FALSE(ch.closed());
        auto sender = green::spawn([&] { ch.send(7); });
        EXPECT_EQ(ch.recv_for(10s), 7);
        sender.join();
        EXPECT_EQ(ch.recv_until(Clock::now() - 1s), std::nullopt);
    });
}

TEST(Channel, ManyProducersManyConsumers) {
    in_green([] {
        constexpr int kProducers = 8, kConsumers = 5, kPerProducer = 500;
        green::Channel<int> ch(3);
        green::WaitGroup producers;
        long total = 0;
        int received = 0;
        producers.add(kProducers);
        for (int p = 0; p < kProducers; ++p) green::spawn([&, p] {
            for (int i = 0; i < kPerProducer; ++i) ch.send(p * kPerProducer + i);
            producers.done();
        }).detach();
        std::vector<green::Task<void>> consumers;
        for (int c = 0; c < kConsumers; ++c) consumers.push_back(green::spawn([&] {
            while (auto v = ch.recv()) {
                total += *v;
                ++received;
            }
        }));
        producers.wait();
        ch.close();
        for (auto& c : consumers) c.join();
        constexpr int n = kProducers * kPerProducer;
        EXPECT_EQ(received, n);
        EXPECT_EQ(total, static_cast<long>(n) * (n - 1) / 2);
    });
}

TEST(Channel, PlainThreadSendsToAFiber) {
    // A plain thread blocks on a full channel through its own lazily created
    // hub; the receiving fiber resumes on its own thread.
    in_green([] {
        green::Channel<int> ch(2);
        pid_t me = gettid_now();
        // The thread takes its hub before this fiber first parks: until then
        // nothing registered could wake us, and the deadlock detector would
        // rightly fire (green::ExternalWaker is the other way out).
        std::latch has_hub(1);
        std::thread sender([&] {
            (void)green::this_fiber::id();
            has_hub.count_down();
            for (int i = 1; i <= 200; ++i) ch.send(i);
            ch.close();
        });
        has_hub.wait();
        long sum = 0;
        while (auto v = ch.recv()) {
            sum += *v;
            EXPECT_EQ(gettid_now(), me);
        }
        sender.join();
        EXPECT_EQ(sum, 200 * 201 / 2);
    });
}
