// Many short connections must cost nothing once they are gone: after a
// warm-up (pools, caches and arenas filled), thousands more connections to
// echo_threads leave the server's fd count exactly where it was and its
// mappings and RSS within a small slack. A per-connection leak of a stack,
// an fd or a record (about 4,000 of them here) is far outside that slack.
//
// Each connection closes in order: the client shuts down its side, the
// server reads EOF and closes, and the client sees the server's FIN; so when
// a batch is done every server-side fd of it is already closed (no sleeping
// until things settle). GREEN_SOAK_SECONDS runs it for that long instead,
// printing the figures (bench/soak.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "fault_util.hpp"

using namespace green::test;

namespace {

constexpr int kConcurrent = 32;  // connections open at once in a batch
constexpr int kWarmup = 512;
constexpr int kConnections = 4096;
// Unpatched, a thread may still be exiting (holding its stack's two
// mappings) after it closed its connection; malloc may add an arena.
constexpr long kMapSlack = 4 * kConcurrent;
constexpr long kRssSlackKb = 8 * 1024;  // a leaked 4 KiB per connection would be 16 MiB

class ShortConnections : public ::testing::TestWithParam<Mode> {};

// `count` connections, kConcurrent at a time, each echoing one message and
// closing in order. The number that went wrong.
int run_connections(int port, int count) {
    int failures = 0;
    for (int done = 0; done < count; done += kConcurrent) {
        int fds[kConcurrent];
        const int n = std::min(kConcurrent, count - done);
        for (int i = 0; i < n; ++i) {
            fds[i] = connect_to(port);
            const std::string msg = "short " + std::to_string(done + i);
            if (fds[i] < 0 || !send_all(fds[i], msg)) ++failures;
        }
        for (int i = 0; i < n; ++i) {
            if (fds[i] < 0) continue;
            const std::string msg = "short " + std::to_string(done + i);
            std::string got;
            if (!recv_exact(fds[i], got, msg.size()) || got != msg) ++failures;
            shutdown(fds[i], SHUT_WR);
            if (!wait_peer_close(fds[i])) ++failures;
            close(fds[i]);
        }
    }
    return failures;
}

TEST_P(ShortConnections, ThousandsOfConnectionsLeaveNoFdsMappingsOrMemoryBehind) {
    auto server = start_server(GetParam(), {example_path("echo_threads"), "0"});
    ASSERT_GT(server->port(), 0);
    const int port = server->port();
    const pid_t pid = server->pid();

    ASSERT_EQ(run_connections(port, kWarmup), 0);
    const ProcFigures base = proc_figures(pid);

    long connections = 0;
    int failures = 0;
    const int seconds = soak_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const auto until = t0 + std::chrono::seconds(seconds);
    do {
        failures += run_connections(port, kConnections);
        connections += kConnections;
    } while (seconds > 0 && std::chrono::steady_clock::now() < until);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ProcFigures end = proc_figures(pid);

    std::printf("short connections %s: %ld after %d warm-up in %.2f s (%.0f/s); fds %ld -> %ld, maps %ld -> %ld, "
                "RSS %ld -> %ld KiB, OS threads %ld -> %ld\n",
                GetParam().name, connections, kWarmup, elapsed, static_cast<double>(connections) / elapsed, base.fds,
                end.fds, base.maps, end.maps, base.rss_kb, end.rss_kb, base.threads, end.threads);
    RecordProperty("connections", static_cast<int>(connections));
    RecordProperty("rss_growth_kb", static_cast<int>(end.rss_kb - base.rss_kb));
    RecordProperty("map_growth", static_cast<int>(end.maps - base.maps));

    EXPECT_EQ(failures, 0);
    EXPECT_EQ(end.fds, base.fds) << "fds leaked";
    EXPECT_LE(end.maps, base.maps + kMapSlack) << "mappings grew with connections (stacks not reused?)";
    EXPECT_LE(end.rss_kb, base.rss_kb + kRssSlackKb) << "RSS grew with connections";
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "server exited:\n" << server->output();
}

INSTANTIATE_TEST_SUITE_P(Fault, ShortConnections, ::testing::ValuesIn(kModes), mode_name);

}  // namespace
