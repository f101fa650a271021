// greenbench: a load generator built on green (one fiber per connection), and
// `greenbench compare`, which answers "would my sync server be faster under
// green?" with a table and a chart.
//
//   greenbench run [options] http://127.0.0.1:8080/hello     (or HOST:PORT with --mode echo)
//   greenbench compare [options] -- server-command args...
//   greenbench report a.json [b.json...] [--svg F] [--markdown F]
//   greenbench delay-server [--port N]
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "../common/cli.hpp"
#include "commands.hpp"
#include "report.hpp"

namespace {

using namespace greenbench;

// "http://host:port/path", "host:port/path" or "host:port".
std::string parse_target(const std::string& url, std::string& host, int& port, std::string& path) {
    std::string rest = url;
    if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
    else if (rest.find("://") != std::string::npos) return "only http:// URLs are supported: " + url;
    std::size_t slash = rest.find('/');
    path = slash == std::string::npos ? "/" : rest.substr(slash);
    std::string hostport = rest.substr(0, slash);
    std::size_t colon = hostport.rfind(':');
    if (colon == std::string::npos) {
        host = hostport;
        port = 80;
    } else {
        host = hostport.substr(0, colon);
        char* end = nullptr;
        long p = std::strtol(hostport.c_str() + colon + 1, &end, 10);
        if (*end || p <= 0 || p > 65535) return "bad port in '" + url + "'";
        port = static_cast<int>(p);
    }
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) return "no host in '" + url + "'";
    return {};
}

nlohmann::json run_json(const LoadSpec& spec, const std::string& url, const LoadResult& r) {
    nlohmann::json j = r;
    j["target"] = url;
    j["mode"] = to_string(spec.mode);
    j["concurrency"] = spec.concurrency;
    j["threads"] = spec.threads;
    return j;
}

void print_run(const LoadSpec& spec, const std::string& url, const LoadResult& r) {
    fmt::print("greenbench: {}  {}, {} connection{}, {} thread{}, ", url, to_string(spec.mode), spec.concurrency,
               spec.concurrency == 1 ? "" : "s", spec.threads, spec.threads == 1 ? "" : "s");
    if (spec.requests) fmt::print("{} requests", spec.requests);
    else fmt::print("{:g} s", spec.duration_s);
    if (spec.warmup_s > 0) fmt::print(" after {:g} s warm-up", spec.warmup_s);
    fmt::print("\n  requests  {} ok in {:.2f} s = {:.1f} req/s  ({:.1f} MiB read)\n", r.ok, r.elapsed_s, r.rps(),
               static_cast<double>(r.bytes_in) / 1048576.0);
    if (r.ok) {
        Latency ms = latency_ms(r.latency_ns);
        fmt::print("  latency   p50 {} ms  p90 {} ms  p99 {} ms  max {} ms\n", format_ms(ms.p50), format_ms(ms.p90),
                   format_ms(ms.p99), format_ms(ms.max));
    }
    if (r.stalled)
        fmt::print("  stalled   {} requests sent before the window got no answer in it (queued or stalled server)\n",
                   r.stalled);
    if (r.error_total() == 0) {
        fmt::print("  errors    none\n");
        return;
    }
    fmt::print("  errors   ");
    for (int k = 0; k < kErrorKinds; ++k)
        if (r.errors[k]) fmt::print(" {} {}", kErrorNames[k], r.errors[k]);
    fmt::print("\n");
    for (int k = 0; k < kErrorKinds; ++k)
        if (r.errors[k]) fmt::print("    first {} error: {}\n", kErrorNames[k], r.first_error[k]);
}

std::string invocation(int argc, char** argv) {
    std::string s = "greenbench";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        bool quote = a.find_first_of(" ?&*;|<>'\"$") != std::string::npos;
        s += " " + (quote ? "'" + a + "'" : a);
    }
    return s;
}

Mode parse_mode(const std::string& m) {
    return m == "close" ? Mode::Close : m == "echo" ? Mode::Echo : Mode::KeepAlive;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"greenbench - a load generator built on green fibers, and a patched-vs-unpatched comparison of sync servers",
                 "greenbench"};
    app.require_subcommand(1);
    app.get_formatter()->column_width(34);
    app.set_version_flag("--version", std::string("greenbench (green) ") + GREEN_VERSION);
    const std::vector<std::string> modes = {"keep-alive", "close", "echo"};

    // ---- run
    auto* run = app.add_subcommand("run", "Load one server and report requests/s, latency percentiles and errors");
    std::string url, mode = "keep-alive", json_out;
    LoadSpec spec;
    bool quiet = false;
    run->add_option("target", url, "http://HOST:PORT/PATH, or HOST:PORT with --mode echo")->required();
    run->add_option("-c,--concurrency", spec.concurrency, "Connections, each driven by one fiber")
        ->check(CLI::Range(1, 100000))->capture_default_str();
    run->add_option("-d,--duration", spec.duration_s, "Seconds to measure (after the warm-up)")
        ->check(CLI::PositiveNumber)->capture_default_str();
    run->add_option("-n,--requests", spec.requests, "Count exactly N requests instead of a duration")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    run->add_option("-w,--warmup", spec.warmup_s, "Seconds of load before measuring")->check(CLI::Range(0.0, 3600.0));
    run->add_option("--timeout", spec.timeout_s, "Seconds a request may take before it counts as a timeout")
        ->check(CLI::PositiveNumber)->capture_default_str();
    run->add_option("-m,--mode", mode, "keep-alive, close (one connection per request) or echo (raw TCP)")
        ->check(CLI::IsMember(modes))->capture_default_str();
    run->add_option("--payload", spec.payload, "Echo mode: bytes per request, checked by checksum")
        ->check(CLI::Range(1, 65536))->capture_default_str();
    run->add_option("-t,--threads", spec.threads, "OS threads (hubs) the connections are spread over")
        ->check(CLI::Range(1, 64))->capture_default_str();
    run->add_option("--json", json_out, "Also write the results as JSON to FILE ('-': stdout, instead of the text)");
    run->add_flag("-q,--quiet", quiet, "No progress line");
    run->footer("\nExit status: 0 when at least one request succeeded, 1 when none did, 2 for bad options.\n"
                "Error kinds: connect, read, write, timeout, status (non-2xx), payload (malformed or short answer,\n"
                "echo checksum mismatch). Each error closes the connection; the next request reconnects.");

    // ---- compare
    auto* compare = app.add_subcommand(
        "compare", "Run a server unpatched and under greenrun, sweep concurrency levels, print a side-by-side table");
    CompareOptions co;
    std::string compare_mode = "keep-alive";
    bool no_progress = false, only_patched = false, only_unpatched = false;
    compare->add_option("-c,--concurrency", co.levels, "Concurrency levels, comma-separated")
        ->delimiter(',')->check(CLI::Range(1, 100000))->capture_default_str();
    compare->add_option("--hubs", co.hubs,
                        "GREEN_HUBS values (1-64, auto, adaptive): one patched run per value, comma-separated")
        ->delimiter(',')
        ->check(CLI::Range(1, 64) | CLI::IsMember({"auto", "adaptive"}))
        ->capture_default_str();
    compare->add_option("-p,--path", co.paths, "Request path; repeat for several (default /hello)");
    compare->add_option("-m,--mode", compare_mode, "keep-alive, close or echo")
        ->check(CLI::IsMember(modes))->capture_default_str();
    compare->add_option("-d,--duration", co.duration_s, "Seconds measured per level")
        ->check(CLI::PositiveNumber)->capture_default_str();
    compare->add_option("-w,--warmup", co.warmup_s, "Seconds of load before each measurement")
        ->check(CLI::Range(0.0, 3600.0))->capture_default_str();
    compare->add_option("--timeout", co.timeout_s, "Request timeout, seconds")->check(CLI::PositiveNumber)->capture_default_str();
    compare->add_option("--payload", co.payload, "Echo mode: bytes per request")->check(CLI::Range(1, 65536))->capture_default_str();
    compare->add_option("-t,--threads", co.threads, "Load generator OS threads")->check(CLI::Range(1, 64))->capture_default_str();
    compare->add_option("--port", co.port,
                        "The port the server listens on, for servers that do not print 'listening on PORT' "
                        "(checked to be free first)")
        ->check(CLI::Range(1, 65535));
    compare->add_option("--startup-timeout", co.startup_timeout_s, "Seconds to wait for the server to accept")
        ->check(CLI::PositiveNumber)->capture_default_str();
    compare->add_option("--settle-timeout", co.settle_timeout_s,
                        "After each level, seconds to wait for the server to answer a lone request (it may still "
                        "be working off queued ones); none: it is taken as hung and its run ends")
        ->check(CLI::PositiveNumber)->capture_default_str();
    compare->add_option("--before-each", co.before_each,
                        "Shell command run before each server starts, e.g. one that waits until a database has let "
                        "go of the previous server's connections (its exit status is reported, not fatal)");
    compare->add_option("--label", co.label, "Name of the server in tables (default: the program's name)");
    compare->add_option("--title", co.title, "Title of the table and chart");
    compare->add_flag("--only-patched", only_patched, "Skip the unpatched run");
    compare->add_flag("--only-unpatched", only_unpatched, "Skip the runs under greenrun");
    compare->add_option("--json", co.json_path, "Where to write the JSON results")->capture_default_str();
    compare->add_option("--svg", co.svg_path, "Where to write the chart ('' for none)")->capture_default_str();
    compare->add_option("--markdown", co.markdown_path, "Also write the tables as Markdown to FILE");
    compare->add_option("--cpu-server", co.cpu_server, "Pin the server to these CPUs (comma-separated)")->delimiter(',');
    compare->add_option("--cpu-load", co.cpu_load, "Pin the load generator to these CPUs (comma-separated)")->delimiter(',');
    compare->add_flag("--same-session", co.same_session,
                      "Run the server in greenbench's session (default: a session of its own, as a service runs; with "
                      "autogroup scheduling the kernel then shares CPU between the two before their threads)");
    compare->add_option("--greenrun", co.greenrun, "greenrun to use (default: the one next to greenbench)");
    compare->add_flag("--no-progress", no_progress, "No live progress line (it is shown only on a terminal anyway)");
    compare->add_option("command", co.command, "The server command, after --")->required();
    compare->footer(
        "\nThe server is started unpatched, then under greenrun once per --hubs value; each run waits until the\n"
        "server accepts (its 'listening on PORT' line, --port, or the one TCP port it listens on), sweeps the\n"
        "levels, and stops it (SIGTERM). While loading, the server's RSS, OS threads and CPU time are sampled\n"
        "from /proc/PID. Exit status: 0 when every run completed, 1 when a server failed, 2 for bad options.\n\n"
        "Example:\n  greenbench compare -c 16,256,2000 -p /hello -p '/upstream?ms=10' -- ./http_threads 0 9000");

    // ---- report
    auto* report = app.add_subcommand("report", "Merge JSON files from compare into one table and chart");
    std::vector<std::string> inputs;
    std::string report_svg, report_md, report_json, report_title;
    report->add_option("files", inputs, "JSON files written by greenbench compare")->required()->check(CLI::ExistingFile);
    report->add_option("--svg", report_svg, "Write the merged chart to FILE");
    report->add_option("--markdown", report_md, "Write the merged tables as Markdown to FILE");
    report->add_option("--json", report_json, "Write the merged JSON to FILE");
    report->add_option("--title", report_title, "Title of the merged table and chart");

    // ---- delay-server
    auto* delay = app.add_subcommand("delay-server",
                                     "Backend for /upstream: answers 'GET /...?ms=N' after N ms (one fiber per connection)");
    int delay_port = 0;
    delay->add_option("--port", delay_port, "Port on 127.0.0.1 (0: any free port; printed as 'listening on PORT')")
        ->check(CLI::Range(0, 65535))->capture_default_str();

    if (auto status = green_tools::parse_command_line(
            app, argc, argv, "Run 'greenbench --help' or 'greenbench SUBCOMMAND --help'."))
        return *status;

    if (*run) {
        spec.mode = parse_mode(mode);
        std::string host, path;
        int port = 0;
        if (std::string err = parse_target(url, host, port, spec.path); !err.empty()) {
            std::fprintf(stderr, "greenbench run: %s\n", err.c_str());
            return 2;
        }
        if (std::string err = resolve(host, port, spec.target); !err.empty()) {
            std::fprintf(stderr, "greenbench run: %s\n", err.c_str());
            return 2;
        }
        bool progress = !quiet && isatty(2);
        return green::run([&] {
            LoadHooks hooks;
            if (progress)
                hooks.on_tick = [](const LiveStatus& s) {
                    std::fprintf(stderr, "\r\033[K%.1f s%s  %llu ok, %llu errors", s.elapsed_s,
                                 s.warming_up ? " (warm-up)" : "", static_cast<unsigned long long>(s.ok),
                                 static_cast<unsigned long long>(s.errors));
                };
            LoadResult r = run_load(spec, hooks);
            if (progress) std::fprintf(stderr, "\r\033[K");
            if (json_out == "-") {
                std::printf("%s\n", run_json(spec, url, r).dump(2).c_str());
            } else {
                print_run(spec, url, r);
                if (!json_out.empty() && !write_file(json_out, run_json(spec, url, r).dump(2) + "\n")) return 1;
            }
            return r.ok > 0 ? 0 : 1;
        });
    }
    if (*compare) {
        co.mode = parse_mode(compare_mode);
        if (co.paths.empty()) co.paths = {"/hello"};
        co.unpatched = !only_patched;
        co.patched = !only_unpatched;
        if (!co.unpatched && !co.patched) {
            std::fprintf(stderr, "greenbench compare: --only-patched and --only-unpatched leave nothing to run\n");
            return 2;
        }
        co.progress = !no_progress && isatty(2);
        co.invocation = invocation(argc, argv);
        return green::run([&] { return run_compare(co); });
    }
    if (*report) {
        std::vector<Comparison> parts;
        for (const auto& f : inputs) {
            try {
                std::ifstream in(f);
                parts.push_back(nlohmann::json::parse(in).get<Comparison>());
            } catch (const std::exception& e) {
                std::fprintf(stderr, "greenbench report: %s is not a greenbench compare file: %s\n", f.c_str(), e.what());
                return 2;
            }
        }
        Comparison c = merge(parts);
        if (!report_title.empty()) c.title = report_title;
        std::printf("%s\n\n%s", c.title.c_str(), text_tables(c).c_str());
        bool ok = (report_svg.empty() || write_file(report_svg, svg_chart(c))) &&
                  (report_md.empty() || write_file(report_md, markdown_tables(c))) &&
                  (report_json.empty() || write_file(report_json, nlohmann::json(c).dump(2) + "\n"));
        return ok ? 0 : 1;
    }
    if (*delay) return green::run([&] { return run_delay_server(delay_port); });
    return 2;
}
