// The hub monitor: says so when a hub is blocked.
//
// A hub runs one fiber at a time; a fiber that computes for long, or makes a
// blocking call nothing hooks (a read on stdin, a regular file on a slow
// disk, a pthread_spin_lock), stops every other fiber of that hub. That is
// the one promise the runtime cannot keep by itself, so a monitor thread
// watches each hub's progress counter (bumped at every switch and every
// event-loop turn) and, when it has not moved for GREEN_BLOCKED_MS while
// the hub is not simply waiting in its event loop and other work on it is
// held up (fibers waiting for an fd or a deadline, or wakes posted to it; a
// fiber that everyone else merely joins blocks nobody), prints the hub, the
// fiber running on it and how long, once per episode.
//
// The monitor is a plain thread (os::start_plain_thread), not a fiber; it
// never touches a hub's data beyond atomic counters and the running fiber's
// id and name (read racily: a report is a diagnostic, not a decision). The
// blocking fiber's stack is taken through a signal to the hub thread
// (backtrace.cpp), after the registry lock is released: the walk waits for
// the hub thread, and nobody else should wait for the registry meanwhile.
#include <green/run.hpp>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "backtrace.hpp"
#include "hub.hpp"
#include "os.hpp"

namespace green::detail {

namespace {

std::atomic<std::uint64_t> g_episodes{0};

struct Seen {
    Hub* hub;
    std::uint64_t progress;
    std::uint64_t since_ms;
    bool reported;
};

std::uint64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

void* monitor_main(void*) {
    const unsigned limit = config().blocked_ms;
    const long period_ns = static_cast<long>(limit < 400 ? limit : 400) * 1000000L / 4;
    std::vector<Seen> seen;
    for (;;) {
        timespec pause{0, period_ns};
        os::raw_syscall6(SYS_nanosleep, reinterpret_cast<long>(&pause), 0, 0, 0, 0, 0);
        const std::uint64_t now = now_ms();
        struct Blocked {
            pid_t tid;
            std::string line;
        };
        std::vector<Blocked> blocked;
        struct Snapshot {
            std::vector<Seen>* seen;
            std::uint64_t now;
            unsigned limit;
            std::vector<Blocked>* blocked;
        } snap{&seen, now, limit, &blocked};
        for_each_hub(
            [](Hub* h, void* p) {
                auto* s = static_cast<Snapshot*>(p);
                std::uint64_t progress = h->progress();
                Seen* entry = nullptr;
                for (Seen& e : *s->seen)
                    if (e.hub == h) entry = &e;
                if (!entry) {
                    s->seen->push_back(Seen{h, progress, s->now, false});
                    return;
                }
                if (progress != entry->progress || h->waiting_for_events() || !h->others_depend_on_it()) {
                    *entry = Seen{h, progress, s->now, false};
                    return;
                }
                if (entry->reported || s->now - entry->since_ms < s->limit) return;
                entry->reported = true;
                g_episodes.fetch_add(1, std::memory_order_relaxed);
                const FiberRecord* f = h->running_for_monitor();
                char line[256];
                int n = std::snprintf(line, sizeof line,
                                      "green: hub %u (thread %d) blocked for %" PRIu64
                                      " ms in fiber %" PRIu64 " \"%s\": a call that does not yield (CPU-bound work, "
                                      "or a blocking call green does not hook) stops every fiber of this hub\n",
                                      h->index(), static_cast<int>(h->tid()), s->now - entry->since_ms,
                                      f ? f->id : 0, f ? f->name : "?");
                if (n > 0) s->blocked->push_back(Blocked{h->tid(), std::string(line, static_cast<std::size_t>(n))});
            },
            &snap);
        for (Blocked& b : blocked) {
            // The line first: naming the stack may take a while (debug info
            // is read on first use), and the line alone already says a lot.
            os::write_stderr(b.line.data(), b.line.size());
            Trace t;
            const char* why = "";
            std::string text;
            if (capture_thread(b.tid, t, 1000, &why)) {
                char head[96];
                std::snprintf(head, sizeof head, "  stack of fiber %" PRIu64 ":\n", t.fiber_id);
                text = head;
                Symbolizer names;
                names.append(t, text, "    ");
            } else {
                (text = "  (no backtrace: ") += why;
                text += ")\n";
            }
            os::write_stderr(text.data(), text.size());
        }
    }
    return nullptr;
}

}  // namespace

std::uint64_t blocked_episodes() noexcept { return g_episodes.load(std::memory_order_relaxed); }

void start_hub_monitor() noexcept {
    start_dump_service();
    static std::atomic<bool> started{false};
    if (config().blocked_ms == 0 || started.exchange(true)) return;
    os::start_plain_thread(monitor_main, nullptr, 1024 * 1024);  // naming a backtrace is stack-hungry
}

}  // namespace green::detail
