// The thread-per-connection echo server (examples/echo_threads, plain POSIX
// and std::thread) under the shim, at 10,000 concurrent connections:
//  - every byte comes back intact (greenbench's echo mode checks a checksum
//    per request and counts mismatches as errors);
//  - the server's OS threads stay at hubs + blocking pool, sampled from
//    /proc/PID/status while the load runs;
//  - the server's std::mutex-protected totals come out exact: connections,
//    most connections open at once, bytes received;
//  - with GREEN_HUBS=1 and GREEN_HUBS=2 (connection fibers on two OS threads
//    sharing that mutex).
// RSS is reported (RecordProperty and stdout), not asserted.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "server_child.hpp"

using green::test::ServerChild;

namespace {

constexpr int kConnections = 10000;
constexpr int kRequests = 30000;
constexpr int kPayload = 64;

std::string env_path(const char* name) {
    const char* v = std::getenv(name);
    if (!v) {
        ADD_FAILURE() << name << " is not set (run through meson test)";
        return "/nonexistent";
    }
    return v;
}

long status_field(pid_t pid, const std::string& field) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
    return -1;
}

// Runs a command to completion and returns its stdout.
std::string run_stdout(const std::vector<std::string>& argv, int* status) {
    int out[2];
    if (pipe(out) != 0) return {};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    close(out[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return text;
}

long json_number(const std::string& json, const std::string& key) {
    std::smatch m;
    if (!std::regex_search(json, m, std::regex("\"" + key + "\": ([0-9.]+)"))) return -1;
    return std::atol(m[1].str().c_str());
}

class EchoAtScale : public ::testing::TestWithParam<int> {};

TEST_P(EchoAtScale, TenThousandConnectionsExactTotalsFewThreads) {
    const int hubs = GetParam();
    const std::string examples = env_path("GREEN_EXAMPLES_DIR");
    ServerChild server({examples + "/echo_threads", "0", "--exit-after", std::to_string(kConnections)},
                       {"LD_PRELOAD=" + env_path("GREEN_PRELOAD"), "GREEN_HUBS=" + std::to_string(hubs)});
    ASSERT_GT(server.port(), 0) << server.output();
    const pid_t pid = server.pid();

    // Sample threads and memory while the load runs.
    std::atomic<bool> done{false};
    std::atomic<long> max_threads{0}, max_rss_kb{0};
    std::thread sampler([&] {
        while (!done.load()) {
            long t = status_field(pid, "Threads"), r = status_field(pid, "VmRSS");
            if (t > max_threads) max_threads = t;
            if (r > max_rss_kb) max_rss_kb = r;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // sampling period, not synchronisation
        }
    });
    int status = -1;
    std::string json = run_stdout({env_path("GREEN_GREENBENCH"), "run", "--mode", "echo", "-c",
                                   std::to_string(kConnections), "-n", std::to_string(kRequests), "--payload",
                                   std::to_string(kPayload), "--timeout", "30", "-q", "--json", "-",
                                   "127.0.0.1:" + std::to_string(server.port())},
                                  &status);
    // The server prints its totals and exits once every connection closed.
    bool totals_printed = server.wait_for_output("bytes ", std::chrono::seconds(30));
    done = true;
    sampler.join();

    EXPECT_EQ(status, 0) << json;
    EXPECT_EQ(json_number(json, "ok"), kRequests) << json;
    EXPECT_EQ(json_number(json, "error_total"), 0) << json;
    ASSERT_TRUE(totals_printed) << server.output();
    std::smatch m;
    const std::string out = server.output();
    ASSERT_TRUE(std::regex_search(out, m, std::regex("connections ([0-9]+) max_open ([0-9]+) bytes ([0-9]+)"))) << out;
    EXPECT_EQ(std::stol(m[1]), kConnections);
    EXPECT_EQ(std::stol(m[2]), kConnections) << "not all connections were open at once";
    EXPECT_EQ(std::stoull(m[3]), static_cast<unsigned long long>(kRequests) * kPayload) << "mutex-protected total is off";
    EXPECT_EQ(server.wait_exit(), 0);
    // hubs + blocking pool (16 by default, started only on demand).
    EXPECT_GE(max_threads.load(), hubs);
    EXPECT_LE(max_threads.load(), hubs + 16) << "connection threads became OS threads";
    RecordProperty("max_os_threads", static_cast<int>(max_threads.load()));
    RecordProperty("max_rss_kb", static_cast<int>(max_rss_kb.load()));
    std::printf("GREEN_HUBS=%d: %d connections, max OS threads %ld, max RSS %ld KiB (%.1f KiB per connection)\n", hubs,
                kConnections, max_threads.load(), max_rss_kb.load(),
                static_cast<double>(max_rss_kb.load()) / kConnections);
}

INSTANTIATE_TEST_SUITE_P(Hubs, EchoAtScale, ::testing::Values(1, 2),
                         [](const auto& info) { return "hubs" + std::to_string(info.param); });

}  // namespace
