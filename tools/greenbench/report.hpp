// Results of `greenbench compare` and what is made of them: the side-by-side
// table (terminal and Markdown), the JSON file for scripts, and the SVG chart.
// `greenbench report` reads JSON files back and merges them, which is how the
// scenario script puts http_threads and http_pool in one table and chart.
//
// One file per product of the model: report.cpp (the model: points, merging,
// the run's stamps), report_json.cpp (the JSON that scripts and tests parse:
// its field names are an interface), report_tables.cpp (terminal and
// Markdown tables), report_svg.cpp (the chart).
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "load.hpp"

namespace greenbench {

// The JSON of the three structures below is their members, by name (the
// flags excepted: a point has its "server" or "shim_counters" object only
// when there is one); fields missing from a file keep their defaults.
struct ServerUsage {
    bool sampled = false;
    double rss_mib_peak = 0;
    int threads_peak = 0;
    double cpu_s = 0;     // CPU time the server used in the measured window
    double cpu_cores = 0; // cpu_s / window: cores kept busy
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ServerUsage, rss_mib_peak, threads_peak, cpu_s, cpu_cores)

// What the shim's counters said right after a level was measured
// (cumulative since the server started; read from the "green: counters:"
// line of its on-demand dump). Patched servers only.
struct ShimCounters {
    bool present = false;
    std::uint64_t fibers = 0, switches = 0, parks_fd = 0, parks_timer = 0, parks_sync = 0, pool_jobs = 0,
                  hub_blocked_episodes = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ShimCounters, fibers, switches, parks_fd, parks_timer, parks_sync,
                                                pool_jobs, hub_blocked_episodes)
// Parses a "green: counters: ..." line; present == false if it is not one.
ShimCounters parse_shim_counters(const std::string& line);

// Latency percentiles of the ok requests, milliseconds.
struct Latency {
    double p50 = 0, p90 = 0, p99 = 0, max = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Latency, p50, p90, p99, max)
Latency latency_ms(const Histogram& ns);

struct Point {
    std::string path;  // "" in echo mode
    int concurrency = 0;
    bool valid = false;  // false: not measured (the server had exited)
    double rps = 0;
    std::uint64_t ok = 0;
    std::array<std::uint64_t, kErrorKinds> errors{};
    std::string first_error;  // one example message, when there were errors
    Latency latency_ms;
    double elapsed_s = 0;
    std::uint64_t stalled = 0;   // requests the server never answered in the window (load.hpp)
    double load_cpu_cores = 0;   // greenbench's own CPU use: near its thread count, it was the bottleneck
    ServerUsage usage;
    ShimCounters shim;

    std::uint64_t error_total() const;
};

struct Series {
    std::string server;   // e.g. "http_threads"
    std::string variant;  // "unpatched", "patched", "patched hubs=2"
    std::vector<std::string> command;
    std::vector<Point> points;
    std::string note;  // e.g. why points are missing

    std::string label() const { return server + " " + variant; }
    const Point* find(const std::string& path, int concurrency) const;
};

struct Comparison {
    std::string title;
    std::string mode;  // keep-alive, close, echo
    double duration_s = 0, warmup_s = 0;
    int load_threads = 1;
    std::vector<std::string> paths;
    std::vector<int> levels;
    std::vector<Series> series;
    std::string machine;  // CPUs and model
    std::string date;
    std::string command;  // the greenbench command line that produced it
};

Point make_point(const std::string& path, int concurrency, const LoadResult& r);

// Puts several comparisons side by side: series concatenated, paths and
// levels united in first-seen order.
Comparison merge(const std::vector<Comparison>& parts);

// Writes `text` to `path`; false (and a message on stderr) when it cannot.
bool write_file(const std::string& path, const std::string& text);
std::string machine_description();
std::string now_iso8601();

// report_json.cpp: nlohmann-json's ADL hooks: `json j = comparison;` and
// `j.get<Comparison>()`. Reading throws nlohmann::json::exception on bad
// input; fields that older files lack take the defaults they had then.
void to_json(nlohmann::json& j, const Point& p);
void from_json(const nlohmann::json& j, Point& p);
void to_json(nlohmann::json& j, const Series& s);
void from_json(const nlohmann::json& j, Series& s);
void to_json(nlohmann::json& j, const Comparison& c);
void from_json(const nlohmann::json& j, Comparison& c);
// The counts and latencies of `greenbench run --json` (the caller adds what
// was run: target, mode, concurrency, threads).
void to_json(nlohmann::json& j, const LoadResult& r);

// report_tables.cpp
std::string text_tables(const Comparison& c);      // aligned, for a terminal
std::string markdown_tables(const Comparison& c);  // GitHub-flavoured Markdown
std::string format_ms(double v);  // milliseconds with 3 significant digits or so

// report_svg.cpp
std::string svg_chart(const Comparison& c);

}  // namespace greenbench
