// End to end: each example server answers correctly run as it is and under
// greenrun (loopback only, every wait bounded). Servers announce their port
// with "listening on PORT"; nothing here sleeps to synchronise.
//
// Patched runs are checked to really have the shim mapped (/proc/PID/maps),
// so a greenrun that silently ran the program unpatched would fail here.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "../common/child.hpp"
#include "../common/env.hpp"
#include "../common/http_client.hpp"
#include "../common/started_server.hpp"

using namespace green::test;

namespace {

// Unpatched or under greenrun.
struct Variant {
    const char* name;
    bool patched;
};

std::vector<std::string> command(const Variant& v, std::vector<std::string> argv) {
    if (v.patched) argv.insert(argv.begin(), {env_or_die("GREEN_GREENRUN"), "--"});
    return argv;
}

class Examples : public ::testing::TestWithParam<Variant> {
protected:
    std::unique_ptr<ServerChild> start(const std::vector<std::string>& argv) {
        return start_server(command(GetParam(), argv), {}, GetParam().patched);
    }
};

TEST_P(Examples, EchoThreadsEchoesEveryByteOnConcurrentConnections) {
    auto server = start({example_path("echo_threads"), "0"});
    ASSERT_GT(server->port(), 0);
    std::atomic<int> failures{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t)
        clients.emplace_back([&, t] {
            int fd = connect_to(server->port());
            if (fd < 0) {
                ++failures;
                return;
            }
            for (int i = 0; i < 20; ++i) {
                std::string msg(1 + (t * 37 + i * 101) % 3000, static_cast<char>('a' + (t + i) % 26));
                std::string got;
                if (!send_all(fd, msg)) break;
                if (!recv_exact(fd, got, msg.size()) || got != msg) ++failures;
            }
            close(fd);
        });
    for (auto& c : clients) c.join();
    EXPECT_EQ(failures.load(), 0);

    // A large message, written while it is read back.
    int fd = connect_to(server->port());
    ASSERT_GE(fd, 0);
    std::string big(1 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 10));
    std::thread writer([&] { send_all(fd, big); });
    std::string got;
    EXPECT_TRUE(recv_exact(fd, got, big.size())) << "1 MiB echo cut short";
    writer.join();
    close(fd);
    EXPECT_TRUE(got == big) << "1 MiB echo differs";
}

// The routes every HTTP example serves, checked on one server.
void check_routes(int port) {
    Client c(port);
    ASSERT_TRUE(c.ok());
    Response r;
    // Keep-alive: several requests over one connection.
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c.get("/hello", r));
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "Hello, World!\n");
        EXPECT_FALSE(r.close);
    }
    ASSERT_TRUE(c.get("/sleep?ms=20", r));
    EXPECT_EQ(r.body, "slept 20 ms\n");
    ASSERT_TRUE(c.get("/cpu?us=300", r));
    EXPECT_EQ(r.body, "burned 300 us\n");
    ASSERT_TRUE(c.get("/upstream?ms=5", r));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "upstream: delayed 5 ms\n");
    ASSERT_TRUE(c.get("/missing", r));
    EXPECT_EQ(r.status, 404);
    // Two pipelined requests in one write: two answers, in order.
    ASSERT_TRUE(c.send("GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(c.read(r));
    EXPECT_EQ(r.body, "slept 1 ms\n");
    ASSERT_TRUE(c.read(r));
    EXPECT_EQ(r.body, "Hello, World!\n");
    // Connection: close is honoured.
    ASSERT_TRUE(c.get("/hello", r, "Connection: close\r\n"));
    EXPECT_TRUE(r.close);
    EXPECT_TRUE(c.at_eof());

    // HTTP/1.0 without keep-alive closes too; a malformed request gets 400.
    Client c10(port);
    ASSERT_TRUE(c10.send("GET /hello HTTP/1.0\r\n\r\n"));
    ASSERT_TRUE(c10.read(r));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(c10.at_eof());
    Client bad(port);
    ASSERT_TRUE(bad.send("NONSENSE\r\n\r\n"));
    ASSERT_TRUE(bad.read(r));
    EXPECT_EQ(r.status, 400);
}

// The contended counter: concurrent increments all land, each value once.
void check_counter(int port) {
    constexpr int kThreads = 8, kEach = 25;
    std::vector<std::vector<long>> seen(kThreads);
    std::vector<std::thread> clients;
    for (int t = 0; t < kThreads; ++t)
        clients.emplace_back([&, t] {
            Client c(port);
            Response r;
            for (int i = 0; i < kEach && c.get("/counter?us=50", r); ++i) seen[t].push_back(std::atol(r.body.c_str()));
        });
    for (auto& c : clients) c.join();
    std::set<long> values;
    for (const auto& v : seen) values.insert(v.begin(), v.end());
    EXPECT_EQ(values.size(), static_cast<size_t>(kThreads * kEach));
    EXPECT_EQ(*values.begin(), 1);
    EXPECT_EQ(*values.rbegin(), kThreads * kEach);
}

class HttpExamples : public Examples {
protected:
    void SetUp() override {
        // The delay server /upstream calls; it is a green program itself and
        // runs unpatched in both variants.
        delay_ = std::make_unique<ServerChild>(std::vector<std::string>{env_or_die("GREEN_GREENBENCH"), "delay-server"});
        ASSERT_GT(delay_->port(), 0) << delay_->output();
    }
    std::unique_ptr<ServerChild> delay_;
};

TEST_P(HttpExamples, HttpThreadsServesEveryRoute) {
    auto server = start({example_path("http_threads"), "0", std::to_string(delay_->port())});
    ASSERT_GT(server->port(), 0);
    check_routes(server->port());
    check_counter(server->port());
}

TEST_P(HttpExamples, HttpPoolServesEveryRoute) {
    auto server = start({example_path("http_pool"), "0", std::to_string(delay_->port())});
    ASSERT_GT(server->port(), 0);
    check_routes(server->port());
    check_counter(server->port());
}

// The pool answers at most 4 requests at a time, patched or not: 8
// concurrent 100 ms sleeps take two rounds. (Only a lower bound is asserted;
// an upper bound would depend on the machine's load.)
TEST_P(HttpExamples, HttpPoolRunsAtMostFourRequestsAtOnce) {
    auto server = start({example_path("http_pool"), "0"});
    ASSERT_GT(server->port(), 0);
    auto t0 = std::chrono::steady_clock::now();
    std::atomic<int> ok{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < 8; ++i)
        clients.emplace_back([&] {
            Client c(server->port());
            Response r;
            if (c.get("/sleep?ms=100", r) && r.status == 200) ++ok;
        });
    for (auto& c : clients) c.join();
    auto elapsed = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(ok.load(), 8);
    EXPECT_GE(elapsed, std::chrono::milliseconds(200));
}

TEST_P(HttpExamples, ClientThreadsCountsEveryAnswer) {
    // The server runs unpatched; the client is the program under test here.
    ServerChild server({example_path("http_threads"), "0"});
    ASSERT_GT(server.port(), 0) << server.output();
    auto c = run_capture(command(GetParam(), {example_path("client_threads"), "-n", "200", "-t", "8",
                                              std::to_string(server.port()), "/counter"}));
    EXPECT_EQ(c.status, 0) << c.out << c.err;
    EXPECT_NE(c.out.find("200 requests, 8 threads, 0 errors"), std::string::npos) << c.out;
    // Every request reached the server exactly once.
    Client check(server.port());
    Response r;
    ASSERT_TRUE(check.get("/counter", r));
    EXPECT_EQ(r.body, "201\n");

    // A route that fails is reported and sets the exit status.
    auto bad = run_capture(command(GetParam(), {example_path("client_threads"), "-n", "10", "-t", "2", "--close",
                                                std::to_string(server.port()), "/missing"}));
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.out.find("10 errors"), std::string::npos) << bad.out;
}

const Variant kVariants[] = {{"unpatched", false}, {"patched", true}};
auto variant_name = [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); };

INSTANTIATE_TEST_SUITE_P(Examples, Examples, ::testing::ValuesIn(kVariants), variant_name);
INSTANTIATE_TEST_SUITE_P(Examples, HttpExamples, ::testing::ValuesIn(kVariants), variant_name);

}  // namespace
