// The on-demand fiber dump of an unmodified server under the shim
// (examples/echo_threads, a thread per connection): with 1,000 connections
// parked in read(), `greenrun --dump PID` makes the server list every one of
// them with its wait and stack, and the server goes on echoing on all of
// them afterwards. greenrun refuses to signal a process that does not run
// green or that turned dumps off, and that process is left alone.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "../common/child.hpp"
#include "../common/env.hpp"
#include "../common/net.hpp"
#include "../common/started_server.hpp"

using namespace green::test;

namespace {

constexpr int kConnections = 1000;

// Runs `greenrun --dump PID`; its exit status, and what it said in `out`.
int greenrun_dump(pid_t pid, std::string& out) {
    auto c = run_capture({env_or_die("GREEN_GREENRUN"), "--dump", std::to_string(pid)});
    out += c.out + c.err;
    return c.status;
}

// One byte out and back on every connection: afterwards each server fiber
// is parked in read() again.
void echo_on_all(const std::vector<int>& fds, char c) {
    for (int fd : fds) ASSERT_TRUE(send_all(fd, std::string(1, c)));
    for (int fd : fds) {
        char got = 0;
        ASSERT_EQ(recv(fd, &got, 1, 0), 1) << std::strerror(errno);
        ASSERT_EQ(got, c);
    }
}

std::size_t count(const std::string& text, const std::regex& re) {
    return static_cast<std::size_t>(std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

struct Case {
    int hubs;
    const char* dump_signal;  // GREEN_DUMP_SIGNAL, or null for the default
};

class DumpOfAServer : public ::testing::TestWithParam<Case> {};

TEST_P(DumpOfAServer, ListsEveryParkedConnectionAndKeepsServing) {
    const Case c = GetParam();
    std::vector<std::string> env = shim_env(c.hubs);
    if (c.dump_signal) env.push_back(std::string("GREEN_DUMP_SIGNAL=") + c.dump_signal);
    auto started = start_server({example_path("echo_threads"), "0"}, env, true);
    ServerChild& server = *started;
    ASSERT_GT(server.port(), 0) << server.output();
    std::vector<int> fds;
    for (int i = 0; i < kConnections; ++i) {
        int fd = connect_to(server.port(), 30000);
        ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
        fds.push_back(fd);
    }
    echo_on_all(fds, 'a');

    std::string said;
    ASSERT_EQ(greenrun_dump(server.pid(), said), 0) << said;
    // The whole last line ("green: end of dump (N fiber(s))"): the pipe may
    // deliver it in pieces, and only this line ends in "fiber(s))".
    ASSERT_TRUE(server.wait_for_output("fiber(s))\n", std::chrono::seconds(60))) << server.output();
    const std::string dump = server.output().substr(server.output().find("green: dump of pid"));

    // Every connection's fiber and main's accept, each parked on its fd,
    // which has nothing to read (the kernel says so) and is watched.
    const std::size_t fibers = kConnections + 1;
    EXPECT_EQ(count(dump, std::regex("\n    fiber [0-9]+ \"[^\"]*\" parked for [0-9]+ ms: waits for fd [0-9]+ to become "
                                     "readable \\(kernel: not ready; hub watcher: armed\\)\n")),
              fibers);
    // The total counts every fiber listed; signal delivery may add a
    // short-lived stand-in fiber (the dump signal itself reaches the program's
    // signal layer), so the total is checked against the listing, not fixed.
    std::smatch end;
    ASSERT_TRUE(std::regex_search(dump, end, std::regex("green: end of dump \\(([0-9]+) fiber\\(s\\)\\)"))) << dump.substr(0, 4000);
    const std::size_t total = std::stoul(end[1].str());
    EXPECT_EQ(total, count(dump, std::regex("\n    fiber [0-9]+ \"")));
    EXPECT_GE(total, fibers);
    EXPECT_LE(total, fibers + 2);
    // Stacks: the server's own function, where it reads, by name and line;
    // the other 999 connections share that stack and say so.
    EXPECT_TRUE(std::regex_search(dump, std::regex("#[0-9]+ [^\n]*serve\\(int\\) \\([^\n]*echo_threads\\.cpp:[0-9]+\\)")))
        << dump.substr(0, 4000);
    EXPECT_GE(count(dump, std::regex("\n      same stack as fiber [0-9]+\n")), static_cast<std::size_t>(kConnections - 1));
    EXPECT_TRUE(std::regex_search(dump, std::regex("#[0-9]+ [^\n]*main \\([^\n]*echo_threads\\.cpp:[0-9]+\\)")));

    // Still serving: every old connection, and a new one.
    echo_on_all(fds, 'b');
    int late = connect_to(server.port(), 30000);
    ASSERT_GE(late, 0);
    fds.push_back(late);
    echo_on_all({late}, 'c');
    for (int fd : fds) close(fd);
}

INSTANTIATE_TEST_SUITE_P(Signals, DumpOfAServer,
                         ::testing::Values(Case{1, nullptr}, Case{2, "USR2"}),
                         [](const auto& info) {
                             return "hubs" + std::to_string(info.param.hubs) + "_" +
                                    (info.param.dump_signal ? info.param.dump_signal : "default");
                         });

TEST(GreenrunDump, RefusesWhenDumpsAreOffAndLeavesTheProcessAlone) {
    auto started = start_server({example_path("echo_threads"), "0"}, {preload_env(), "GREEN_DUMP_SIGNAL=0"}, true);
    ServerChild& server = *started;
    ASSERT_GT(server.port(), 0) << server.output();
    std::string said;
    EXPECT_EQ(greenrun_dump(server.pid(), said), 1);
    EXPECT_NE(said.find("GREEN_DUMP_SIGNAL off; nothing sent"), std::string::npos) << said;
    int fd = connect_to(server.port(), 30000);
    ASSERT_GE(fd, 0);
    echo_on_all({fd}, 'x');
    close(fd);
    EXPECT_EQ(server.output().find("green: dump"), std::string::npos);
}

TEST(GreenrunDump, RefusesAProcessWithoutGreen) {
    // This test process: no libgreen mapped, and SIGQUIT would kill it.
    std::string said;
    EXPECT_EQ(greenrun_dump(getpid(), said), 1);
    EXPECT_NE(said.find("green is not loaded in that process; nothing sent"), std::string::npos) << said;
}

}  // namespace
