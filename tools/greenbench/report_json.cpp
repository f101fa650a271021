// greenbench's JSON: the files `compare` writes and `report` reads back. The
// field names are an interface: tests and the scenario scripts read them.
// Optional parts (first_error, note, server, shim_counters) appear only when
// there is something to say; reading takes defaults for what a file lacks.
#include "report.hpp"

namespace greenbench {

using nlohmann::json;

json to_json(const Comparison& c) {
    json series = json::array();
    for (const auto& s : c.series) {
        json points = json::array();
        for (const auto& p : s.points) {
            json errors = json::object();
            for (int k = 0; k < kErrorKinds; ++k) errors[kErrorNames[k]] = p.errors[k];
            json point = {{"path", p.path},
                          {"concurrency", p.concurrency},
                          {"valid", p.valid},
                          {"requests_per_s", p.rps},
                          {"ok", p.ok},
                          {"errors", errors},
                          {"latency_ms", {{"p50", p.p50_ms}, {"p90", p.p90_ms}, {"p99", p.p99_ms}, {"max", p.max_ms}}},
                          {"elapsed_s", p.elapsed_s},
                          {"stalled", p.stalled},
                          {"load_cpu_cores", p.load_cpu_cores}};
            if (!p.first_error.empty()) point["first_error"] = p.first_error;
            if (p.shim.present)
                point["shim_counters"] = {{"fibers", p.shim.fibers},
                                          {"switches", p.shim.switches},
                                          {"parks_fd", p.shim.parks_fd},
                                          {"parks_timer", p.shim.parks_timer},
                                          {"parks_sync", p.shim.parks_sync},
                                          {"pool_jobs", p.shim.pool_jobs},
                                          {"hub_blocked_episodes", p.shim.blocked_episodes}};
            if (p.usage.sampled)
                point["server"] = {{"rss_mib_peak", p.usage.rss_mib_peak},
                                   {"threads_peak", p.usage.threads_peak},
                                   {"cpu_s", p.usage.cpu_s},
                                   {"cpu_cores", p.usage.cpu_cores}};
            points.push_back(point);
        }
        json js = {{"server", s.server}, {"variant", s.variant}, {"command", s.command}, {"points", points}};
        if (!s.note.empty()) js["note"] = s.note;
        series.push_back(js);
    }
    return {{"greenbench", 1},     {"title", c.title},       {"mode", c.mode},
            {"duration_s", c.duration_s}, {"warmup_s", c.warmup_s}, {"load_threads", c.load_threads},
            {"paths", c.paths},    {"concurrency", c.levels}, {"series", series},
            {"machine", c.machine}, {"date", c.date},         {"command", c.command}};
}

Comparison from_json(const json& j) {
    Comparison c;
    c.title = j.value("title", "");
    c.mode = j.at("mode").get<std::string>();
    c.duration_s = j.value("duration_s", 0.0);
    c.warmup_s = j.value("warmup_s", 0.0);
    c.load_threads = j.value("load_threads", 1);
    c.paths = j.at("paths").get<std::vector<std::string>>();
    c.levels = j.at("concurrency").get<std::vector<int>>();
    c.machine = j.value("machine", "");
    c.date = j.value("date", "");
    c.command = j.value("command", "");
    for (const auto& js : j.at("series")) {
        Series s;
        s.server = js.at("server").get<std::string>();
        s.variant = js.at("variant").get<std::string>();
        s.command = js.value("command", std::vector<std::string>{});
        s.note = js.value("note", "");
        for (const auto& jp : js.at("points")) {
            Point p;
            p.path = jp.at("path").get<std::string>();
            p.concurrency = jp.at("concurrency").get<int>();
            p.valid = jp.value("valid", true);
            p.rps = jp.value("requests_per_s", 0.0);
            p.ok = jp.value("ok", std::uint64_t{0});
            for (int k = 0; k < kErrorKinds; ++k) p.errors[k] = jp.at("errors").value(kErrorNames[k], std::uint64_t{0});
            p.first_error = jp.value("first_error", "");
            const auto& lat = jp.at("latency_ms");
            p.p50_ms = lat.value("p50", 0.0);
            p.p90_ms = lat.value("p90", 0.0);
            p.p99_ms = lat.value("p99", 0.0);
            p.max_ms = lat.value("max", 0.0);
            p.elapsed_s = jp.value("elapsed_s", 0.0);
            p.stalled = jp.value("stalled", std::uint64_t{0});
            p.load_cpu_cores = jp.value("load_cpu_cores", 0.0);
            if (jp.contains("server")) {
                const auto& u = jp["server"];
                p.usage.sampled = true;
                p.usage.rss_mib_peak = u.value("rss_mib_peak", 0.0);
                p.usage.threads_peak = u.value("threads_peak", 0);
                p.usage.cpu_s = u.value("cpu_s", 0.0);
                p.usage.cpu_cores = u.value("cpu_cores", 0.0);
            }
            if (jp.contains("shim_counters")) {
                const auto& k = jp.at("shim_counters");
                p.shim.present = true;
                p.shim.fibers = k.value("fibers", std::uint64_t{0});
                p.shim.switches = k.value("switches", std::uint64_t{0});
                p.shim.parks_fd = k.value("parks_fd", std::uint64_t{0});
                p.shim.parks_timer = k.value("parks_timer", std::uint64_t{0});
                p.shim.parks_sync = k.value("parks_sync", std::uint64_t{0});
                p.shim.pool_jobs = k.value("pool_jobs", std::uint64_t{0});
                p.shim.blocked_episodes = k.value("hub_blocked_episodes", std::uint64_t{0});
            }
            s.points.push_back(p);
        }
        c.series.push_back(std::move(s));
    }
    return c;
}

}  // namespace greenbench
