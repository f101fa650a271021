// The comparison as an SVG chart: per path, grouped bars of requests/s
// (linear from 0) and of p99 latency (log scale, whole decades), one bar per
// series, under a legend. Self-contained: no script, no external font.
#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace greenbench {

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
    auto value = [&](const Point* p) { return !p || !p->valid ? -1.0 : latency ? (p->ok ? p->latency_ms.p99 : -1.0) : p->rps; };
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

}  // namespace greenbench
