// Many short connections to the thread-per-connection echo server under the
// shim: every connection is a thread (a fiber) that ends when the client
// closes. Memory must follow the live connections, not their running total:
// the server's RSS and mapping count after all connections stay within 1.2x
// of what they were after the first tenth (at most 10,000), with 1 and 2 hubs (with 2, a
// connection's fiber is created on one hub and ends on the other, so its stack
// must still return to the pool it came from).
//
// GREEN_CHURN_CONNECTIONS overrides the count (bench/bench_churn.sh runs
// 200,000); the suite's count keeps it to seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>

#include "../common/env.hpp"
#include "../common/net.hpp"
#include "../common/proc.hpp"
#include "../common/server_child.hpp"

using namespace green::test;

namespace {

long rss_kib(pid_t pid) { return proc_status_field(pid, "VmRSS"); }
long mappings(pid_t pid) { return proc_map_count(pid); }

// One short connection: connect, one echo round trip, close.
void one_connection(int port, int i) {
    int fd = green::test::connect_to(port, 30000);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    std::string payload = "churn " + std::to_string(i) + "\n";
    ASSERT_TRUE(green::test::send_all(fd, payload));
    std::string got(payload.size(), '\0');
    std::size_t have = 0;
    while (have < got.size()) {
        ssize_t n = recv(fd, got.data() + have, got.size() - have, 0);
        ASSERT_GT(n, 0) << "echo on connection " << i;
        have += static_cast<std::size_t>(n);
    }
    ASSERT_EQ(got, payload);
    close(fd);
}

class EchoChurn : public ::testing::TestWithParam<int> {};

TEST_P(EchoChurn, MemoryFollowsLiveConnectionsNotTheirTotal) {
    const int hubs = GetParam();
    const char* count_env = std::getenv("GREEN_CHURN_CONNECTIONS");
    const int total = count_env ? std::atoi(count_env) : 20000;
    const int first = std::min(10000, total / 10);
    ServerChild server({example_path("echo_threads"), "0", "--exit-after", std::to_string(total + 1)}, shim_env(hubs));
    ASSERT_GT(server.port(), 0) << server.output();
    const pid_t pid = server.pid();
    for (int i = 0; i < first; ++i) ASSERT_NO_FATAL_FAILURE(one_connection(server.port(), i));
    const long rss1 = rss_kib(pid), maps1 = mappings(pid);
    for (int i = first; i < total; ++i) ASSERT_NO_FATAL_FAILURE(one_connection(server.port(), i));
    const long rss2 = rss_kib(pid), maps2 = mappings(pid);
    ASSERT_GT(rss1, 0);
    ASSERT_GT(rss2, 0) << "the server ended early: " << server.output();
    std::printf("GREEN_HUBS=%d: after %d connections RSS %ld KiB, %ld mappings; after %d: RSS %ld KiB, %ld mappings "
                "(x%.2f, x%.2f)\n",
                hubs, first, rss1, maps1, total, rss2, maps2, static_cast<double>(rss2) / rss1,
                static_cast<double>(maps2) / maps1);
    EXPECT_LE(rss2, rss1 * 12 / 10) << "RSS grows with the number of connections served";
    EXPECT_LE(maps2, maps1 * 12 / 10) << "mappings grow with the number of connections served";
    one_connection(server.port(), total);  // the last one: the server prints its totals and exits
    ASSERT_TRUE(server.wait_for_output("bytes ", std::chrono::seconds(60))) << server.output();
    EXPECT_EQ(server.wait_exit(), 0);
}

INSTANTIATE_TEST_SUITE_P(Hubs, EchoChurn, ::testing::Values(1, 2),
                         [](const auto& info) { return "hubs" + std::to_string(info.param); });

}  // namespace
