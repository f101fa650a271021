// Slowloris against http_threads: hundreds of connections each send their
// request one byte at a time, and between two drips a normal client's
// requests (keep-alive and fresh connections) must all be answered. A server
// whose connection handling could be held by an incomplete request (a hub
// blocked in a read, a connection fiber that never yields) fails here.
//
// The drip rounds are paced by the normal client's answers, not by sleeps:
// every byte of every slow request goes out, then the normal requests are
// made and read, then the next byte.
#include <gtest/gtest.h>

#include "fault_util.hpp"

using namespace green::test;

namespace {

constexpr int kSlowConnections = 300;

class Slowloris : public ::testing::TestWithParam<Mode> {};

TEST_P(Slowloris, NormalRequestsAreAnsweredWhileHundredsOfRequestsDrip) {
    auto server = start_server(GetParam(), {example_path("http_threads"), "0"});
    ASSERT_GT(server->port(), 0);
    const int port = server->port();

    std::vector<std::unique_ptr<Client>> slow;
    for (int i = 0; i < kSlowConnections; ++i) {
        slow.push_back(std::make_unique<Client>(port));
        ASSERT_TRUE(slow.back()->ok()) << "slow connection " << i << ": " << std::strerror(errno);
    }
    Client keep_alive(port);
    ASSERT_TRUE(keep_alive.ok());

    const std::string slow_request = "GET /hello HTTP/1.1\r\nHost: slow\r\n\r\n";
    int normal_ok = 0, normal_tried = 0;
    // Every byte but the last: all slow requests stay incomplete meanwhile.
    for (size_t b = 0; b + 1 < slow_request.size(); ++b) {
        for (auto& c : slow) ASSERT_TRUE(c->send(slow_request.substr(b, 1))) << "drip " << b;

        Response r;
        ++normal_tried;
        if (keep_alive.get("/counter", r) && r.status == 200 && std::atol(r.body.c_str()) == normal_tried) ++normal_ok;
        ++normal_tried;
        Client fresh(port);
        if (fresh.get("/counter", r, "Connection: close\r\n") && r.status == 200 &&
            std::atol(r.body.c_str()) == normal_tried)
            ++normal_ok;
    }
    EXPECT_EQ(normal_ok, normal_tried) << "normal requests failed while slow ones dripped";

    // No slow request is complete, so none may have been answered.
    int answered_early = 0;
    for (auto& c : slow) answered_early += readable_now(c->fd());
    EXPECT_EQ(answered_early, 0);

    // The last byte: every slow request is now whole and gets its answer.
    int slow_ok = 0;
    for (auto& c : slow) ASSERT_TRUE(c->send(slow_request.substr(slow_request.size() - 1)));
    for (auto& c : slow) {
        Response r;
        if (c->read(r) && r.status == 200 && r.body == "Hello, World!\n") ++slow_ok;
    }
    EXPECT_EQ(slow_ok, kSlowConnections);
}

INSTANTIATE_TEST_SUITE_P(Fault, Slowloris, ::testing::ValuesIn(kModes), mode_name);

}  // namespace
