// See report.hpp. The model: a point made from a load result, the merge of
// several comparisons, and the stamps (machine, date) a comparison carries.
#include "report.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>

namespace greenbench {

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

Latency latency_ms(const Histogram& ns) {
    auto ms = [](std::uint64_t v) { return static_cast<double>(v) / 1e6; };
    return {ms(ns.percentile(0.50)), ms(ns.percentile(0.90)), ms(ns.percentile(0.99)), ms(ns.max())};
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
    p.latency_ms = latency_ms(r.latency_ns);
    p.elapsed_s = r.elapsed_s;
    p.stalled = r.stalled;
    p.load_cpu_cores = r.elapsed_s > 0 ? r.cpu_s / r.elapsed_s : 0;
    return p;
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

std::string now_iso8601() { return fmt::format("{:%Y-%m-%d %H:%M} UTC", fmt::gmtime(std::time(nullptr))); }

}  // namespace greenbench
