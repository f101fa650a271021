// The thread-per-connection echo server (examples/echo_threads, plain POSIX
// and std::thread) under the shim, at 10,000 concurrent connections:
//  - every byte comes back intact (each reply compared with what was sent);
//  - the server's OS threads stay at hubs + blocking pool while all
//    connections are open (/proc/PID/status);
//  - the server's std::mutex-protected totals come out exact: connections,
//    most connections open at once, bytes received;
//  - with GREEN_HUBS=1 and GREEN_HUBS=2 (connection fibers on two OS threads
//    sharing that mutex).
// RSS is reported (RecordProperty and stdout), not asserted.
#include <gtest/gtest.h>

#include <cstring>

#include "../common/echo_totals.hpp"
#include "../common/env.hpp"
#include "../common/net.hpp"
#include "../common/proc.hpp"
#include "../common/started_server.hpp"

using namespace green::test;

namespace {

constexpr int kConnections = 10000;
constexpr int kPayload = 64;

class EchoAtScale : public ::testing::TestWithParam<int> {};

// The client is this test itself, with plain blocking sockets: it opens all
// connections before any closes (so all are open at once by construction),
// then runs kRounds echo rounds over every connection, checking each reply
// byte for byte. fds: 10,000 here and 10,000 in the server, each under the
// machine's 20,000 limit.
TEST_P(EchoAtScale, TenThousandConnectionsExactTotalsFewThreads) {
    constexpr int kRounds = 3;
    const int hubs = GetParam();
    auto started = start_server({example_path("echo_threads"), "0", "--exit-after", std::to_string(kConnections)},
                                shim_env(hubs), true);
    ServerChild& server = *started;
    ASSERT_GT(server.port(), 0) << server.output();
    const pid_t pid = server.pid();

    std::vector<int> fds;
    fds.reserve(kConnections);
    for (int i = 0; i < kConnections; ++i) {
        int fd = connect_to(server.port(), 30000);
        ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
        fds.push_back(fd);
    }
    long threads_while_open = proc_status_field(pid, "Threads");
    long rss_kb_while_open = proc_status_field(pid, "VmRSS");
    int mismatches = 0;
    for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kConnections; ++i) {
            std::string payload(kPayload, static_cast<char>('a' + (i + round) % 26));
            std::snprintf(payload.data(), kPayload, "%d/%d", i, round);  // every payload distinct
            ASSERT_TRUE(send_all(fds[i], payload)) << "send on connection " << i;
        }
        for (int i = 0; i < kConnections; ++i) {
            std::string expected(kPayload, static_cast<char>('a' + (i + round) % 26));
            std::snprintf(expected.data(), kPayload, "%d/%d", i, round);
            std::string got;
            ASSERT_TRUE(recv_exact(fds[i], got, kPayload))
                << "echo on connection " << i << " round " << round << ": " << std::strerror(errno);
            if (got != expected) ++mismatches;
        }
    }
    EXPECT_EQ(mismatches, 0);
    for (int fd : fds) close(fd);

    // The server prints its totals and exits once every connection closed.
    const auto totals = wait_echo_totals(server);
    ASSERT_TRUE(totals) << server.output();
    EXPECT_EQ(totals->connections, kConnections);
    EXPECT_EQ(totals->max_open, kConnections) << "not all connections were open at once";
    EXPECT_EQ(totals->bytes, static_cast<unsigned long long>(kConnections) * kRounds * kPayload)
        << "mutex-protected total is off";
    EXPECT_EQ(server.wait_exit(), 0);
    // hubs + blocking pool (16 by default, started only on demand).
    EXPECT_GE(threads_while_open, hubs);
    EXPECT_LE(threads_while_open, hubs + 16) << "connection threads became OS threads";
    RecordProperty("os_threads", static_cast<int>(threads_while_open));
    RecordProperty("rss_kb", static_cast<int>(rss_kb_while_open));
    std::printf("GREEN_HUBS=%d: %d connections open, OS threads %ld, RSS %ld KiB (%.1f KiB per connection)\n", hubs,
                kConnections, threads_while_open, rss_kb_while_open,
                static_cast<double>(rss_kb_while_open) / kConnections);
}

INSTANTIATE_TEST_SUITE_P(Hubs, EchoAtScale, ::testing::Values(1, 2),
                         [](const auto& info) { return "hubs" + std::to_string(info.param); });

}  // namespace
