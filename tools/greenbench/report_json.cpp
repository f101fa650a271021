// greenbench's JSON: the files `compare` writes and `report` reads back, and
// the object `run --json` prints. The field names are an interface: tests and
// the scenario scripts read them, so a member may be renamed but its field
// may not. Optional parts (first_error, note, server, shim_counters) appear
// only when there is something to say. Reading is lenient the same way it
// always was: what a file lacks keeps the struct's default (a point counts as
// valid), except the fields no reader can do without. ServerUsage,
// ShimCounters and Latency, whose fields are their members' names, have
// theirs from nlohmann's macro in report.hpp.
#include "report.hpp"

namespace greenbench {

using nlohmann::json;

namespace {

// Sets `out` from j[key] when the key is there (true); leaves the default
// otherwise.
template <class T>
bool optional_field(const json& j, const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end()) return false;
    it->get_to(out);
    return true;
}

json error_counts(const std::array<std::uint64_t, kErrorKinds>& errors) {
    json j = json::object();
    for (int k = 0; k < kErrorKinds; ++k) j[kErrorNames[k]] = errors[k];
    return j;
}

}  // namespace

void to_json(json& j, const Point& p) {
    j = {{"path", p.path},
         {"concurrency", p.concurrency},
         {"valid", p.valid},
         {"requests_per_s", p.rps},
         {"ok", p.ok},
         {"errors", error_counts(p.errors)},
         {"latency_ms", p.latency_ms},
         {"elapsed_s", p.elapsed_s},
         {"stalled", p.stalled},
         {"load_cpu_cores", p.load_cpu_cores}};
    if (!p.first_error.empty()) j["first_error"] = p.first_error;
    if (p.shim.present) j["shim_counters"] = p.shim;
    if (p.usage.sampled) j["server"] = p.usage;
}

void from_json(const json& j, Point& p) {
    j.at("path").get_to(p.path);
    j.at("concurrency").get_to(p.concurrency);
    p.valid = j.value("valid", true);
    optional_field(j, "requests_per_s", p.rps);
    optional_field(j, "ok", p.ok);
    const json& errors = j.at("errors");
    for (int k = 0; k < kErrorKinds; ++k) p.errors[k] = errors.value(kErrorNames[k], std::uint64_t{0});
    optional_field(j, "first_error", p.first_error);
    j.at("latency_ms").get_to(p.latency_ms);
    optional_field(j, "elapsed_s", p.elapsed_s);
    optional_field(j, "stalled", p.stalled);
    optional_field(j, "load_cpu_cores", p.load_cpu_cores);
    p.usage.sampled = optional_field(j, "server", p.usage);
    p.shim.present = optional_field(j, "shim_counters", p.shim);
}

void to_json(json& j, const Series& s) {
    j = {{"server", s.server}, {"variant", s.variant}, {"command", s.command}, {"points", s.points}};
    if (!s.note.empty()) j["note"] = s.note;
}

void from_json(const json& j, Series& s) {
    j.at("server").get_to(s.server);
    j.at("variant").get_to(s.variant);
    optional_field(j, "command", s.command);
    optional_field(j, "note", s.note);
    j.at("points").get_to(s.points);
}

void to_json(json& j, const Comparison& c) {
    j = {{"greenbench", 1},
         {"title", c.title},
         {"mode", c.mode},
         {"duration_s", c.duration_s},
         {"warmup_s", c.warmup_s},
         {"load_threads", c.load_threads},
         {"paths", c.paths},
         {"concurrency", c.levels},
         {"series", c.series},
         {"machine", c.machine},
         {"date", c.date},
         {"command", c.command}};
}

void from_json(const json& j, Comparison& c) {
    optional_field(j, "title", c.title);
    j.at("mode").get_to(c.mode);
    optional_field(j, "duration_s", c.duration_s);
    optional_field(j, "warmup_s", c.warmup_s);
    optional_field(j, "load_threads", c.load_threads);
    j.at("paths").get_to(c.paths);
    j.at("concurrency").get_to(c.levels);
    optional_field(j, "machine", c.machine);
    optional_field(j, "date", c.date);
    optional_field(j, "command", c.command);
    j.at("series").get_to(c.series);
}

void to_json(json& j, const LoadResult& r) {
    json first = json::object();
    for (int k = 0; k < kErrorKinds; ++k)
        if (r.errors[k]) first[kErrorNames[k]] = r.first_error[k];
    j = {{"ok", r.ok},
         {"errors", error_counts(r.errors)},
         {"first_errors", first},
         {"error_total", r.error_total()},
         {"requests_per_s", r.rps()},
         {"elapsed_s", r.elapsed_s},
         {"bytes_in", r.bytes_in},
         {"stalled", r.stalled},
         {"cpu_s", r.cpu_s},
         {"latency_ms", latency_ms(r.latency_ns)}};
}

}  // namespace greenbench
