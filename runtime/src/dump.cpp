// The on-demand dump: every fiber, hub by hub, with what it waits on, for
// how long, and its stack, written to stderr while the program keeps going.
//
// Trigger: GREEN_DUMP_SIGNAL (default SIGQUIT), or `greenrun --dump PID`,
// which sends that signal. The handler only bumps a futex word; a dump
// thread (os::start_plain_thread: no program signal lands on it) does the
// work. Why SIGQUIT, and what the program can tell: ARCHITECTURE.md.
//
// A hub's fibers may be read and walked only on that hub's thread (they are
// resumed only there; their lists and waits are hub-thread state). So the
// dump thread posts a request to each hub's remote queue; the hub serves it
// from its scheduler, where none of its fibers runs, copying names, waits and
// pcs into the request. The dump thread names the pcs and prints. A hub that
// does not reach its scheduler in time is held by one fiber: that fiber's
// stack is taken through a signal instead (backtrace.cpp), and the hub's late
// answer, when it comes, is dropped.
//
// Invariants: a request is owned by the dump thread and the hub together
// (refs), so either may finish first; the handler is installed only over
// SIG_DFL, so a disposition the program inherited or chose is left alone.
#include <green/run.hpp>

#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "backtrace.hpp"
#include "hub.hpp"
#include "os.hpp"

namespace green::detail {

void describe_wait_on_hub(const FiberRecord* f, const Hub* h, std::string& out);  // deadlock.cpp

namespace {

constexpr unsigned kAnswerMs = 1000;  // a hub that has not started answering by then is held by a fiber

struct FiberInfo {
    std::uint64_t id;
    char name[32];
    const char* state;
    std::string wait;
    double parked_ms;  // < 0: not parked
    int trace;         // index into DumpRequest::traces, -1: none
};

struct DumpRequest {
    RemoteNode node{nullptr, RemoteNode::kDump, nullptr};
    std::atomic<std::uint32_t> phase{0};  // 0 queued, 1 being served, 2 served
    std::atomic<int> refs{2};
    unsigned hub_index = 0;
    pid_t tid = 0;
    std::vector<FiberInfo> fibers;
    std::vector<Trace> traces;

    void drop() {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
};

std::atomic<std::uint32_t> g_requests{0};  // bumped by the signal handler

void on_dump_signal(int) {
    const int saved_errno = errno;
    g_requests.fetch_add(1, std::memory_order_release);
    os::futex_wake(&g_requests, 1);
    errno = saved_errno;
}

void wait_phase(DumpRequest* r, std::uint32_t at_least, unsigned timeout_ms) {
    timespec start{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        std::uint32_t p = r->phase.load(std::memory_order_acquire);
        if (p >= at_least) return;
        timespec now{};
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (timeout_ms && elapsed >= static_cast<long>(timeout_ms)) return;
        timespec left{0, 100 * 1000000L};  // re-check now and then; wakes are futex-driven
        os::raw_syscall6(SYS_futex, reinterpret_cast<long>(&r->phase), FUTEX_WAIT_PRIVATE, p,
                         reinterpret_cast<long>(&left), 0, 0);
    }
}

const char* state_name(const FiberRecord* f) {
    switch (f->state) {
        case FiberState::Runnable: return "runnable";
        case FiberState::Running: return "running";
        case FiberState::Suspended: return "parked";
        default: return nullptr;
    }
}

void dump_all() {
    std::vector<DumpRequest*> requests;
    for_each_hub(
        [](Hub* h, void* p) {
            auto* r = new DumpRequest();
            r->node.owner = r;
            r->hub_index = h->index();
            r->tid = h->tid();
            static_cast<std::vector<DumpRequest*>*>(p)->push_back(r);
            h->post_dump_request(&r->node);
        },
        &requests);
    char buf[256];
    std::string out;
    std::snprintf(buf, sizeof buf, "green: dump of pid %d: %zu hub(s)\n", static_cast<int>(getpid()), requests.size());
    out += buf;
    // The counters GREEN_STATS prints at exit, as of now: greenbench reads
    // this line after each load level.
    const Stats s = green::stats();
    std::snprintf(buf, sizeof buf,
                  "green: counters: fibers %" PRIu64 ", switches %" PRIu64 ", parks fd %" PRIu64 ", timer %" PRIu64
                  ", sync %" PRIu64 ", pool jobs %" PRIu64 ", hub-blocked episodes %" PRIu64 ", fibers moved %" PRIu64 "\n",
                  s.fibers_spawned, s.switches, s.fd_waits, s.timer_waits, s.sync_waits, s.pool_jobs, s.blocked_episodes,
                  s.fibers_moved);
    out += buf;
    Symbolizer names;
    // Identical stacks (a thousand connections parked in the same read) are
    // printed once; later fibers refer to the first.
    std::unordered_map<std::string, std::uint64_t> first_with;
    std::size_t total = 0;
    for (DumpRequest* r : requests) {
        wait_phase(r, 1, kAnswerMs);
        if (r->phase.load(std::memory_order_acquire) == 0) {
            Trace t;
            const char* why = "";
            bool ok = capture_thread(r->tid, t, kAnswerMs, &why);
            std::snprintf(buf, sizeof buf,
                          "  hub %u (thread %d): did not reach its scheduler within %u ms; it runs fiber %" PRIu64 ":\n",
                          r->hub_index, static_cast<int>(r->tid), kAnswerMs, ok ? t.fiber_id : std::uint64_t{0});
            out += buf;
            if (ok) names.append(t, out, "      ");
            else (out += "      (no backtrace: ") += why, out += ")\n";
            r->drop();
            continue;
        }
        wait_phase(r, 2, 0);
        std::snprintf(buf, sizeof buf, "  hub %u (thread %d): %zu fiber(s)\n", r->hub_index, static_cast<int>(r->tid),
                      r->fibers.size());
        out += buf;
        total += r->fibers.size();
        for (const FiberInfo& f : r->fibers) {
            std::snprintf(buf, sizeof buf, "    fiber %" PRIu64 " \"%s\" %s", f.id, f.name, f.state);
            out += buf;
            if (f.parked_ms >= 0) {
                std::snprintf(buf, sizeof buf, " for %.0f ms", f.parked_ms);
                out += buf;
            }
            if (!f.wait.empty()) (out += ": ") += f.wait;
            out += '\n';
            if (f.trace < 0) continue;
            const Trace& t = r->traces[static_cast<std::size_t>(f.trace)];
            std::string key(reinterpret_cast<const char*>(t.pc), sizeof(void*) * static_cast<std::size_t>(t.depth));
            auto [it, fresh] = first_with.emplace(std::move(key), f.id);
            if (fresh) {
                names.append(t, out, "      ");
            } else {
                std::snprintf(buf, sizeof buf, "      same stack as fiber %" PRIu64 "\n", it->second);
                out += buf;
            }
        }
        r->drop();
        // Write hub by hub: a big dump never needs all of its text at once.
        os::write_stderr(out.data(), out.size());
        out.clear();
    }
    std::snprintf(buf, sizeof buf, "green: end of dump (%zu fiber(s))\n", total);
    out += buf;
    os::write_stderr(out.data(), out.size());
}

void* dump_main(void*) {
    std::uint32_t seen = g_requests.load(std::memory_order_acquire);
    for (;;) {
        os::futex_wait(&g_requests, seen);
        std::uint32_t now = g_requests.load(std::memory_order_acquire);
        if (now == seen) continue;
        seen = now;  // signals that arrive during a dump ask for one more
        dump_all();
    }
    return nullptr;
}

}  // namespace

void serve_dump_request(Hub* h, RemoteNode* node) noexcept {
    auto* r = static_cast<DumpRequest*>(node->owner);
    r->phase.store(1, std::memory_order_release);
    os::futex_wake(&r->phase, 1);
    try {
        std::unordered_map<std::string, int> index;
        const double now = ev_time();
        for (const FiberRecord* c = h->live_fibers(); c; c = c->live_next) {
            auto* f = const_cast<FiberRecord*>(c);
            const char* state = state_name(f);
            // Skipped: a thread's root parked for good (an idle hub thread),
            // fibers abandoned by fork(), and finished ones.
            if (!state || parked_idle(f)) continue;
            FiberInfo info{f->id, {}, state, {}, -1.0, -1};
            std::memcpy(info.name, f->name, sizeof info.name);
            info.name[sizeof info.name - 1] = '\0';
            if (f->state == FiberState::Suspended) {
                describe_wait_on_hub(f, h, info.wait);
                info.parked_ms = (now - f->parked_at) * 1000.0;
                if (info.parked_ms < 0) info.parked_ms = 0;
                if (ev_is_active(&f->timer)) {
                    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(f->timer_deadline - Clock::now());
                    char buf[64];
                    std::snprintf(buf, sizeof buf, ", deadline in %lld ms", static_cast<long long>(left.count()));
                    info.wait += buf;
                }
            }
            Trace t;
            if (capture_suspended(f, t)) {
                std::string key(reinterpret_cast<const char*>(t.pc), sizeof(void*) * static_cast<std::size_t>(t.depth));
                auto [it, fresh] = index.emplace(std::move(key), static_cast<int>(r->traces.size()));
                if (fresh) r->traces.push_back(t);
                info.trace = it->second;
            }
            r->fibers.push_back(std::move(info));
        }
    } catch (...) {
        // Out of memory: the dump is partial, the hub goes on.
    }
    r->phase.store(2, std::memory_order_release);
    os::futex_wake(&r->phase, 1);
    r->drop();
}

void start_dump_service() noexcept {
    static std::atomic<bool> started{false};
    const int sig = config().dump_signal;
    if (sig == 0 || started.exchange(true)) return;
    struct sigaction old{};
    runtime_sigaction(sig, nullptr, &old);
    // Inherited SIG_IGN (nohup and the like) or a handler already chosen:
    // the program keeps what it has, and no dump is offered.
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) return;
    // The dump thread takes no program signal; libdw, naming frames, is
    // stack-hungry.
    if (!os::start_plain_thread(dump_main, nullptr, 1024 * 1024)) return;
    struct sigaction sa{};
    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    runtime_sigaction(sig, &sa, nullptr);
}

}  // namespace green::detail
