// Many short connections must cost nothing once they are gone. After a
// warm-up (the first tenth of them, at most 10,000: pools, caches and arenas
// filled), the rest of 20,000 connections to echo_threads leave the server's
// fd count exactly where it was, and its mappings and RSS where they were:
// within 1.2x under the shim (a connection's fiber stack goes back to the
// pool it came from, on 2 hubs also when the fiber was created on one hub
// and ended on the other), within a small slack unpatched. A per-connection
// leak of a stack, an fd or a record is far outside either. Then one more
// connection makes the server print its totals and exit: it counted every
// connection and every byte.
//
// Each connection closes in order: the client shuts down its side, the
// server reads EOF and closes, and the client sees the server's FIN; so when
// a batch is done every server-side fd of it is already closed (no sleeping
// until things settle).
//
// GREEN_CHURN_CONNECTIONS sets the count (bench/bench_churn.sh). With
// GREEN_SOAK_SECONDS the batches go on for that long instead (bench/soak.sh)
// and, the count being unknown in advance, the server is checked to be
// still running rather than for its totals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "../common/echo_totals.hpp"
#include "fault_util.hpp"

using namespace green::test;

namespace {

constexpr int kConcurrent = 32;  // connections open at once in a batch
// Unpatched, a thread may still be exiting (holding its stack's two
// mappings) after it closed its connection; malloc may add an arena.
constexpr long kUnpatchedMapSlack = 4 * kConcurrent;
constexpr long kUnpatchedRssSlackKb = 8 * 1024;  // a leaked 4 KiB per connection would be 72 MiB

class ShortConnections : public ::testing::TestWithParam<Mode> {};

struct Batches {
    long connections = 0;
    int failures = 0;
    unsigned long long bytes = 0;  // echoed, as the server counts them
};

// `count` connections, kConcurrent at a time, each echoing one message and
// closing in order.
void run_connections(int port, int count, Batches& b) {
    for (int done = 0; done < count; done += kConcurrent) {
        int fds[kConcurrent];
        std::string msgs[kConcurrent];
        const int n = std::min(kConcurrent, count - done);
        for (int i = 0; i < n; ++i) {
            fds[i] = connect_to(port);
            msgs[i] = "short " + std::to_string(b.connections + i);
            if (fds[i] < 0 || !send_all(fds[i], msgs[i])) ++b.failures;
        }
        for (int i = 0; i < n; ++i) {
            if (fds[i] < 0) continue;
            std::string got;
            if (!recv_exact(fds[i], got, msgs[i].size()) || got != msgs[i]) ++b.failures;
            b.bytes += msgs[i].size();
            shutdown(fds[i], SHUT_WR);
            if (!wait_peer_close(fds[i])) ++b.failures;
            close(fds[i]);
        }
        b.connections += n;
    }
}

TEST_P(ShortConnections, ThousandsOfConnectionsLeaveNoFdsMappingsOrMemoryBehind) {
    const bool patched = GetParam().hubs > 0;
    const int seconds = soak_seconds();
    const char* count_env = std::getenv("GREEN_CHURN_CONNECTIONS");
    const int total = count_env ? std::atoi(count_env) : 20000;
    const int warmup = std::min(10000, total / 10);
    std::vector<std::string> argv = {example_path("echo_threads"), "0"};
    if (seconds == 0) argv.insert(argv.end(), {"--exit-after", std::to_string(total + 1)});
    auto server = start_server(GetParam(), argv);
    ASSERT_GT(server->port(), 0);
    const int port = server->port();
    const pid_t pid = server->pid();

    Batches b;
    run_connections(port, warmup, b);
    ASSERT_EQ(b.failures, 0);
    const ProcFigures base = proc_figures(pid);

    const auto t0 = std::chrono::steady_clock::now();
    const auto until = t0 + std::chrono::seconds(seconds);
    do {
        run_connections(port, seconds > 0 ? 4096 : total - warmup, b);
    } while (seconds > 0 && std::chrono::steady_clock::now() < until);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ProcFigures end = proc_figures(pid);
    const long after_warmup = b.connections - warmup;

    std::printf("short connections %s: %ld after %d warm-up in %.2f s (%.0f/s); fds %ld -> %ld, maps %ld -> %ld, "
                "RSS %ld -> %ld KiB, OS threads %ld -> %ld (RSS x%.2f, maps x%.2f)\n",
                GetParam().name, after_warmup, warmup, elapsed, static_cast<double>(after_warmup) / elapsed, base.fds,
                end.fds, base.maps, end.maps, base.rss_kb, end.rss_kb, base.threads, end.threads,
                static_cast<double>(end.rss_kb) / base.rss_kb, static_cast<double>(end.maps) / base.maps);
    RecordProperty("connections", static_cast<int>(b.connections));
    RecordProperty("rss_growth_kb", static_cast<int>(end.rss_kb - base.rss_kb));
    RecordProperty("map_growth", static_cast<int>(end.maps - base.maps));

    EXPECT_EQ(b.failures, 0);
    ASSERT_GT(end.rss_kb, 0) << "the server ended early:\n" << server->output();
    EXPECT_EQ(end.fds, base.fds) << "fds leaked";
    if (patched) {
        EXPECT_LE(end.maps, base.maps * 12 / 10) << "mappings grow with the connections served (stacks not reused?)";
        EXPECT_LE(end.rss_kb, base.rss_kb * 12 / 10) << "RSS grows with the connections served";
    } else {
        EXPECT_LE(end.maps, base.maps + kUnpatchedMapSlack) << "mappings grew with connections";
        EXPECT_LE(end.rss_kb, base.rss_kb + kUnpatchedRssSlackKb) << "RSS grew with connections";
    }

    if (seconds > 0) {
        EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "server exited:\n" << server->output();
        return;
    }
    run_connections(port, 1, b);  // the last one: the server prints its totals and exits
    EXPECT_EQ(b.failures, 0);
    const auto totals = wait_echo_totals(*server);
    ASSERT_TRUE(totals) << server->output();
    EXPECT_EQ(totals->connections, total + 1);
    EXPECT_EQ(totals->bytes, b.bytes);
    EXPECT_EQ(server->wait_exit(), 0);
}

INSTANTIATE_TEST_SUITE_P(Fault, ShortConnections, ::testing::ValuesIn(kModes), mode_name);

}  // namespace
