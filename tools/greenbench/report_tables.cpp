// The comparison as tables: aligned for a terminal, or GitHub-flavoured
// Markdown. One table per path for throughput (with a ratio column per
// patched series against its unpatched run), then the server's resource use
// and the shim's counters where they were sampled. Cells are strings already
// formatted, so both renderings show the same digits.
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace greenbench {

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
            return std::vector<std::string>{thousands(p.rps), p.ok ? format_ms(p.latency_ms.p99) : "-", errors};
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
            for (std::uint64_t v : {k.switches, k.parks_fd, k.parks_timer, k.parks_sync, k.pool_jobs, k.hub_blocked_episodes})
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

}  // namespace greenbench
