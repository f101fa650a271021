// `greenbench compare`: the same server unpatched and under greenrun, at each
// concurrency level, side by side. See commands.hpp and README.md.
#include <fmt/format.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "../common/locate.hpp"
#include "commands.hpp"
#include "report.hpp"
#include "server.hpp"

namespace greenbench {

using namespace std::chrono_literals;

namespace {

struct Variant {
    std::string name;
    ServerSpec spec;
};

std::string basename_of(const std::string& path) {
    std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::vector<int> current_cpus() {
    cpu_set_t set;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int i = 0; i < CPU_SETSIZE; ++i)
            if (CPU_ISSET(i, &set)) cpus.push_back(i);
    return cpus;
}

bool pin_self(const std::vector<int>& cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : cpus) CPU_SET(c, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

// One concurrency level against a running server, with /proc samples of the
// server taken while the load is measured.
Point measure(ServerProcess& srv, const LoadSpec& spec, const std::string& path, const std::string& what,
              bool progress) {
    ProcSample begin, end;
    ServerUsage usage;
    green::Task<void> sampler;
    LoadHooks hooks;
    hooks.on_measure_begin = [&] {
        begin = srv.sample();
        sampler = green::spawn([&] {
            for (;;) {
                ProcSample s = srv.sample();
                if (s.ok) {
                    usage.rss_mib_peak = std::max(usage.rss_mib_peak, s.rss_mib);
                    usage.threads_peak = std::max(usage.threads_peak, s.threads);
                }
                green::this_fiber::sleep_for(100ms);
            }
        }, {"proc-sampler"});
    };
    hooks.on_measure_end = [&] {
        end = srv.sample();
        sampler.cancel();
        try {
            sampler.join();
        } catch (const green::Cancelled&) {
        }
    };
    if (progress)
        hooks.on_tick = [&](const LiveStatus& s) {
            fmt::print(stderr, "\r\033[K{}  {:.1f}/{:.1f} s{}  {} ok, {} errors", what, s.elapsed_s,
                       spec.warmup_s + spec.duration_s, s.warming_up ? " (warm-up)" : "", s.ok, s.errors);
            std::fflush(stderr);
        };
    LoadResult r = run_load(spec, hooks);
    if (progress) std::fprintf(stderr, "\r\033[K");
    Point p = make_point(path, spec.concurrency, r);
    if (begin.ok && end.ok) {
        usage.sampled = true;
        usage.rss_mib_peak = std::max(usage.rss_mib_peak, end.rss_mib);
        usage.threads_peak = std::max(usage.threads_peak, end.threads);
        usage.cpu_s = end.cpu_s - begin.cpu_s;
        usage.cpu_cores = r.elapsed_s > 0 ? usage.cpu_s / r.elapsed_s : 0;
    }
    p.usage = usage;
    return p;
}

// Work the server queued during a level (a pool with thousands of waiting
// requests) must not be measured in the next one: wait until a fresh
// connection gets an answer, as a lone client would. False when none came
// within `timeout_s`: the server stopped answering.
bool settle(const LoadSpec& level, double timeout_s, const std::string& what) {
    LoadSpec probe = level;
    probe.concurrency = 1;
    probe.threads = 1;
    probe.requests = 1;
    probe.warmup_s = 0;
    probe.timeout_s = timeout_s;
    auto t0 = Clock::now();
    LoadResult r = run_load(probe);
    double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r.ok + r.errors[kStatus] + r.errors[kPayload] == 0) return false;  // any answer will do
    if (waited > 1)
        std::fprintf(stderr, "greenbench: %s: the server answered a fresh request only %.1f s later (queued work)\n",
                     what.c_str(), waited);
    return true;
}

}  // namespace

int run_compare(const CompareOptions& o) {
    if (o.command.empty()) {
        std::fprintf(stderr, "greenbench compare: no server command; put it after --, e.g.\n"
                             "  greenbench compare -- ./http_threads 0\n");
        return 2;
    }
    // Every connection is an fd here: the largest level must fit the limit.
    int max_level = *std::max_element(o.levels.begin(), o.levels.end());
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    if (static_cast<rlim_t>(max_level) + 64 > lim.rlim_cur) {
        std::fprintf(stderr,
                     "greenbench compare: concurrency %d needs %d open files, but the limit is %llu (ulimit -n); "
                     "lower --concurrency\n",
                     max_level, max_level + 64, static_cast<unsigned long long>(lim.rlim_cur));
        return 2;
    }

    std::string greenrun = o.greenrun.empty() ? green_tools::self_dir() + "/greenrun" : o.greenrun;
    if (o.patched && access(greenrun.c_str(), X_OK) != 0) {
        std::fprintf(stderr, "greenbench compare: greenrun not found at %s (give --greenrun PATH)\n", greenrun.c_str());
        return 2;
    }

    // CPU placement: the server gets --cpu-server, or every CPU greenbench
    // had when only the load is pinned.
    std::vector<int> server_cpus = o.cpu_server;
    if (!o.cpu_load.empty()) {
        if (server_cpus.empty()) server_cpus = current_cpus();
        if (!pin_self(o.cpu_load)) {
            std::fprintf(stderr, "greenbench compare: cannot pin the load to --cpu-load CPUs\n");
            return 2;
        }
    }

    std::vector<Variant> variants;
    ServerSpec base;
    base.port = o.port;
    base.startup_timeout_s = o.startup_timeout_s;
    base.cpus = server_cpus;
    base.own_session = !o.same_session;
    if (o.unpatched) {
        Variant v{"unpatched", base};
        v.spec.argv = o.command;
        variants.push_back(v);
    }
    if (o.patched)
        for (const std::string& h : o.hubs) {
            Variant v{o.hubs.size() > 1 ? fmt::format("patched hubs={}", h) : "patched", base};
            v.spec.argv = {greenrun, "--hubs", h, "--"};
            v.spec.argv.insert(v.spec.argv.end(), o.command.begin(), o.command.end());
            v.spec.strip_shim = false;
            variants.push_back(v);
        }

    Comparison cmp;
    std::string server = o.label.empty() ? basename_of(o.command.front()) : o.label;
    cmp.title = o.title.empty() ? server + ": unpatched vs greenrun" : o.title;
    cmp.mode = to_string(o.mode);
    cmp.duration_s = o.duration_s;
    cmp.warmup_s = o.warmup_s;
    cmp.load_threads = o.threads;
    cmp.paths = o.mode == Mode::Echo ? std::vector<std::string>{""} : o.paths;
    cmp.levels = o.levels;
    cmp.machine = machine_description();
    cmp.date = now_iso8601();
    cmp.command = o.invocation;

    int status = 0;
    for (const auto& v : variants) {
        Series s;
        s.server = server;
        s.variant = v.name;
        s.command = v.spec.argv;
        if (!o.before_each.empty()) {
            // What the last server left behind (a database's backends still
            // serving its closed connections) is not this server's to pay for.
            std::fflush(stdout);
            const int rc = std::system(o.before_each.c_str());
            if (rc != 0)
                std::fprintf(stderr, "greenbench compare: --before-each exited with status %d before %s\n",
                             WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc), v.name.c_str());
        }
        ServerProcess srv;
        try {
            srv.start(v.spec);
        } catch (const ServerError& e) {
            std::fprintf(stderr, "greenbench compare: %s: %s\n", v.name.c_str(), e.what());
            s.note = std::string("did not start: ") + std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
            cmp.series.push_back(s);
            status = 1;
            if (v.name == "unpatched") return 1;  // the command itself is wrong: nothing to compare
            continue;
        }
        std::fprintf(stderr, "greenbench: %s %s: pid %d, port %d\n", server.c_str(), v.name.c_str(),
                     static_cast<int>(srv.pid()), srv.port());
        Endpoint ep;
        if (std::string err = resolve("127.0.0.1", srv.port(), ep); !err.empty()) {
            std::fprintf(stderr, "greenbench compare: %s\n", err.c_str());
            return 1;
        }
        bool running = true;
        for (const auto& path : cmp.paths) {
            for (int level : o.levels) {
                if (!srv.alive()) {
                    s.note = "the server exited during the sweep (" + srv.exit_description() + ")";
                    std::fprintf(stderr, "greenbench compare: %s: %s\n%s\n", v.name.c_str(), s.note.c_str(),
                                 srv.output_tail().c_str());
                    running = false;
                    status = 1;
                    break;
                }
                LoadSpec ls;
                ls.mode = o.mode;
                ls.target = ep;
                ls.path = path;
                ls.concurrency = level;
                ls.duration_s = o.duration_s;
                ls.warmup_s = o.warmup_s;
                ls.timeout_s = o.timeout_s;
                ls.payload = o.payload;
                ls.threads = o.threads;
                std::string what = fmt::format("[{} {}] {} c={}", server, v.name,
                                               o.mode == Mode::Echo ? "echo" : path, level);
                Point p = measure(srv, ls, path, what, o.progress);
                fmt::print(stderr, "greenbench: {}: {:.0f} req/s, p99 {:.2f} ms, {} errors\n", what, p.rps,
                           p.latency_ms.p99, p.error_total());
                const bool settled = settle(ls, o.settle_timeout_s, what);
                if (v.name != "unpatched") p.shim = srv.shim_counters(std::chrono::seconds(10));
                if (v.name != "unpatched" && !settled && !srv.last_dump().empty())
                    // What every fiber of the stuck server waits on, and where, before it is stopped.
                    fmt::print(stderr, "greenbench: {}: the server's dump:\n{}", what, srv.last_dump());
                s.points.push_back(p);
                if (!settled) {
                    s.note = fmt::format("the server stopped answering: after the level at {} connections a lone "
                                         "request got no answer in {:g} s; the rest of this run was skipped",
                                         level, o.settle_timeout_s);
                    std::fprintf(stderr, "greenbench compare: %s: %s\n", v.name.c_str(), s.note.c_str());
                    running = false;
                    status = 1;
                    break;
                }
            }
            if (!running) break;
        }
        srv.stop();
        cmp.series.push_back(std::move(s));
    }

    std::printf("\n%s\n\n%s", cmp.title.c_str(), text_tables(cmp).c_str());
    if (!o.json_path.empty() && write_file(o.json_path, nlohmann::json(cmp).dump(2) + "\n"))
        std::printf("wrote %s\n", o.json_path.c_str());
    if (!o.svg_path.empty() && write_file(o.svg_path, svg_chart(cmp))) std::printf("wrote %s\n", o.svg_path.c_str());
    if (!o.markdown_path.empty() && write_file(o.markdown_path, markdown_tables(cmp)))
        std::printf("wrote %s\n", o.markdown_path.c_str());
    std::fflush(stdout);
    return status;
}

}  // namespace greenbench
