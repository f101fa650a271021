// Peers that reset mid-response (SO_LINGER 0, so close sends an RST): the
// server's write or read fails with ECONNRESET/EPIPE in the middle of a
// reply. The server must neither die (SIGPIPE, an abort in the shim) nor
// leave the connection behind, and must keep answering everyone else
// correctly.
//
// "Mid-response" is made certain with small client buffers and replies far
// larger than them: the client has read at most a few KiB of a reply of
// hundreds when it resets.
#include <gtest/gtest.h>

#include <functional>

#include "../common/echo_totals.hpp"
#include "fault_util.hpp"

using namespace green::test;

namespace {

constexpr int kResets = 40;
constexpr int kNormal = 8;

class PeerReset : public ::testing::TestWithParam<Mode> {};

std::string pattern(size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 9)) & 0xff);
    return s;
}

// One checked echo exchange, then an orderly close that waits for the
// server's side to be gone too.
bool normal_echo(int port, unsigned seed) {
    int fd = connect_to(port);
    if (fd < 0) return false;
    const std::string msg = pattern(32 * 1024, seed);  // fits the receive buffer: send, then read
    std::string got;
    bool ok = send_all(fd, msg) && recv_exact(fd, got, msg.size()) && got == msg;
    shutdown(fd, SHUT_WR);
    ok = ok && wait_peer_close(fd);
    close(fd);
    return ok;
}

// kResets peers with small buffers, each sent as much of `request` as it
// takes, so that the server's reply to each is under way and far from done;
// then every peer resets. Returns how many had the start of a reply that
// `reply_began` accepts.
int reset_mid_reply(int port, const std::string& request, const std::function<bool(const std::string&)>& reply_began) {
    std::vector<int> peers;
    for (int i = 0; i < kResets; ++i) {
        int fd = connect_small_buffers(port);
        EXPECT_GE(fd, 0) << std::strerror(errno);
        if (fd < 0) break;
        EXPECT_GT(send_until_full(fd, request), 0u);
        peers.push_back(fd);
    }
    int started = 0;
    for (int fd : peers) {
        char c[512];
        ssize_t n = recv(fd, c, sizeof c, 0);
        started += n > 0 && reply_began(std::string(c, static_cast<size_t>(n)));
    }
    for (int fd : peers) close_with_reset(fd);
    return started;
}

TEST_P(PeerReset, EchoThreadsSurvivesResetsAndClosesEveryConnection) {
    // The server prints its totals and exits when the last of these closed:
    // proof that every reset connection's thread got to its close().
    auto server = start_server(GetParam(), {example_path("echo_threads"), "0", "--exit-after",
                                            std::to_string(kResets + 2 * kNormal)});
    ASSERT_GT(server->port(), 0);
    const int port = server->port();

    int normal_ok = 0;
    for (int i = 0; i < kNormal; ++i) normal_ok += normal_echo(port, i);

    // Each has its echo under way (the first bytes are back), far from done.
    const std::string big = pattern(1 << 20, 99);
    EXPECT_EQ(reset_mid_reply(port, big, [&](const std::string& got) { return big.compare(0, got.size(), got) == 0; }),
              kResets);

    for (int i = 0; i < kNormal; ++i) normal_ok += normal_echo(port, 100 + i);
    EXPECT_EQ(normal_ok, 2 * kNormal) << "echo after resets failed";

    const auto totals = wait_echo_totals(*server, std::chrono::seconds(30));
    ASSERT_TRUE(totals) << "not every connection was closed by the server; output:\n" << server->output();
    EXPECT_EQ(totals->connections, kResets + 2 * kNormal);
    EXPECT_EQ(server->wait_exit(), 0) << server->output();
}

TEST_P(PeerReset, HttpThreadsSurvivesResetsMidResponse) {
    auto server = start_server(GetParam(), {example_path("http_threads"), "0"});
    ASSERT_GT(server->port(), 0);
    const int port = server->port();

    // Thousands of pipelined requests: hundreds of KiB of replies.
    std::string pipelined;
    for (int i = 0; i < 5000; ++i) pipelined += "GET /hello HTTP/1.1\r\nHost: reset\r\n\r\n";
    EXPECT_EQ(reset_mid_reply(port, pipelined,
                              [](const std::string& got) { return got.rfind("HTTP/1.1 200", 0) == 0; }),
              kResets);

    // Everyone else is still served, keep-alive and fresh connections alike.
    int ok = 0;
    Client keep_alive(port);
    ASSERT_TRUE(keep_alive.ok());
    for (int i = 0; i < 2 * kNormal; ++i) {
        Response r;
        ok += keep_alive.get("/hello", r) && r.status == 200 && r.body == "Hello, World!\n";
        Client fresh(port);
        ok += fresh.get("/hello", r) && r.status == 200;
    }
    EXPECT_EQ(ok, 4 * kNormal);
    EXPECT_EQ(waitpid(server->pid(), nullptr, WNOHANG), 0) << "server exited:\n" << server->output();
}

INSTANTIATE_TEST_SUITE_P(Fault, PeerReset, ::testing::ValuesIn(kModes), mode_name);

}  // namespace
