// A checksummed echo soak: 2,000 connections to echo_threads, all open at
// once, each echoing rounds of pseudo-random sizes and bytes. Every byte that
// comes back is compared with what was sent (and both are checksummed), and
// the server's own mutex-protected totals must match the client's exactly.
// GREEN_SOAK_SECONDS keeps every connection going for that long instead of
// kRounds rounds (bench/soak.sh); the figures are printed either way.
//
// The client is one epoll loop over non-blocking sockets, so sending and
// reading overlap and no connection's full buffers can stall another; its
// only wait is epoll_wait, bounded so a stuck server fails the test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <cstdio>
#include <random>

#include "../common/echo_totals.hpp"
#include "fault_util.hpp"

using namespace green::test;

namespace {

constexpr int kConnections = 2000;
constexpr int kRounds = 3;
constexpr size_t kMaxMessage = 16384;
constexpr int kStallMs = 30000;  // no progress at all for this long: the server is stuck

struct Conn {
    int fd = -1;
    std::mt19937 rng;
    std::string msg;
    size_t sent = 0, received = 0;
    int rounds = 0;
    bool finished = false;  // all its rounds are done
    std::uint64_t sent_sum = kFnvBasis, received_sum = kFnvBasis;
    unsigned long long bytes = 0;
    int mismatches = 0;

    void next_message() {
        msg.resize(1 + rng() % kMaxMessage);
        for (auto& c : msg) c = static_cast<char>(rng());
        sent = received = 0;
    }
};

class EchoSoak : public ::testing::TestWithParam<Mode> {};

TEST_P(EchoSoak, TwoThousandConnectionsEchoEveryByteAndTotalsMatch) {
    auto server = start_server(GetParam(), {example_path("echo_threads"), "0", "--exit-after",
                                            std::to_string(kConnections)});
    ASSERT_GT(server->port(), 0);
    const pid_t pid = server->pid();

    std::vector<Conn> conns(kConnections);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    for (int i = 0; i < kConnections; ++i) {
        Conn& c = conns[i];
        c.fd = connect_to(server->port());
        ASSERT_GE(c.fd, 0) << "connection " << i << ": " << std::strerror(errno);
        fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        c.rng.seed(static_cast<unsigned>(i) * 2654435761u + 1);
        c.next_message();
        epoll_event ev{EPOLLIN | EPOLLOUT, {.u32 = static_cast<std::uint32_t>(i)}};
        ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev), 0);
    }
    const ProcFigures open_figures = proc_figures(pid);

    const int seconds = soak_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const auto until = t0 + std::chrono::seconds(seconds);
    auto more_rounds = [&](const Conn& c) {
        return seconds > 0 ? std::chrono::steady_clock::now() < until : c.rounds < kRounds;
    };
    int finished = 0;
    bool stalled = false;
    std::vector<epoll_event> events(256);
    std::vector<char> buf(65536);
    while (finished < kConnections) {
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), kStallMs);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            stalled = true;
            break;
        }
        for (int e = 0; e < n; ++e) {
            Conn& c = conns[events[e].data.u32];
            if (c.finished) continue;
            if ((events[e].events & EPOLLOUT) && c.sent < c.msg.size()) {
                ssize_t w = send(c.fd, c.msg.data() + c.sent, c.msg.size() - c.sent, MSG_NOSIGNAL);
                if (w > 0) {
                    c.sent_sum = fnv1a(c.sent_sum, c.msg.data() + c.sent, static_cast<size_t>(w));
                    c.sent += static_cast<size_t>(w);
                    if (c.sent == c.msg.size()) {
                        epoll_event ev{EPOLLIN, {.u32 = events[e].data.u32}};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                    }
                }
            }
            if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                ssize_t r = recv(c.fd, buf.data(), buf.size(), 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    ADD_FAILURE() << "connection " << events[e].data.u32 << " ended early: "
                                  << (r == 0 ? "closed" : std::strerror(errno));
                    c.finished = true;
                    ++finished;
                    continue;
                }
                if (r > 0) {
                    const size_t got = static_cast<size_t>(r);
                    if (c.received + got > c.sent || std::memcmp(buf.data(), c.msg.data() + c.received, got) != 0)
                        ++c.mismatches;
                    c.received_sum = fnv1a(c.received_sum, buf.data(), got);
                    c.received += got;
                    c.bytes += got;
                }
                if (c.received >= c.msg.size()) {
                    ++c.rounds;
                    if (more_rounds(c)) {
                        c.next_message();
                        epoll_event ev{EPOLLIN | EPOLLOUT, {.u32 = events[e].data.u32}};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                    } else {
                        c.finished = true;
                        ++finished;
                        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                    }
                }
            }
        }
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ProcFigures end_figures = proc_figures(pid);
    close(ep);
    ASSERT_FALSE(stalled) << "no progress for " << kStallMs << " ms with " << finished << " of " << kConnections
                          << " connections done";

    unsigned long long bytes = 0;
    long rounds = 0;
    int mismatches = 0, checksum_mismatches = 0;
    for (auto& c : conns) {
        bytes += c.bytes;
        rounds += c.rounds;
        mismatches += c.mismatches;
        checksum_mismatches += c.sent_sum != c.received_sum;
    }
    EXPECT_EQ(mismatches, 0) << "echoed bytes differ from those sent";
    EXPECT_EQ(checksum_mismatches, 0);
    std::printf("echo soak %s: %d connections, %ld rounds, %.1f MiB echoed in %.2f s (%.1f MiB/s); "
                "server RSS %ld -> %ld KiB, maps %ld -> %ld, fds %ld, OS threads %ld\n",
                GetParam().name, kConnections, rounds, static_cast<double>(bytes) / (1 << 20), elapsed,
                static_cast<double>(bytes) / (1 << 20) / elapsed, open_figures.rss_kb, end_figures.rss_kb,
                open_figures.maps, end_figures.maps, end_figures.fds, end_figures.threads);
    RecordProperty("mib_per_s", static_cast<int>(static_cast<double>(bytes) / (1 << 20) / elapsed));

    // All connections were open at once; now they close, and the server's
    // totals must agree with the client's to the byte.
    for (auto& c : conns) close(c.fd);
    const auto totals = wait_echo_totals(*server);
    ASSERT_TRUE(totals) << server->output();
    EXPECT_EQ(totals->connections, kConnections);
    EXPECT_EQ(totals->max_open, kConnections);
    EXPECT_EQ(totals->bytes, bytes);
    EXPECT_EQ(server->wait_exit(), 0);
}

INSTANTIATE_TEST_SUITE_P(Fault, EchoSoak, ::testing::ValuesIn(kModes), mode_name);

}  // namespace
