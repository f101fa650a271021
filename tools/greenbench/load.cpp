// See load.hpp for what is counted and how.
#include "load.hpp"

#include <sys/resource.h>

#include <atomic>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "http_response.hpp"

namespace greenbench {

using namespace std::chrono_literals;

const char* to_string(Mode m) {
    switch (m) {
        case Mode::KeepAlive: return "keep-alive";
        case Mode::Close: return "close";
        case Mode::Echo: return "echo";
    }
    return "?";
}

std::uint64_t LoadResult::error_total() const {
    std::uint64_t n = 0;
    for (auto e : errors) n += e;
    return n;
}

std::string http_request(const std::string& host, const std::string& path, bool close) {
    return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: greenbench\r\n" +
           (close ? "Connection: close\r\n\r\n" : "\r\n");
}

namespace {

enum Phase : int { kWarmup, kMeasuring, kStopped };

// State shared by every connection fiber, on every thread.
struct Shared {
    Shared(const LoadSpec& s, std::string req) : spec(s), request(std::move(req)) {}
    const LoadSpec& spec;
    std::string request;
    std::atomic<int> phase{kWarmup};
    std::atomic<std::int64_t> tickets{0};  // requests left to count (--requests)
    std::atomic<Clock::rep> measure_start{std::numeric_limits<Clock::rep>::max()};
    green::Event stop;                     // set when fibers are to end now
};

// One thread's counters: written only by its own fibers (one hub, no
// preemption); the atomics are for progress lines read from another thread.
struct PerThread {
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> errors{0};
    LoadResult result;
    Clock::time_point last_done{};
};

// FNV-1a, 64 bits.
struct Checksum {
    std::uint64_t h = 1469598103934665603ull;
    void add(const char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
    }
};

class Connection {
public:
    Connection(Shared& sh, PerThread& pt, int id) : sh_(sh), pt_(pt), id_(id) {
        if (sh.spec.mode == Mode::Echo) payload_.resize(sh.spec.payload);
    }
    ~Connection() { c_.reset(); }

    void run() {
        const LoadSpec& spec = sh_.spec;
        const bool by_count = spec.requests > 0;
        while (sh_.phase.load(std::memory_order_relaxed) != kStopped) {
            bool counted = sh_.phase.load(std::memory_order_relaxed) == kMeasuring;
            if (by_count && counted && sh_.tickets.fetch_sub(1, std::memory_order_relaxed) <= 0) break;
            auto t0 = Clock::now();
            auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec.timeout_s));
            Outcome o = one_request(deadline);
            if (o.cancelled) {
                if (t0.time_since_epoch().count() < sh_.measure_start.load(std::memory_order_relaxed))
                    ++pt_.result.stalled;
                break;
            }
            auto t1 = Clock::now();
            if (!by_count) counted = sh_.phase.load(std::memory_order_relaxed) == kMeasuring;
            if (counted) record(o, t1 - t0, t1);
            if (o.error >= 0 && o.error != kStatus) c_.reset();
            if (o.error == kConnect &&
                green::wait_until(Clock::now() + 10ms) == green::WaitResult::Cancelled)
                break;
        }
    }

private:
    void record(const Outcome& o, Clock::duration latency, Clock::time_point done) {
        LoadResult& r = pt_.result;
        pt_.last_done = done;
        if (o.error < 0) {
            ++r.ok;
            r.latency_ns.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(latency).count()));
            pt_.ok.fetch_add(1, std::memory_order_relaxed);
        } else {
            ++r.errors[o.error];
            if (r.first_error[o.error].empty()) r.first_error[o.error] = o.message;
            pt_.errors.fetch_add(1, std::memory_order_relaxed);
        }
    }

    Outcome one_request(Clock::time_point deadline) {
        int err = 0;
        if (c_.fd < 0) {
            Io io = connect_to(sh_.spec.target, c_.fd, deadline, err);
            if (io != Io::Ok) return io_error(io, kConnect, err, "connect");
        }
        if (sh_.spec.mode == Mode::Echo) return echo(deadline);
        Io io = write_all(c_.fd, sh_.request.data(), sh_.request.size(), deadline, err);
        if (io != Io::Ok) return io_error(io, kWrite, err, "sending the request");
        bool keep = false;
        Outcome o = read_http_response(c_, deadline, pt_.result.bytes_in, keep);
        // A complete answer (ok or a bad status) leaves the connection usable
        // unless the server or the mode closes it; run() closes it after any
        // other error.
        bool complete = !o.cancelled && (o.error < 0 || o.error == kStatus);
        if (complete && (!keep || sh_.spec.mode == Mode::Close)) c_.reset();
        return o;
    }

    Outcome echo(Clock::time_point deadline) {
        // A payload that differs per connection and per request, so that a
        // server answering with another connection's or an old request's
        // bytes is caught.
        std::uint64_t x = (static_cast<std::uint64_t>(id_) << 32) ^ ++seq_ ^ 0x9e3779b97f4a7c15ull;
        Checksum sent;
        for (auto& ch : payload_) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ch = static_cast<char>(x);
        }
        sent.add(payload_.data(), payload_.size());
        int err = 0;
        Io io = write_all(c_.fd, payload_.data(), payload_.size(), deadline, err);
        if (io != Io::Ok) return io_error(io, kWrite, err, "sending the payload");
        Checksum got;
        std::size_t need = payload_.size();
        while (need > 0) {
            if (c_.begin == c_.end) {
                io = c_.fill(deadline, err, pt_.result.bytes_in);
                if (io != Io::Ok) return io_error(io, kRead, err, "reading the echo");
            }
            std::size_t take = std::min(need, c_.end - c_.begin);
            got.add(c_.buf.data() + c_.begin, take);
            c_.begin += take;
            need -= take;
        }
        if (got.h != sent.h) return bad_payload("echoed bytes differ from those sent (checksum mismatch)");
        return {};
    }

    Shared& sh_;
    PerThread& pt_;
    int id_;
    Conn c_;
    std::vector<char> payload_;
    std::uint64_t seq_ = 0;
};

// One hub's share of the connections: runs until they end or `stop` is set.
// The connections are waited for with a WaitGroup, not Task::join(): join()
// empties its Task before waiting, and the canceller needs every handle.
void hub_body(Shared& sh, PerThread& pt, int first_id, int count) {
    green::WaitGroup running;
    running.add(count);
    std::vector<green::Task<void>> tasks;
    tasks.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i)
        tasks.push_back(green::spawn([&sh, &pt, &running, id = first_id + i] {
            struct Done {
                green::WaitGroup& wg;
                ~Done() { wg.done(); }
            } done{running};
            Connection(sh, pt, id).run();
        }, {"greenbench-conn", 128 * 1024}));
    auto canceller = green::spawn([&] {
        sh.stop.wait();
        for (auto& t : tasks) t.cancel();
    }, {"greenbench-stop"});
    running.wait();
    canceller.cancel();
    try {
        canceller.join();
    } catch (const green::Cancelled&) {
    }
    for (auto& t : tasks) {
        try {
            t.join();  // already finished: returns at once
        } catch (const green::Cancelled&) {
        }
    }
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double process_cpu_s() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace

LoadResult run_load(const LoadSpec& spec, const LoadHooks& hooks) {
    Shared sh(spec, http_request(spec.target.host, spec.path, spec.mode == Mode::Close));
    const int threads = std::max(1, std::min(spec.threads, spec.concurrency));
    std::vector<std::unique_ptr<PerThread>> per(static_cast<std::size_t>(threads));
    for (auto& p : per) p = std::make_unique<PerThread>();

    auto start = Clock::now();
    auto tick = [&](bool warming) {
        if (!hooks.on_tick) return;
        LiveStatus s{seconds_since(start), warming, 0, 0};
        for (auto& p : per) s.ok += p->ok.load(std::memory_order_relaxed), s.errors += p->errors.load(std::memory_order_relaxed);
        hooks.on_tick(s);
    };
    // Sleeps until `until`, ticking; in --requests mode also ends when every
    // ticket is used and every connection has finished.
    green::WaitGroup done;  // one count per hub still running connections
    auto wait_phase = [&](Clock::time_point until, bool warming, bool until_done) {
        for (;;) {
            auto now = Clock::now();
            if (!until_done && now >= until) return;
            if (until_done && done.count() == 0) return;
            auto next = now + 250ms;
            if (!until_done && next > until) next = until;
            if (until_done) done.wait_until(next);  // returns early when all are done
            else green::this_fiber::sleep_until(next);
            tick(warming);
        }
    };

    const bool by_count = spec.requests > 0;
    if (spec.warmup_s <= 0) sh.phase.store(kMeasuring);
    if (by_count) sh.tickets.store(static_cast<std::int64_t>(spec.requests));

    // Connections are split evenly; thread 0 is this hub, the others are new
    // OS threads with a hub each.
    done.add(threads);
    std::vector<std::thread> os_threads;
    std::vector<green::Task<void>> local;
    int first = 0;
    for (int t = 0; t < threads; ++t) {
        int count = spec.concurrency / threads + (t < spec.concurrency % threads ? 1 : 0);
        auto body = [&sh, &done, p = per[static_cast<std::size_t>(t)].get(), first, count] {
            hub_body(sh, *p, first, count);
            done.done();
        };
        if (t == 0) local.push_back(green::spawn(body, {"greenbench-hub0"}));
        else os_threads.emplace_back([body] { green::run(body, "greenbench-hub"); });
        first += count;
    }

    if (spec.warmup_s > 0) {
        wait_phase(start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec.warmup_s)),
                   true, false);
        sh.phase.store(kMeasuring);
    }
    auto measure_start = Clock::now();
    sh.measure_start.store(measure_start.time_since_epoch().count());
    double cpu_begin = process_cpu_s();
    if (hooks.on_measure_begin) hooks.on_measure_begin();
    if (by_count) {
        wait_phase({}, false, true);
    } else {
        wait_phase(measure_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec.duration_s)),
                   false, false);
    }
    sh.phase.store(kStopped);
    auto measure_end = Clock::now();
    double cpu_end = process_cpu_s();
    if (hooks.on_measure_end) hooks.on_measure_end();
    sh.stop.set();
    done.wait();
    for (auto& t : local) t.join();
    for (auto& t : os_threads) t.join();

    LoadResult total;
    Clock::time_point last{};
    for (auto& p : per) {
        LoadResult& r = p->result;
        total.ok += r.ok;
        for (int k = 0; k < kErrorKinds; ++k) {
            total.errors[k] += r.errors[k];
            if (total.first_error[k].empty()) total.first_error[k] = r.first_error[k];
        }
        total.bytes_in += r.bytes_in;
        total.stalled += r.stalled;
        total.latency_ns.merge(r.latency_ns);
        last = std::max(last, p->last_done);
    }
    // --requests: the window ends with the last counted answer.
    if (by_count && last > measure_start) measure_end = last;
    total.elapsed_s = std::chrono::duration<double>(measure_end - measure_start).count();
    total.cpu_s = cpu_end - cpu_begin;
    return total;
}

}  // namespace greenbench
