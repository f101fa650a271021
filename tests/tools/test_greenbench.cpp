// greenbench's counting, against servers in this process whose answers are
// known: good answers, bad statuses, short bodies, resets, stalls, malformed
// answers, chunked bodies, and an echo server that corrupts every 4th message.
// Then `compare` and `report` end to end, and compare's error messages for a
// server that exits early, never accepts, or whose port is taken.
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../../tools/greenbench/histogram.hpp"
#include "../common/child.hpp"
#include "../common/env.hpp"
#include "../common/net.hpp"

using namespace green::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string greenbench() { return env_or_die("GREEN_GREENBENCH"); }
bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

int listen_any(int& port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1024) != 0) std::abort();
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

// Thread-per-connection HTTP server whose behaviour is chosen by the path.
// Started once for the whole test program and never stopped.
class KnownServer {
public:
    static KnownServer& get() {
        static KnownServer* s = new KnownServer;
        return *s;
    }
    int port() const { return port_; }
    std::atomic<long> served_ok{0};

private:
    KnownServer() {
        int lfd = listen_any(port_);
        std::thread([this, lfd] {
            for (;;) {
                int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd >= 0) std::thread([this, fd] { serve(fd); }).detach();
            }
        }).detach();
    }
    void serve(int fd) {
        std::string buf;
        long count = 0;  // requests on this connection
        for (;;) {
            size_t end;
            while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
                char chunk[4096];
                ssize_t n = recv(fd, chunk, sizeof chunk, 0);
                if (n <= 0) {
                    close(fd);
                    return;
                }
                buf.append(chunk, static_cast<size_t>(n));
            }
            std::string line = buf.substr(0, buf.find("\r\n"));
            buf.erase(0, end + 4);
            std::string path = line.substr(4, line.find(' ', 4) - 4);
            ++count;
            auto reply = [&](const std::string& s) { return send_all(fd, s); };
            if (path == "/ok") {
                ++served_ok;
                if (!reply("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")) break;
            } else if (path == "/status") {
                if (!reply("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")) break;
            } else if (path == "/every5th") {
                bool bad = count % 5 == 0;
                if (!reply(bad ? "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n" : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
                    break;
            } else if (path == "/short") {
                reply("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..");
                break;
            } else if (path == "/reset") {
                linger l{1, 0};  // close with RST
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
                break;
            } else if (path == "/stall") {
                char c;
                while (recv(fd, &c, 1, 0) > 0) {
                }  // never answer; wait for the client to give up
                break;
            } else if (path == "/garbage") {
                if (!reply("HTTP/1.1 abc nonsense\r\n\r\n")) break;
            } else if (path == "/chunked") {
                if (!reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"))
                    break;
            } else if (path == "/close") {
                reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                break;
            } else if (path == "/eof-body") {  // no length: the body runs to EOF
                reply("HTTP/1.1 200 OK\r\n\r\nbody until close");
                break;
            } else {
                if (!reply("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")) break;
            }
        }
        close(fd);
    }
    int port_ = 0;
};

// Echo server; with `corrupt`, every 4th 64-byte message of a connection
// comes back with one byte flipped.
class EchoServer {
public:
    explicit EchoServer(bool corrupt) : corrupt_(corrupt) {
        lfd_ = listen_any(port_);
        std::thread([this] {
            for (;;) {
                int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd < 0) return;
                std::thread([this, fd] {
                    char buf[4096];
                    std::uint64_t offset = 0;
                    for (;;) {
                        ssize_t n = recv(fd, buf, sizeof buf, 0);
                        if (n <= 0) break;
                        for (ssize_t i = 0; i < n; ++i, ++offset)
                            if (corrupt_ && offset % 256 == 3 * 64 + 10) buf[i] ^= 0x5a;
                        if (!send_all(fd, std::string(buf, static_cast<size_t>(n)))) break;
                    }
                    close(fd);
                }).detach();
            }
        }).detach();
    }
    int port() const { return port_; }

private:
    bool corrupt_;
    int lfd_ = -1, port_ = 0;
};

// `greenbench run` with JSON output; its exit status must be `expect_status`
// (0 when anything succeeded, 1 when nothing did, 2 for bad arguments).
json run_bench(const std::vector<std::string>& args, int expect_status) {
    std::vector<std::string> argv{greenbench(), "run", "--json", "-", "-q"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto c = run_capture(argv);
    EXPECT_EQ(c.status, expect_status) << c.err;
    try {
        return json::parse(c.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not JSON: " << e.what() << "\nstdout:\n" << c.out << "\nstderr:\n" << c.err;
        return json::object();
    }
}

std::string url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(KnownServer::get().port()) + path; }

std::uint64_t err(const json& j, const char* kind) { return j.at("errors").at(kind).get<std::uint64_t>(); }

TEST(GreenbenchRun, GoodAnswersAreCountedWithLatencies) {
    json j = run_bench({"-n", "200", "-c", "8", url("/ok")}, 0);
    EXPECT_EQ(j["ok"], 200);
    EXPECT_EQ(j["error_total"], 0);
    EXPECT_GT(j["requests_per_s"].get<double>(), 0);
    double p50 = j["latency_ms"]["p50"], p99 = j["latency_ms"]["p99"], max = j["latency_ms"]["max"];
    EXPECT_GT(p50, 0);
    EXPECT_LE(p50, p99);
    EXPECT_LE(p99, max);
    EXPECT_EQ(j["bytes_in"].get<std::uint64_t>() % 43, 0u) << "each answer is 43 bytes";
}

TEST(GreenbenchRun, BadStatusIsCountedAndTheConnectionKept) {
    json all = run_bench({"-n", "50", "-c", "4", url("/status")}, 1);  // nothing succeeded: status 1
    EXPECT_EQ(all["ok"], 0);
    EXPECT_EQ(err(all, "status"), 50u);
    EXPECT_EQ(all["error_total"], 50);
    EXPECT_TRUE(has(all["first_errors"]["status"].get<std::string>(), "500"));
    // One connection, every 5th request on it answered 503: exactly 20 of 100.
    // (A status error keeps the connection, so the server's count goes on.)
    json some = run_bench({"-n", "100", "-c", "1", url("/every5th")}, 0);
    EXPECT_EQ(some["ok"], 80);
    EXPECT_EQ(err(some, "status"), 20u);
}

TEST(GreenbenchRun, ShortBodiesAreBadPayloads) {
    json j = run_bench({"-n", "30", "-c", "3", url("/short")}, 1);
    EXPECT_EQ(j["ok"], 0);
    EXPECT_EQ(err(j, "payload"), 30u);
    EXPECT_EQ(j["error_total"], 30);
    EXPECT_TRUE(has(j["first_errors"]["payload"].get<std::string>(), "short body"));
}

TEST(GreenbenchRun, ResetsAreReadErrors) {
    json j = run_bench({"-n", "30", "-c", "3", url("/reset")}, 1);
    EXPECT_EQ(j["ok"], 0);
    EXPECT_EQ(err(j, "read"), 30u);
    EXPECT_EQ(j["error_total"], 30);
}

TEST(GreenbenchRun, StallsAreTimeouts) {
    json j = run_bench({"-n", "4", "-c", "2", "--timeout", "0.2", url("/stall")}, 1);
    EXPECT_EQ(j["ok"], 0);
    EXPECT_EQ(err(j, "timeout"), 4u);
    EXPECT_EQ(j["error_total"], 4);
}

TEST(GreenbenchRun, AServerThatStallsIsReportedAsStalledNotAsFast) {
    // Requests sent in the warm-up and never answered: no timeout has passed
    // when the window closes, so they are not errors, but they are reported.
    json j = run_bench({"-d", "0.3", "-w", "0.2", "-c", "2", "--timeout", "30", url("/stall")}, 1);
    EXPECT_EQ(j["ok"], 0);
    EXPECT_EQ(j["error_total"], 0);
    EXPECT_EQ(j["stalled"], 2);
    json fine = run_bench({"-d", "0.3", "-w", "0.1", "-c", "2", url("/ok")}, 0);
    EXPECT_EQ(fine["stalled"], 0);
}

TEST(GreenbenchRun, MalformedAnswersAreBadPayloads) {
    json j = run_bench({"-n", "20", "-c", "2", url("/garbage")}, 1);
    EXPECT_EQ(err(j, "payload"), 20u);
    EXPECT_EQ(j["error_total"], 20);
}

TEST(GreenbenchRun, ChunkedCloseAndEofFramedBodiesAreGood) {
    for (const char* path : {"/chunked", "/close", "/eof-body"}) {
        json j = run_bench({"-n", "40", "-c", "4", url(path)}, 0);
        EXPECT_EQ(j["ok"], 40) << path;
        EXPECT_EQ(j["error_total"], 0) << path << ": " << j["first_errors"].dump();
    }
    json close_mode = run_bench({"-n", "40", "-c", "4", "--mode", "close", url("/ok")}, 0);
    EXPECT_EQ(close_mode["ok"], 40);
    EXPECT_EQ(close_mode["mode"], "close");
}

TEST(GreenbenchRun, RefusedConnectionsAreConnectErrors) {
    int port = 0;
    int fd = listen_any(port);
    close(fd);  // nothing listens there now
    json j = run_bench({"-n", "12", "-c", "3", "http://127.0.0.1:" + std::to_string(port) + "/"}, 1);
    EXPECT_EQ(err(j, "connect"), 12u);
    EXPECT_EQ(j["error_total"], 12);
    EXPECT_TRUE(has(j["first_errors"]["connect"].get<std::string>(), "refused"));
}

TEST(GreenbenchRun, WarmupRequestsAreNotCounted) {
    long before = KnownServer::get().served_ok.load();
    json j = run_bench({"-n", "100", "-c", "2", "-w", "0.2", url("/ok")}, 0);
    EXPECT_EQ(j["ok"], 100);
    EXPECT_GT(KnownServer::get().served_ok.load() - before, 100) << "the warm-up sent requests of its own";
}

TEST(GreenbenchRun, DurationBoundsTheRun) {
    constexpr int kConnections = 4;
    const long before = KnownServer::get().served_ok.load();
    json j = run_bench({"-d", "0.5", "-c", std::to_string(kConnections), "-t", "2", url("/ok")}, 0);
    const long served = KnownServer::get().served_ok.load() - before;
    const auto ok = j["ok"].get<long>();
    EXPECT_GT(ok, 0);
    // The window closes when the controlling fiber wakes: never early.
    EXPECT_GE(j["elapsed_s"].get<double>(), 0.49);
    // The rate is what was counted over that window...
    EXPECT_NEAR(j["requests_per_s"].get<double>() * j["elapsed_s"].get<double>(), static_cast<double>(ok), 0.5);
    // ...and the load stopped with it: beyond the counted answers, the server
    // answered at most the one request each connection had in flight.
    EXPECT_GE(served, ok);
    EXPECT_LE(served, ok + kConnections);
    EXPECT_EQ(j["threads"], 2);
}

TEST(GreenbenchRun, EchoPayloadsAreChecked) {
    EchoServer good(false);
    json ok = run_bench({"--mode", "echo", "--payload", "64", "-n", "200", "-c", "4",
                         "127.0.0.1:" + std::to_string(good.port())},
                        0);
    EXPECT_EQ(ok["ok"], 200);
    EXPECT_EQ(ok["error_total"], 0);
    // Every 4th message of a connection corrupted; an error reconnects, so
    // with one connection it is exactly 1 in 4.
    EchoServer bad(true);
    json j = run_bench({"--mode", "echo", "--payload", "64", "-n", "20", "-c", "1",
                        "127.0.0.1:" + std::to_string(bad.port())},
                       0);
    EXPECT_EQ(j["ok"], 15);
    EXPECT_EQ(err(j, "payload"), 5u);
    EXPECT_TRUE(has(j["first_errors"]["payload"].get<std::string>(), "checksum"));
}

TEST(GreenbenchRun, BadArgumentsExit2) {
    EXPECT_EQ(run_capture({greenbench(), "run"}).status, 2);
    EXPECT_EQ(run_capture({greenbench(), "run", "https://127.0.0.1:1/"}).status, 2);
    EXPECT_EQ(run_capture({greenbench(), "run", "-c", "0", url("/ok")}).status, 2);
    EXPECT_EQ(run_capture({greenbench(), "frobnicate"}).status, 2);
    EXPECT_EQ(run_capture({greenbench(), "--help"}).status, 0);
}

TEST(Histogram, PercentilesWithinOneBucket) {
    greenbench::Histogram h;
    for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v * 1000);  // 1 µs .. 100 ms
    EXPECT_EQ(h.count(), 100000u);
    EXPECT_EQ(h.min(), 1000u);
    EXPECT_EQ(h.max(), 100000000u);
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
        double want = q * 1e8;
        EXPECT_NEAR(static_cast<double>(h.percentile(q)), want, want / 60) << q;
    }
    EXPECT_EQ(h.percentile(1.0), h.max());
    for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 1000ull, 123456789ull, ~0ull}) {
        std::size_t i = greenbench::Histogram::index(v);
        EXPECT_LT(i, greenbench::Histogram::kBuckets);
        EXPECT_GE(greenbench::Histogram::upper(i), v);
        if (i > 0) {
            EXPECT_LT(greenbench::Histogram::upper(i - 1), v);
        }
    }
}

// ---------------------------------------------------------------- compare

TEST(GreenbenchCompare, SweepsUnpatchedAndPatchedAndWritesTableJsonAndSvg) {
    TempDir dir;
    auto c = run_capture({greenbench(), "compare", "-c", "2,4", "-d", "0.3", "-w", "0", "-p", "/hello", "-p",
                          "/counter", "--json", dir / "out.json", "--svg", dir / "out.svg", "--markdown",
                          dir / "out.md", "--", example_path("http_threads"), "0"});
    ASSERT_EQ(c.status, 0) << c.out << c.err;
    EXPECT_TRUE(has(c.out, "patched / unpatched")) << c.out;
    EXPECT_TRUE(has(c.out, "GET /hello")) << c.out;
    EXPECT_TRUE(has(c.out, "GET /counter")) << c.out;
    EXPECT_TRUE(has(c.out, "peak RSS")) << c.out;
    EXPECT_TRUE(has(c.out, "shim counters after each level")) << c.out;

    json j = json::parse(slurp(dir / "out.json"));
    ASSERT_EQ(j["series"].size(), 2u);
    EXPECT_EQ(j["series"][0]["variant"], "unpatched");
    EXPECT_EQ(j["series"][1]["variant"], "patched");
    EXPECT_EQ(j["series"][0]["server"], "http_threads");
    EXPECT_EQ(j["series"][1]["command"][0].get<std::string>().find("greenrun") != std::string::npos, true);
    for (const auto& s : j["series"]) {
        ASSERT_EQ(s["points"].size(), 4u);  // 2 paths x 2 levels
        for (const auto& p : s["points"]) {
            EXPECT_TRUE(p["valid"].get<bool>());
            EXPECT_GT(p["ok"].get<std::uint64_t>(), 0u);
            EXPECT_EQ(p["errors"]["connect"], 0);
            ASSERT_TRUE(p.contains("server")) << "the server was sampled from /proc";
            EXPECT_GT(p["server"]["rss_mib_peak"].get<double>(), 0);
            EXPECT_GE(p["server"]["threads_peak"].get<int>(), 1);
        }
    }
    // The shim's counters after each level of the patched run, cumulative:
    // every request was a hooked read that parked at least once before its
    // data came, and nothing blocked a hub. The unpatched run has none.
    for (const auto& p : j["series"][0]["points"]) EXPECT_FALSE(p.contains("shim_counters"));
    std::uint64_t previous_switches = 0;
    for (const auto& p : j["series"][1]["points"]) {
        ASSERT_TRUE(p.contains("shim_counters")) << p.dump();
        const auto& k = p["shim_counters"];
        EXPECT_GT(k["switches"].get<std::uint64_t>(), previous_switches);
        previous_switches = k["switches"].get<std::uint64_t>();
        EXPECT_GT(k["parks_fd"].get<std::uint64_t>(), 0u);
        EXPECT_GT(k["fibers"].get<std::uint64_t>(), 0u);
        EXPECT_TRUE(k.contains("parks_timer") && k.contains("parks_sync") && k.contains("pool_jobs"));
        EXPECT_EQ(k["hub_blocked_episodes"].get<std::uint64_t>(), 0u);
    }
    std::string svg = slurp(dir / "out.svg");
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_TRUE(has(svg, "http_threads patched"));
    EXPECT_TRUE(has(slurp(dir / "out.md"), "| concurrency |"));

    // report merges files: the same results under another label side by side.
    json other = j;
    for (auto& s : other["series"]) s["server"] = "other";
    std::ofstream(dir / "other.json") << other.dump();
    auto r = run_capture({greenbench(), "report", dir / "out.json", dir / "other.json", "--svg", dir / "both.svg"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(has(r.out, "http_threads patched / unpatched")) << r.out;
    EXPECT_TRUE(has(r.out, "other patched / unpatched")) << r.out;
    EXPECT_TRUE(has(slurp(dir / "both.svg"), "other unpatched"));
}

TEST(GreenbenchCompare, EchoModeAgainstTheEchoExample) {
    TempDir dir;
    auto c = run_capture({greenbench(), "compare", "--mode", "echo", "-c", "3", "-d", "0.3", "-w", "0", "--json",
                          dir / "e.json", "--svg", "", "--", example_path("echo_threads"), "0"});
    ASSERT_EQ(c.status, 0) << c.out << c.err;
    EXPECT_TRUE(has(c.out, "TCP echo")) << c.out;
    json j = json::parse(slurp(dir / "e.json"));
    for (const auto& s : j["series"]) {
        EXPECT_GT(s["points"][0]["ok"].get<std::uint64_t>(), 0u);
        EXPECT_EQ(s["points"][0]["errors"]["payload"], 0);
    }
}

// --before-each runs before every server, in order (a database left to drain
// between servers); a failing one is reported and the comparison goes on.
TEST(GreenbenchCompare, BeforeEachRunsBeforeEveryServer) {
    TempDir dir;
    const std::string log = dir / "before.log";
    auto c = run_capture({greenbench(), "compare", "--mode", "echo", "-c", "1", "-d", "0.1", "-w", "0", "--hubs", "1,2",
                          "--before-each", "echo ran >> " + log + "; exit 3", "--json", dir / "e.json", "--svg", "",
                          "--", example_path("echo_threads"), "0"});
    ASSERT_EQ(c.status, 0) << c.out << c.err;
    EXPECT_EQ(slurp(log), "ran\nran\nran\n");  // unpatched, hubs=1, hubs=2
    EXPECT_TRUE(has(c.err, "--before-each exited with status 3 before unpatched")) << c.err;
    EXPECT_TRUE(has(c.err, "--before-each exited with status 3 before patched hubs=2")) << c.err;
}

TEST(GreenbenchCompare, ServerThatExitsEarlyIsReportedWithItsOutput) {
    TempDir dir;
    auto c = run_capture({greenbench(), "compare", "-c", "1", "-d", "0.2", "--json", dir / "x.json", "--svg", "", "--",
                          "/bin/sh", "-c", "echo 'cannot open config' >&2; exit 3"});
    EXPECT_EQ(c.status, 1);
    EXPECT_TRUE(has(c.err, "exited before accepting connections")) << c.err;
    EXPECT_TRUE(has(c.err, "exit status 3")) << c.err;
    EXPECT_TRUE(has(c.err, "cannot open config")) << c.err;

    auto missing = run_capture({greenbench(), "compare", "-c", "1", "--svg", "", "--json", dir / "y.json", "--",
                                "/nonexistent/server"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_TRUE(has(missing.err, "cannot run /nonexistent/server")) << missing.err;
}

TEST(GreenbenchCompare, ServerThatNeverAcceptsTimesOut) {
    // The server would sleep for an hour: had greenbench waited for it
    // instead of stopping it, this test would outlast its timeout.
    TempDir dir;
    auto c = run_capture({greenbench(), "compare", "-c", "1", "--startup-timeout", "0.5", "--svg", "", "--json",
                          dir / "x.json", "--", "/bin/sh", "-c", "echo $$ > " + dir / "pid" + "; exec sleep 3600"});
    EXPECT_EQ(c.status, 1);
    EXPECT_TRUE(has(c.err, "did not accept connections within 0.5 s")) << c.err;
    const pid_t server = std::atoi(slurp(dir / "pid").c_str());
    ASSERT_GT(server, 0);
    const std::string stat = slurp("/proc/" + std::to_string(server) + "/stat");
    EXPECT_TRUE(stat.empty() || stat.find(") Z ") != std::string::npos) << "the server was left running: " << stat;
}

TEST(GreenbenchCompare, AServerThatStopsAnsweringEndsItsRun) {
    // The delay server holds every request for a minute: the level sees only
    // stalled requests, a lone request after it gets no answer either, and
    // the remaining levels are skipped instead of measured as zeros.
    // Had greenbench waited for the answers, they would have come (not
    // stalled) and every level would have been measured.
    TempDir dir;
    auto c = run_capture({greenbench(), "compare", "--only-unpatched", "-c", "2,4,8", "-d", "0.2", "-w", "0.1", "-p",
                          "/delay?ms=60000", "--settle-timeout", "0.5", "--svg", "", "--json", dir / "h.json", "--",
                          greenbench(), "delay-server"});
    EXPECT_EQ(c.status, 1);
    EXPECT_TRUE(has(c.err, "the server stopped answering")) << c.err;
    EXPECT_TRUE(has(c.out, "stalled")) << c.out;
    json j = json::parse(slurp(dir / "h.json"));
    ASSERT_EQ(j["series"].size(), 1u);
    EXPECT_EQ(j["series"][0]["points"].size(), 1u) << "levels after the hang are not measured";
    EXPECT_EQ(j["series"][0]["points"][0]["stalled"], 2);
    EXPECT_TRUE(has(j["series"][0]["note"].get<std::string>(), "stopped answering"));
}

// A patched server that stops answering is dumped before it is stopped: the
// report names what each of its fibers waits on (here, every handler sleeps).
TEST(GreenbenchCompare, APatchedServerThatStopsAnsweringIsDumpedFirst) {
    TempDir dir;
    auto c = run_capture({greenbench(), "compare", "--only-patched", "--hubs", "1", "-c", "2", "-d", "0.2", "-w", "0.1",
                          "-p", "/sleep?ms=60000", "--settle-timeout", "0.5", "--svg", "", "--json", dir / "s.json", "--",
                          example_path("http_threads"), "0"});
    EXPECT_EQ(c.status, 1);
    EXPECT_TRUE(has(c.err, "the server stopped answering")) << c.err;
    EXPECT_TRUE(has(c.err, "the server's dump:")) << c.err;
    EXPECT_TRUE(has(c.err, "green: dump of pid")) << c.err;
    EXPECT_TRUE(has(c.err, "sleeps, deadline in")) << c.err;
    EXPECT_TRUE(has(c.err, "green: end of dump")) << c.err;
}

TEST(GreenbenchCompare, PortAlreadyInUseIsRefused) {
    TempDir dir;
    int port = 0;
    int fd = listen_any(port);  // someone else's server
    auto c = run_capture({greenbench(), "compare", "-c", "1", "--port", std::to_string(port), "--svg", "", "--json",
                          dir / "x.json", "--", example_path("http_threads"),
                          std::to_string(port)});
    close(fd);
    EXPECT_EQ(c.status, 1);
    EXPECT_TRUE(has(c.err, "port " + std::to_string(port) + " already accepts connections")) << c.err;

    // Without --port, the server's own complaint (bind: Address already in
    // use) is shown with a hint.
    int fd2 = listen_any(port);
    auto d = run_capture({greenbench(), "compare", "-c", "1", "--svg", "", "--json", dir / "y.json", "--",
                          example_path("http_threads"), std::to_string(port)});
    close(fd2);
    EXPECT_EQ(d.status, 1);
    EXPECT_TRUE(has(d.err, "Address already in use")) << d.err;
    EXPECT_TRUE(has(d.err, "hint")) << d.err;
}

TEST(GreenbenchCompare, FindsThePortOfAServerThatDoesNotPrintIt) {
    // python3's http.server prints "Serving HTTP on ... port N", not our line:
    // the port is read from /proc.
    TempDir dir;
    // 1 s: python answers its first requests slowly on a busy machine, and
    // a run that completes none counts no 404 either.
    auto c = run_capture({greenbench(), "compare", "-c", "1", "-d", "1", "-w", "0", "-p", "/", "--only-unpatched",
                          "--svg", "", "--json", dir / "p.json", "--", "python3", "-m", "http.server", "0", "--bind",
                          "127.0.0.1", "--directory", "/nonexistent-green-dir"});
    EXPECT_EQ(c.status, 0) << c.err;
    json j = json::parse(slurp(dir / "p.json"));
    ASSERT_EQ(j["series"].size(), 1u);
    // The directory does not exist, so every answer is 404: counted, not ok.
    EXPECT_GT(j["series"][0]["points"][0]["errors"]["status"].get<std::uint64_t>(), 0u);
}

}  // namespace
