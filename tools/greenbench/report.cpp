// See report.hpp.
#include "report.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>

namespace greenbench {

using nlohmann::json;

std::uint64_t Point::error_total() const {
    std::uint64_t n = 0;
    for (auto e : errors) n += e;
    return n;
}

const Point* Series::find(const std::string& path, int concurrency) const {
    for (const auto& p : points)
        if (p.path == path && p.concurrency == concurrency) return &p;
    return nullptr;
}

ShimCounters parse_shim_counters(const std::string& line) {
    ShimCounters k;
    unsigned long long v[7];
    if (std::sscanf(line.c_str(),
                    "green: counters: fibers %llu, switches %llu, parks fd %llu, timer %llu, sync %llu, pool jobs %llu, "
                    "hub-blocked episodes %llu",
                    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 7)
        return k;
    k = ShimCounters{true, v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    return k;
}

Point make_point(const std::string& path, int concurrency, const LoadResult& r) {
    Point p;
    p.path = path;
    p.concurrency = concurrency;
    p.valid = true;
    p.rps = r.rps();
    p.ok = r.ok;
    p.errors = r.errors;
    for (int k = 0; k < kErrorKinds; ++k)
        if (r.errors[k] && p.first_error.empty()) p.first_error = std::string(kErrorNames[k]) + ": " + r.first_error[k];
    auto to_ms = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e6; };
    p.p50_ms = to_ms(r.latency_ns.percentile(0.50));
    p.p90_ms = to_ms(r.latency_ns.percentile(0.90));
    p.p99_ms = to_ms(r.latency_ns.percentile(0.99));
    p.max_ms = to_ms(r.latency_ns.max());
    p.elapsed_s = r.elapsed_s;
    p.stalled = r.stalled;
    p.load_cpu_cores = r.elapsed_s > 0 ? r.cpu_s / r.elapsed_s : 0;
    return p;
}

// ---------------------------------------------------------------- JSON

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

Comparison merge(const std::vector<Comparison>& parts) {
    Comparison out;
    if (parts.empty()) return out;
    out = parts.front();
    out.series.clear();
    out.paths.clear();
    out.levels.clear();
    for (const auto& c : parts) {
        for (const auto& p : c.paths)
            if (std::find(out.paths.begin(), out.paths.end(), p) == out.paths.end()) out.paths.push_back(p);
        for (int l : c.levels)
            if (std::find(out.levels.begin(), out.levels.end(), l) == out.levels.end()) out.levels.push_back(l);
        for (const auto& s : c.series) out.series.push_back(s);
        if (&c != &parts.front() && out.title.find(c.title) == std::string::npos) out.title += " / " + c.title;
    }
    std::sort(out.levels.begin(), out.levels.end());
    return out;
}

// ---------------------------------------------------------------- tables

namespace {

std::string thousands(double v) {
    auto n = static_cast<long long>(std::llround(v));
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return (n < 0 ? "-" : "") + out;
}

}  // namespace

std::string format_ms(double v) {
    if (v >= 100) return fmt::format("{:.0f}", v);
    if (v >= 10) return fmt::format("{:.1f}", v);
    return fmt::format("{:.2f}", v);
}

namespace {

// The series each ratio column compares: every series against the first one
// of the same server (its unpatched run, as compare orders them).
struct RatioColumn {
    std::size_t series, base;
};
std::vector<RatioColumn> ratio_columns(const Comparison& c) {
    std::vector<RatioColumn> cols;
    std::map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < c.series.size(); ++i) {
        auto [it, inserted] = first.emplace(c.series[i].server, i);
        if (!inserted) cols.push_back({i, it->second});
    }
    return cols;
}

bool one_server(const Comparison& c) {
    for (const auto& s : c.series)
        if (s.server != c.series.front().server) return false;
    return true;
}

std::string series_name(const Comparison& c, const Series& s) { return one_server(c) ? s.variant : s.label(); }

std::string ratio_name(const Comparison& c, const RatioColumn& r) {
    const Series &a = c.series[r.series], &b = c.series[r.base];
    std::string name = a.variant + " / " + b.variant;
    return one_server(c) ? name : a.server + " " + name;
}

std::string path_heading(const Comparison& c, const std::string& path) {
    std::string what = c.mode == "echo" ? "TCP echo" : "GET " + path;
    return fmt::format("{} ({}; {:g} s per level after {:g} s warm-up; {} load thread{})", what, c.mode, c.duration_s,
                       c.warmup_s, c.load_threads, c.load_threads == 1 ? "" : "s");
}

// A table as rows of cells, rendered aligned (terminal) or as Markdown.
struct Table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;

    std::string text() const {
        std::vector<std::size_t> width(header.size());
        auto measure = [&](const std::vector<std::string>& r) {
            for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
        };
        measure(header);
        for (const auto& r : rows) measure(r);
        auto line = [&](const std::vector<std::string>& r) {
            std::string s;
            for (std::size_t i = 0; i < r.size(); ++i) {
                if (i) s += i == 1 ? " | " : "  ";
                s += std::string(width[i] - r[i].size(), ' ') + r[i];
            }
            return s + "\n";
        };
        std::string out = line(header);
        std::size_t total = 0;
        for (auto w : width) total += w + 2;
        out += std::string(total, '-') + "\n";
        for (const auto& r : rows) out += line(r);
        return out;
    }
    std::string markdown() const {
        auto line = [](const std::vector<std::string>& r) {
            std::string s = "|";
            for (const auto& cell : r) s += " " + cell + " |";
            return s + "\n";
        };
        std::string out = line(header) + "|";
        for (std::size_t i = 0; i < header.size(); ++i) out += i == 0 ? " ---: |" : " ---: |";
        out += "\n";
        for (const auto& r : rows) out += line(r);
        return out;
    }
};

// Rows are concurrency levels; each series contributes the columns `names`
// (the first prefixed with the series' name), filled by `cells` from its
// point, or "-" where the point was not measured or `cells` gives nothing.
// `extra` appends cells at the end of a row. Levels with no cell are left out.
Table per_series_table(const Comparison& c, const std::string& path, const std::vector<std::string>& names,
                       const std::function<std::vector<std::string>(const Point&)>& cells,
                       const std::function<void(int level, std::vector<std::string>& row)>& extra = {}) {
    Table t;
    t.header.push_back("concurrency");
    for (const auto& s : c.series)
        for (std::size_t i = 0; i < names.size(); ++i) t.header.push_back(i == 0 ? series_name(c, s) + " " + names[i] : names[i]);
    for (int level : c.levels) {
        std::vector<std::string> row{std::to_string(level)};
        bool any = false;
        for (const auto& s : c.series) {
            const Point* p = s.find(path, level);
            std::vector<std::string> v = p && p->valid ? cells(*p) : std::vector<std::string>{};
            any = any || !v.empty();
            if (v.empty()) v.assign(names.size(), "-");
            row.insert(row.end(), v.begin(), v.end());
        }
        if (!any) continue;
        if (extra) extra(level, row);
        t.rows.push_back(row);
    }
    return t;
}

Table throughput_table(const Comparison& c, const std::string& path) {
    auto ratios = ratio_columns(c);
    Table t = per_series_table(
        c, path, {"req/s", "p99 ms", "errors"},
        [](const Point& p) {
            std::string errors = thousands(static_cast<double>(p.error_total()));
            if (p.stalled) errors += "+" + thousands(static_cast<double>(p.stalled)) + " stalled";
            return std::vector<std::string>{thousands(p.rps), p.ok ? format_ms(p.p99_ms) : "-", errors};
        },
        [&](int level, std::vector<std::string>& row) {
            for (const auto& r : ratios) {
                const Point* a = c.series[r.series].find(path, level);
                const Point* b = c.series[r.base].find(path, level);
                row.push_back(a && b && a->valid && b->valid && b->rps > 0 ? fmt::format("{:.2f}x", a->rps / b->rps)
                                                                           : "-");
            }
        });
    for (const auto& r : ratios) t.header.push_back(ratio_name(c, r));
    return t;
}

Table usage_table(const Comparison& c, const std::string& path) {
    return per_series_table(c, path, {"RSS MiB", "threads", "CPU cores", "load CPU"}, [](const Point& p) {
        if (!p.usage.sampled) return std::vector<std::string>{};
        return std::vector<std::string>{fmt::format("{:.1f}", p.usage.rss_mib_peak), std::to_string(p.usage.threads_peak),
                                        fmt::format("{:.2f}", p.usage.cpu_cores), fmt::format("{:.2f}", p.load_cpu_cores)};
    });
}

// Per patched series: the shim's counters after each level (cumulative).
Table shim_table(const Comparison& c, const std::string& path) {
    Table t;
    t.header.push_back("concurrency");
    std::vector<const Series*> with;
    for (const auto& s : c.series) {
        bool any = false;
        for (const auto& p : s.points) any = any || (p.path == path && p.shim.present);
        if (!any) continue;
        with.push_back(&s);
        t.header.push_back(series_name(c, s) + " switches");
        for (const char* n : {"fd parks", "timer parks", "sync parks", "pool jobs", "hub blocked"}) t.header.push_back(n);
    }
    if (with.empty()) return t;
    for (int level : c.levels) {
        std::vector<std::string> row{std::to_string(level)};
        bool any = false;
        for (const Series* s : with) {
            const Point* p = s->find(path, level);
            if (!p || !p->shim.present) {
                row.insert(row.end(), 6, "-");
                continue;
            }
            any = true;
            const ShimCounters& k = p->shim;
            for (std::uint64_t v : {k.switches, k.parks_fd, k.parks_timer, k.parks_sync, k.pool_jobs, k.blocked_episodes})
                row.push_back(thousands(static_cast<double>(v)));
        }
        if (any) t.rows.push_back(row);
    }
    return t;
}

constexpr const char* kShimHeading =
    "shim counters after each level (cumulative since the server started; from its GREEN_DUMP_SIGNAL dump)";

std::string error_notes(const Comparison& c, const std::string& path, bool markdown) {
    std::string out;
    for (const auto& s : c.series) {
        if (!s.note.empty()) out += (markdown ? "- " : "  ") + s.label() + ": " + s.note + "\n";
        for (const auto& p : s.points) {
            if (p.path != path || !p.valid) continue;
            if (p.stalled)
                out += fmt::format("{}{} at {}: {} request{} sent before the window got no answer in it "
                                   "(queued behind others, or the server stalled)\n",
                                   markdown ? "- " : "  ", s.label(), p.concurrency, p.stalled,
                                   p.stalled == 1 ? "" : "s");
            if (p.error_total() == 0) continue;
            std::string kinds;
            for (int k = 0; k < kErrorKinds; ++k)
                if (p.errors[k]) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kErrorNames[k], p.errors[k]);
            out += fmt::format("{}{} at {}: errors {} (first: {})\n", markdown ? "- " : "  ", s.label(), p.concurrency,
                               kinds, p.first_error);
        }
    }
    return out;
}

}  // namespace

std::string text_tables(const Comparison& c) {
    std::string out;
    for (const auto& path : c.paths) {
        out += path_heading(c, path) + "\n\n" + throughput_table(c, path).text();
        std::string notes = error_notes(c, path, false);
        if (!notes.empty()) out += "\n" + notes;
        Table u = usage_table(c, path);
        if (!u.rows.empty()) out += "\nserver while loaded: peak RSS, peak OS threads, CPU cores busy; load CPU: greenbench's own cores busy\n\n" + u.text();
        Table k = shim_table(c, path);
        if (!k.rows.empty()) out += std::string("\n") + kShimHeading + "\n\n" + k.text();
        out += "\n";
    }
    return out;
}

std::string markdown_tables(const Comparison& c) {
    std::string out;
    for (const auto& path : c.paths) {
        out += "**" + path_heading(c, path) + "**\n\n" + throughput_table(c, path).markdown();
        std::string notes = error_notes(c, path, true);
        if (!notes.empty()) out += "\n" + notes;
        Table u = usage_table(c, path);
        if (!u.rows.empty()) out += "\nServer while loaded (peak RSS, peak OS threads, CPU cores busy; load CPU: greenbench's own cores busy):\n\n" + u.markdown();
        Table k = shim_table(c, path);
        if (!k.rows.empty()) out += std::string("\nS") + (kShimHeading + 1) + ":\n\n" + k.markdown();
        out += "\n";
    }
    return out;
}

// ---------------------------------------------------------------- SVG

namespace {

const char* const kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

std::string esc(const std::string& s) {
    std::string o;
    for (char ch : s) {
        switch (ch) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            default: o += ch;
        }
    }
    return o;
}

// A "nice" tick step (1, 2, 2.5 or 5 times a power of ten) giving at most 5
// steps up to v.
double nice_step(double v) {
    if (v <= 0) return 1;
    double raw = v / 5, p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (m * p >= raw) return m * p;
    return 10 * p;
}

std::string short_number(double v) {
    if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
    if (v >= 1e4) return fmt::format("{:.0f}k", v / 1e3);
    if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
    return fmt::format("{:.0f}", v);
}

// Grouped bars: one group per concurrency level, one bar per series.
// `log` plots log10 (latencies span orders of magnitude).
void bar_panel(std::string& svg, const Comparison& c, const std::string& path, double x0, double y0, double w,
               double h, const std::string& title, bool latency) {
    const double left = 56, bottom = 34, top = 26;
    const double pw = w - left - 10, ph = h - top - bottom;
    auto value = [&](const Point* p) { return !p || !p->valid ? -1.0 : latency ? (p->ok ? p->p99_ms : -1.0) : p->rps; };
    double vmax = 0, vmin = 1e300;
    for (const auto& s : c.series)
        for (int l : c.levels)
            if (double v = value(s.find(path, l)); v > 0) vmax = std::max(vmax, v), vmin = std::min(vmin, v);
    svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"t\">{}</text>\n", x0 + left, y0 + 16, esc(title));
    if (vmax <= 0) {
        svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"s\">no data</text>\n", x0 + left + 10, y0 + top + ph / 2);
        return;
    }
    // Axis: linear from 0 for throughput; log10 over whole decades for latency.
    const double step = nice_step(vmax);
    double lo = 0, hi = step * std::ceil(vmax * 1.08 / step);  // room for the value labels
    if (latency) {
        lo = std::pow(10.0, std::floor(std::log10(vmin)));
        hi = std::pow(10.0, std::ceil(std::log10(vmax)));
        if (hi <= lo) hi = lo * 10;
    }
    auto ypos = [&](double v) {
        double f = latency ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : v / hi;
        return y0 + top + ph * (1 - std::clamp(f, 0.0, 1.0));
    };
    std::vector<double> ticks;
    if (latency)
        for (double t = lo; t <= hi * 1.001; t *= 10) ticks.push_back(t);
    else
        for (double t = 0; t <= hi * 1.001; t += step) ticks.push_back(t);
    for (double t : ticks) {
        double y = ypos(latency ? t : std::max(t, 0.0));
        svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"g\"/>\n", x0 + left, y,
                           x0 + left + pw, y);
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"s\" text-anchor=\"end\">{}</text>\n", x0 + left - 4,
                           y + 4, latency ? format_ms(t) : short_number(t));
    }
    const double group = pw / static_cast<double>(c.levels.size());
    const double bar = std::min(28.0, group * 0.8 / static_cast<double>(c.series.size()));
    for (std::size_t li = 0; li < c.levels.size(); ++li) {
        double gx = x0 + left + group * static_cast<double>(li) + (group - bar * static_cast<double>(c.series.size())) / 2;
        for (std::size_t si = 0; si < c.series.size(); ++si) {
            double v = value(c.series[si].find(path, c.levels[li]));
            if (v <= 0) continue;
            double y = ypos(v), x = gx + bar * static_cast<double>(si);
            svg += fmt::format(
                "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{}: {} at "
                "concurrency {}</title></rect>\n",
                x, y, bar - 1, y0 + top + ph - y, kColors[si % 8], esc(c.series[si].label()),
                latency ? format_ms(v) + " ms p99" : short_number(v) + " req/s", c.levels[li]);
            if (bar >= 14)
                svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"v\" text-anchor=\"middle\">{}</text>\n",
                                   x + bar / 2, y - 3, latency ? format_ms(v) : short_number(v));
        }
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"s\" text-anchor=\"middle\">{}</text>\n",
                           x0 + left + group * (static_cast<double>(li) + 0.5), y0 + top + ph + 16, c.levels[li]);
    }
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"a\"/>\n", x0 + left,
                       y0 + top + ph, x0 + left + pw, y0 + top + ph);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"s\" text-anchor=\"middle\">concurrent connections</text>\n",
                       x0 + left + pw / 2, y0 + h - 4);
}

}  // namespace

std::string svg_chart(const Comparison& c) {
    const double panel_w = 480, panel_h = 280, legend_h = 24.0 * static_cast<double>((c.series.size() + 2) / 3) + 44;
    const double width = panel_w * 2, height = legend_h + panel_h * static_cast<double>(c.paths.size()) + 10;
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" "
        "font-family=\"sans-serif\">\n"
        "<style>.t{{font-size:14px;font-weight:bold}} .s{{font-size:11px;fill:#444}} .v{{font-size:9px;fill:#222}} "
        ".g{{stroke:#ddd;stroke-width:1}} .a{{stroke:#888;stroke-width:1}} .h{{font-size:16px;font-weight:bold}}</style>\n"
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        width, height, width, height);
    svg += fmt::format("<text x=\"12\" y=\"22\" class=\"h\">{}</text>\n",
                       esc(c.title.empty() ? "greenbench compare" : c.title));
    for (std::size_t i = 0; i < c.series.size(); ++i) {
        double x = 12 + 310.0 * static_cast<double>(i % 3), y = 40 + 24.0 * static_cast<double>(i / 3);
        svg += fmt::format("<rect x=\"{:.0f}\" y=\"{:.0f}\" width=\"14\" height=\"14\" fill=\"{}\"/>", x, y, kColors[i % 8]);
        svg += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\" class=\"s\">{}</text>\n", x + 20, y + 12,
                           esc(c.series[i].label()));
    }
    for (std::size_t pi = 0; pi < c.paths.size(); ++pi) {
        double y = legend_h + panel_h * static_cast<double>(pi);
        std::string what = c.mode == "echo" ? "TCP echo" : c.paths[pi];
        bar_panel(svg, c, c.paths[pi], 0, y, panel_w, panel_h, what + ": requests/s (higher is better)", false);
        bar_panel(svg, c, c.paths[pi], panel_w, y, panel_w, panel_h, what + ": p99 ms, log scale (lower is better)",
                  true);
    }
    svg += "</svg>\n";
    return svg;
}

bool write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    f << text;
    f.close();
    if (!f) std::fprintf(stderr, "greenbench: cannot write %s\n", path.c_str());
    return static_cast<bool>(f);
}

std::string machine_description() {
    std::string model;
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    utsname u{};
    uname(&u);
    return fmt::format("{} CPUs ({}), Linux {}", sysconf(_SC_NPROCESSORS_ONLN), model.empty() ? "unknown" : model,
                       u.release);
}

std::string now_iso8601() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
    return buf;
}

}  // namespace greenbench
