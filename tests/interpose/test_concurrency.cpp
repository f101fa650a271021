// A program that links the runtime and the interpose library directly (the
// "linking as a library" use) and makes plain blocking POSIX calls from 1,000
// fibers at once. Overlap is proven with counters, not wall-clock: after one
// scheduler tick every fiber has entered its blocking call and none has left
// it, which is only possible if each call suspended just its own fiber.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <green/green.hpp>

#include "../common/token_pool.hpp"

#include <fcntl.h>

#include <array>
#include <cstdio>
#include <atomic>
#include <vector>

namespace {

constexpr int kFibers = 1000;

enum class Call { Read, Recv, Poll, Nanosleep, Connect, Accept };

struct Sockets {
    std::vector<std::array<int, 2>> pairs;
    explicit Sockets(int n) : pairs(static_cast<size_t>(n)) {
        for (auto& p : pairs) EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p.data()), 0);
    }
    ~Sockets() {
        for (auto& p : pairs) {
            close(p[0]);
            close(p[1]);
        }
    }
};

int loopback_listener(int backlog, sockaddr_in* addr) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(s, backlog), 0);
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    *addr = a;
    return s;
}

std::string call_name(Call c) {
    static const char* const names[] = {"read", "recv", "poll", "nanosleep", "connect", "accept"};
    return names[static_cast<int>(c)];
}

class ThousandFibers : public ::testing::TestWithParam<Call> {};

TEST_P(ThousandFibers, BlockingCallsOverlap) {
    const Call call = GetParam();
    Sockets socks(call == Call::Connect || call == Call::Accept ? 0 : kFibers);
    sockaddr_in addr{};
    int listener = (call == Call::Connect || call == Call::Accept) ? loopback_listener(kFibers, &addr) : -1;
    std::atomic<int> entered{0}, finished{0}, ok{0};
    std::vector<green::Task<void>> tasks;
    std::vector<int> client_fds(kFibers, -1);
    for (int i = 0; i < kFibers; ++i) {
        tasks.push_back(green::spawn([&, i] {
            ++entered;
            char c = 0;
            bool good = false;
            switch (call) {
                case Call::Read: good = read(socks.pairs[i][0], &c, 1) == 1 && c == 'r'; break;
                case Call::Recv: good = recv(socks.pairs[i][0], &c, 1, 0) == 1 && c == 'r'; break;
                case Call::Poll: {
                    pollfd p{socks.pairs[i][0], POLLIN, 0};
                    good = poll(&p, 1, -1) == 1 && (p.revents & POLLIN);
                    break;
                }
                case Call::Nanosleep: {
                    timespec ts{0, 50 * 1000 * 1000};
                    good = nanosleep(&ts, nullptr) == 0;
                    break;
                }
                case Call::Connect: {
                    // connect completes from the backlog; the read then
                    // blocks until the acceptor (started later) answers.
                    int fd = socket(AF_INET, SOCK_STREAM, 0);
                    client_fds[i] = fd;
                    good = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && read(fd, &c, 1) == 1;
                    break;
                }
                case Call::Accept: {
                    int s = accept(listener, nullptr, nullptr);
                    good = s >= 0 && write(s, "a", 1) == 1;
                    if (s >= 0) close(s);
                    break;
                }
            }
            if (good) ++ok;
            ++finished;
        }));
    }
    // One yield: every fiber runs until its call blocks, then we run again.
    green::this_fiber::yield();
    EXPECT_EQ(entered.load(), kFibers);
    EXPECT_EQ(finished.load(), 0) << "a blocking call returned before anything could satisfy it";

    switch (call) {
        case Call::Read:
        case Call::Recv:
        case Call::Poll:
            for (auto& p : socks.pairs) ASSERT_EQ(write(p[1], "r", 1), 1);
            break;
        case Call::Nanosleep: break;
        case Call::Connect:
            tasks.push_back(green::spawn([&] {
                for (int i = 0; i < kFibers; ++i) {
                    int s = accept(listener, nullptr, nullptr);
                    ASSERT_GE(s, 0);
                    ASSERT_EQ(write(s, "c", 1), 1);
                    close(s);
                }
            }));
            break;
        case Call::Accept:
            for (int i = 0; i < kFibers; ++i) {
                int fd = socket(AF_INET, SOCK_STREAM, 0);
                ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
                client_fds[i] = fd;
            }
            break;
    }
    for (auto& t : tasks) t.join();
    EXPECT_EQ(finished.load(), kFibers);
    EXPECT_EQ(ok.load(), kFibers);
    for (int fd : client_fds)
        if (fd >= 0) close(fd);
    if (listener >= 0) close(listener);
}

INSTANTIATE_TEST_SUITE_P(Calls, ThousandFibers,
                         ::testing::Values(Call::Read, Call::Recv, Call::Poll, Call::Nanosleep, Call::Connect,
                                           Call::Accept),
                         [](const auto& info) { return call_name(info.param); });

TEST(CloseWhileWaiting, WaiterGetsEbadfAndNumberReuseIsClean) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int err = 0;
    auto reader = green::spawn([&] {
        char c;
        ssize_t r = read(sv[0], &c, 1);
        err = errno;
        return r;
    });
    green::this_fiber::yield();  // the reader is now blocked in read()
    ASSERT_FALSE(reader.done());
    const int number = sv[0];
    ASSERT_EQ(close(sv[0]), 0);
    EXPECT_EQ(reader.join(), -1);
    EXPECT_EQ(err, EBADF);
    // The number is reused by the next socket; a wait on it must see only
    // the new socket's readiness.
    int again[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, again), 0);
    ASSERT_EQ(again[0], number);
    auto reader2 = green::spawn([&] {
        char c = 0;
        return read(again[0], &c, 1) == 1 ? c : '?';
    });
    green::this_fiber::yield();
    ASSERT_FALSE(reader2.done());
    ASSERT_EQ(write(again[1], "n", 1), 1);
    EXPECT_EQ(reader2.join(), 'n');
    close(again[0]);
    close(again[1]);
    close(sv[1]);
}

// The kernel's flags, as /proc/self/fdinfo shows them (octal "flags:" line).
int kernel_flags(int fd) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE* f = std::fopen(path, "r");
    if (!f) return -1;
    char line[128];
    int flags = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "flags: %o", &flags) == 1) break;
    std::fclose(f);
    return flags;
}

// The shim never changes the kernel's flags: a child or another process
// sharing the description sees exactly what the program set, also while and
// after a fiber waited on the fd.
TEST(FdFlags, KernelFlagsAreTheProgramsOwn) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    for (int fd : {sv[0], p[0], p[1]}) {
        EXPECT_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        EXPECT_EQ(kernel_flags(fd) & O_NONBLOCK, 0);
    }
    // A reader that has to wait, on each kind.
    green::Task<void> readers[2] = {
        green::spawn([&] {
            char c;
            EXPECT_EQ(read(sv[0], &c, 1), 1);
        }),
        green::spawn([&] {
            char c;
            EXPECT_EQ(read(p[0], &c, 1), 1);
        }),
    };
    green::this_fiber::yield();
    EXPECT_EQ(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    EXPECT_EQ(kernel_flags(p[0]) & O_NONBLOCK, 0);
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    ASSERT_EQ(write(p[1], "x", 1), 1);
    readers[0].join();
    readers[1].join();
    EXPECT_EQ(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    EXPECT_EQ(kernel_flags(p[0]) & O_NONBLOCK, 0);
    ASSERT_EQ(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    EXPECT_NE(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    char c;
    EXPECT_EQ(read(sv[0], &c, 1), -1);  // the program's own O_NONBLOCK: EAGAIN, no wait
    EXPECT_EQ(errno, EAGAIN);
    ASSERT_EQ(fcntl(sv[0], F_SETFL, 0), 0);
    EXPECT_EQ(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    for (int fd : {sv[0], sv[1], p[0], p[1]}) close(fd);
}

// The shim's condition variables, through std::condition_variable and
// std::mutex (tests/common/token_pool.hpp says which orders and why).
using StdTokenPool = green_test::TokenPool<std::mutex, std::condition_variable>;

TEST(ConditionWait, WaiterThatFindsItsWakeTakenKeepsItsPlace) {
    green_test::expect_waiter_that_finds_its_wake_taken_keeps_its_place<StdTokenPool>();
}

TEST(ConditionWait, NewWaitAfterReleasingTheMutexQueuesLast) {
    green_test::expect_new_wait_after_releasing_the_mutex_queues_last<StdTokenPool>();
}

}  // namespace
