// The load generator: one green fiber per connection, each sending a request,
// reading the whole answer and checking it, then the next (closed loop, like
// wrk and ab). --threads spreads the connections over that many hubs.
//
// Counting rules (tests/tools/test_greenbench.cpp checks each):
//  - A request is "ok" when a complete response arrived in time with a 2xx
//    status (HTTP) or the echoed bytes match what was sent (echo).
//  - Otherwise exactly one error kind is counted and, except for status, the
//    connection is closed (the next request reconnects):
//      connect  the connection could not be opened (refused, unreachable...)
//      read     the peer closed or reset before a complete response header
//               (includes a reset or EOF on a reused keep-alive connection)
//      write    the request could not be sent (reset, broken pipe)
//      timeout  no complete response within --timeout of the request's start
//      status   a complete response whose status is not 2xx (HTTP; the
//               connection stays open if the server keeps it)
//      payload  the answer is wrong: a malformed status line/header/chunk, a
//               header over 16 KiB, a body shorter than its Content-Length (short body), or echoed
//               bytes that differ from those sent (checksum)
//  - Requests/s counts ok requests; latency percentiles are over ok requests,
//    from sending the request (keep-alive, echo) or from connecting (close
//    mode) to the last byte of the answer.
//  - With --requests N exactly N requests are counted (ok + errors) after the
//    warm-up; with --duration, those that complete inside the measured window.
//    After a connect error a connection waits 10 ms before trying again, so a
//    dead server does not turn into a busy loop.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "histogram.hpp"
#include "net.hpp"

namespace greenbench {

enum class Mode { KeepAlive, Close, Echo };
const char* to_string(Mode m);

enum ErrorKind : int { kConnect, kRead, kWrite, kTimeout, kStatus, kPayload, kErrorKinds };
inline constexpr std::array<const char*, kErrorKinds> kErrorNames = {"connect", "read",   "write",
                                                                     "timeout", "status", "payload"};

struct LoadSpec {
    Mode mode = Mode::KeepAlive;
    Endpoint target;
    std::string path = "/";      // HTTP request target
    int concurrency = 16;
    double duration_s = 5;       // used when requests == 0
    std::uint64_t requests = 0;  // exact request count instead of a duration
    double warmup_s = 0;
    double timeout_s = 5;
    std::size_t payload = 64;    // echo payload bytes per request
    int threads = 1;
};

struct LoadResult {
    std::uint64_t ok = 0;
    std::array<std::uint64_t, kErrorKinds> errors{};
    std::array<std::string, kErrorKinds> first_error{};  // the first message of each kind
    std::uint64_t bytes_in = 0;
    double elapsed_s = 0;  // the measured window
    Histogram latency_ns;
    // Requests still unanswered when the window closed although they were
    // sent before it opened: a stalled server (duration mode; not an error
    // kind, since their timeout had not passed).
    std::uint64_t stalled = 0;
    double cpu_s = 0;  // CPU time greenbench itself used in the window (all threads)

    std::uint64_t error_total() const;
    double rps() const { return elapsed_s > 0 ? static_cast<double>(ok) / elapsed_s : 0; }
};

// Live view for progress lines: counts so far in the measured window.
struct LiveStatus {
    double elapsed_s;  // since the start of the run, warm-up included
    bool warming_up;
    std::uint64_t ok;
    std::uint64_t errors;
};

struct LoadHooks {
    std::function<void()> on_measure_begin;  // at the end of the warm-up
    std::function<void()> on_measure_end;
    std::function<void(const LiveStatus&)> on_tick;  // every 250 ms
};

// Runs the load; must be called from a fiber (inside green::run).
LoadResult run_load(const LoadSpec& spec, const LoadHooks& hooks = {});

// The whole HTTP request sent for `path`.
std::string http_request(const std::string& host, const std::string& path, bool close);

}  // namespace greenbench
