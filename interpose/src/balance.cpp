// Adaptive hubs: use another CPU only when the server is short of CPU and
// the machine has one to spare, and move running "threads" there.
//
// Why: a hub is one schedulable thread. When a CPU-heavy server saturates it
// while other CPUs idle, more hubs multiply throughput; but when the CPUs are
// already busy (a client on the same machine, a database's backends), a
// second hub only competes with them and adds cross-CPU wakes, and a static
// server loses by it. No fixed hub count is right for both, and where
// threads are placed at creation does not help a server whose connections all
// arrived before the load did. So the shim starts one hub thread per usable
// CPU, lets new threads use only the first (placement_active() == 1), and
// every kPeriod this balancer looks at what the hubs and the machine did:
//
//   busy(h)   the hub thread's CPU time over the period / the period
//   waited(h) its time runnable but waiting for a CPU / the period
//             (/proc/self/task/TID/schedstat)
//   spare     idle CPU time, in CPUs, over the period, of the CPUs this
//             process may run on (/proc/stat, affinity mask)
//
// and, when active hubs are short of CPU for kJudgePeriods periods in a row
// at a steady switch rate (saturated while at least kSpareCpu CPUs idled, or
// starved: kept waiting for a CPU by other processes' threads), makes more
// hubs active, one for each such hub A as far as idle CPUs go, and asks A to
// move half its threads to its B (or, all hubs active, asks the busiest to
// pass threads to the least busy; balance_policy.hpp decides). Fibers move themselves at their
// next move point (move_to_requested_hub: about to wait for an fd, or for a
// poll/select set), carrying their TLS (Hub::move_running_if_asked).
//
// Idle CPUs do not prove that a second hub will help: they may belong to a
// load generator or a database that is idle only because it waits for this
// server, and a hub placed there takes the CPU they need; nor does a hub
// kept waiting for a CPU prove that one more share of the machine will not be
// taken from this program's own client. So every move is a trial: the hubs'
// switch rate over kJudgePeriods after it must be steady and beat the steady
// rate before it by kTrialGain, or the moves are undone (each B inactive
// again, its threads moved back) and no other is tried for kBackoffNs. Requests are
// renewed each period and withdrawn otherwise, so a stale request never
// moves fibers later.
//
// Invariants: only this thread writes move requests and the active count;
// a fiber moves only itself and only at a move point; placement counts follow
// each move (placement_thread_moved), so they never drift.
#include "balance.hpp"
#include "balance_policy.hpp"

#include <green/run.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "hub.hpp"
#include "os.hpp"
#include "placement.hpp"
#include "shim_fds.hpp"

namespace green::interpose {

namespace {

constexpr long kPeriodNs = 100'000'000;      // 100 ms
constexpr long kEagerPeriodNs = 1'000'000;   // 1 ms
constexpr unsigned kMaxHubs = 64;
static_assert(kMaxHubs <= kMaxMoves, "a decision can move threads off every hub");
constexpr int kUndoPeriods = 50;            // threads that never reach a move point stay after 5 s
constexpr std::int64_t kBackoffNs = 30'000'000'000;  // after an undone move, no other for 30 s

// The moves of one decision being judged, or being undone (periods >= 0
// while they are).
struct Trial {
    int periods = -1;
    double rates_before[kJudgePeriods] = {};  // hub switches per second in the periods that wanted it
    double rates_after[kJudgePeriods] = {};   // and in the periods after it
    unsigned active_before = 0;  // hubs active before it; more were made active for it
    unsigned moves = 0;
    HubMove move[kMaxMoves];
    long keep[kMaxMoves] = {};  // undoing: threads each `to` keeps (0 if it was made active)
};

std::atomic<bool> g_running{false};

// For balance_report: written by the balancer thread, read at exit.
struct Report {
    std::atomic<unsigned> hubs{0};
    std::atomic<unsigned> trials{0}, kept{0};
    std::atomic<std::int64_t> ran_ns[kMaxHubs] = {}, waited_ns[kMaxHubs] = {};
};
Report g_report;

// A hub thread's nanosecond counter (CPU time, run-queue wait) read once a
// period: its share of each period, and its total since the balancer
// started for the report. A reading of -1 (unreadable) counts as nothing.
struct Cumulative {
    std::int64_t first = -1, last = -1;
    void start(std::int64_t now) noexcept { first = last = now; }
    double advance(std::int64_t now, double period_ns, std::atomic<std::int64_t>& since_start) noexcept {
        const double share = now >= 0 && last >= 0 ? static_cast<double>(now - last) / period_ns : 0.0;
        last = now;
        if (now >= 0 && first >= 0) since_start.store(now - first, std::memory_order_relaxed);
        return share;
    }
};

// Idle + iowait jiffies of the CPUs in `mask`, from /proc/stat; -1 if unreadable.
long long idle_jiffies(int fd, const cpu_set_t& mask) noexcept {
    static char buf[64 * 1024];  // this thread only
    long n = detail::os::raw_syscall6(SYS_pread64, fd, reinterpret_cast<long>(buf), sizeof buf - 1, 0, 0, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    long long total = 0;
    for (char* line = buf; line && *line;) {
        char* end = std::strchr(line, '\n');
        char* next = end ? end + 1 : nullptr;
        if (std::strncmp(line, "cpu", 3) != 0) break;  // the cpu lines come first
        char* p = line + 3;
        long cpu = *p >= '0' && *p <= '9' ? std::strtol(p, &p, 10) : -1;  // -1: the "cpu " total
        if (cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(static_cast<int>(cpu), &mask)) {
            long long field[5] = {};  // user nice system idle iowait
            for (long long& f : field) f = std::strtoll(p, &p, 10);
            total += field[3] + field[4];
        }
        line = next;
    }
    return total;
}

// /proc/self/task/TID/schedstat of a hub thread, opened once and kept among
// the shim's own fds (a file opened and closed every period would take, for
// that moment, the lowest free number, which the program's own open() may be
// about to get).
int open_schedstat(pid_t tid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", static_cast<int>(tid));
    int fd = static_cast<int>(
        detail::os::raw_syscall6(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC, 0, 0, 0));
    return fd < 0 ? -1 : adopt_shim_fd(fd);
}

// The time the thread spent runnable but waiting for a CPU, in ns (the second
// field of its schedstat); -1 if unreadable.
std::int64_t runqueue_wait_ns(int schedstat_fd) noexcept {
    if (schedstat_fd < 0) return -1;
    char buf[128];
    long n = detail::os::raw_syscall6(SYS_pread64, schedstat_fd, reinterpret_cast<long>(buf), sizeof buf - 1, 0, 0, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char* p = buf;
    std::strtoll(p, &p, 10);  // time on the CPU
    return std::strtoll(p, nullptr, 10);
}

void sleep_for(long ns) noexcept {
    timespec ts{0, ns};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
    }
}

// GREEN_BALANCE=eager: every hub active, and every kEagerPeriod each hub is
// asked to pass a quarter of its threads on to the next one, so that threads
// keep moving. For tests of moving, not for speed.
[[noreturn]] void rotate_forever(unsigned hubs) {
    placement_activate(hubs);
    for (;;) {
        sleep_for(kEagerPeriodNs);
        for (unsigned i = 0; i < hubs; ++i) {
            long live = placement_live(i);
            placement_hub(i)->request_moves(placement_hub((i + 1) % hubs),
                                            live > 0 ? static_cast<int>(std::max(1L, live / 4)) : 0);
        }
    }
}

void* balancer(void*) {
    unsigned hubs = std::min(placement_hub_count(), kMaxHubs);
    if (config().balance == Balance::Eager) rotate_forever(hubs);
    int fd = static_cast<int>(detail::os::raw_syscall6(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/stat"),
                                                       O_RDONLY | O_CLOEXEC, 0, 0, 0));
    if (fd < 0) return nullptr;  // nothing to judge by: hubs stay as they are
    fd = adopt_shim_fd(fd);
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0) CPU_ZERO(&mask);
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    Cumulative ran[kMaxHubs], waited_to_run[kMaxHubs];
    int schedstat[kMaxHubs];
    std::int64_t last_wall = monotonic_ns();
    long long last_idle = idle_jiffies(fd, mask);
    for (unsigned i = 0; i < hubs; ++i) {
        schedstat[i] = open_schedstat(placement_hub(i)->tid());
        ran[i].start(thread_cpu_ns(placement_hub(i)->tid()));
        waited_to_run[i].start(runqueue_wait_ns(schedstat[i]));
    }
    g_report.hubs.store(hubs, std::memory_order_relaxed);
    std::uint64_t last_switches = green::stats().switches;
    int confirmed = 0;                    // periods in a row that wanted a move
    double rates_wanted[kJudgePeriods];  // the switch rates of the last of them
    Trial trial, undo;
    std::int64_t backoff_until = 0;
    for (;;) {
        sleep_for(kPeriodNs);
        std::int64_t wall = monotonic_ns();
        long long idle = idle_jiffies(fd, mask);
        double period = static_cast<double>(wall - last_wall);
        double spare = (idle >= 0 && last_idle >= 0) ? static_cast<double>(idle - last_idle) / hz / (period / 1e9) : 0.0;
        double busy[kMaxHubs], waited[kMaxHubs];
        for (unsigned i = 0; i < hubs; ++i) {
            waited[i] = waited_to_run[i].advance(runqueue_wait_ns(schedstat[i]), period, g_report.waited_ns[i]);
            busy[i] = ran[i].advance(thread_cpu_ns(placement_hub(i)->tid()), period, g_report.ran_ns[i]);
        }
        last_wall = wall;
        last_idle = idle;
        const std::uint64_t switches = green::stats().switches;
        const double rate = static_cast<double>(switches - last_switches) / (period / 1e9);
        last_switches = switches;

        unsigned active = placement_active();
        long live[kMaxHubs];
        for (unsigned i = 0; i < hubs; ++i) live[i] = placement_live(i);
        if (trial.periods >= 0) {
            // Judging a move: the first period after it is the move itself.
            if (trial.periods++ > 0) trial.rates_after[trial.periods - 2] = rate;
            if (trial.periods <= kJudgePeriods) continue;
            g_report.trials.fetch_add(1, std::memory_order_relaxed);
            if (trial_paid(trial.rates_before, trial.rates_after, kJudgePeriods)) {
                g_report.kept.fetch_add(1, std::memory_order_relaxed);
            } else {
                placement_activate(trial.active_before);
                undo = trial;
                for (unsigned m = 0; m < trial.moves; ++m) {
                    const HubMove& mv = trial.move[m];
                    undo.keep[m] = mv.to >= trial.active_before ? 0 : std::max(0L, live[mv.to] - mv.count);
                }
                undo.periods = 0;
                backoff_until = wall + kBackoffNs;
            }
            trial.periods = -1;
            continue;
        }
        // Undone moves: their threads go back as they reach a move point,
        // until each `to` is down to what it had.
        if (undo.periods >= 0) {
            bool returning = false;
            const bool in_time = ++undo.periods <= kUndoPeriods;
            for (unsigned m = 0; m < undo.moves; ++m) {
                const HubMove& mv = undo.move[m];
                const long back = in_time ? live[mv.to] - undo.keep[m] : 0;
                placement_hub(mv.to)->request_moves(back > 0 ? placement_hub(mv.from) : nullptr,
                                                    static_cast<int>(std::max(0L, back)));
                returning = returning || back > 0;
            }
            if (returning) continue;
            undo = Trial{};
        }
        BalanceDecision d = decide_balance({busy, waited, live, hubs, active, spare});
        const bool wanted = d.wanted(active);
        confirmed = wanted ? confirmed + 1 : 0;
        if (wanted) rates_wanted[confirmed % kJudgePeriods] = rate;
        for (unsigned i = 0; i < active; ++i)
            if (placement_hub(i)->moves_requested()) placement_hub(i)->request_moves(nullptr, 0);
        // The last kJudgePeriods wanted it, at a steady rate (not a load
        // still rising or falling, which no move can be judged against).
        if (confirmed < kJudgePeriods || wall < backoff_until || !steady(rates_wanted, kJudgePeriods)) continue;
        trial = Trial{};
        trial.periods = 0;
        std::copy(rates_wanted, rates_wanted + kJudgePeriods, trial.rates_before);
        trial.active_before = active;
        trial.moves = d.moves;
        std::copy(d.move, d.move + d.moves, trial.move);
        confirmed = 0;
        if (d.active != active) placement_activate(d.active);
        for (unsigned m = 0; m < d.moves; ++m)
            placement_hub(d.move[m].from)->request_moves(placement_hub(d.move[m].to), static_cast<int>(d.move[m].count));
    }
}

}  // namespace

void start_balancer() noexcept {
    if (config().balance == Balance::Off || g_running.exchange(true)) return;
    if (!detail::os::start_plain_thread(balancer, nullptr, 256 * 1024)) g_running.store(false);
}

void balancer_after_fork_in_child() noexcept {
    g_running.store(false, std::memory_order_relaxed);
    g_report.hubs.store(0, std::memory_order_relaxed);  // the parent's balancer, not this process's
}

int balance_report(char* buf, int size) noexcept {
    const unsigned hubs = g_report.hubs.load(std::memory_order_relaxed);
    if (hubs == 0 || size <= 0) return 0;
    int n = std::snprintf(buf, static_cast<std::size_t>(size), "green: balancer: moves tried %u, kept %u; hubs active %u of %u;",
                          g_report.trials.load(std::memory_order_relaxed), g_report.kept.load(std::memory_order_relaxed),
                          placement_active(), hubs);
    for (unsigned i = 0; i < hubs && n < size - 64; ++i)
        n += std::snprintf(buf + n, static_cast<std::size_t>(size - n), " hub %u ran %.2f s, waited to run %.2f s;", i,
                           static_cast<double>(g_report.ran_ns[i].load(std::memory_order_relaxed)) / 1e9,
                           static_cast<double>(g_report.waited_ns[i].load(std::memory_order_relaxed)) / 1e9);
    if (n >= size) n = size - 1;
    if (n > 0 && n < size - 1) buf[n - 1] = '\n';  // the last ';'
    return n;
}

detail::Hub* move_to_requested_hub(detail::Hub* h) {
    int from = placement_slot_of_this_thread();
    if (!h->move_running_if_asked()) return h;
    placement_thread_moved(from);
    return detail::Hub::current_if_any();
}

}  // namespace green::interpose
