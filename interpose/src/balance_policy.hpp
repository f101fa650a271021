// The adaptive-hub policy as a pure function of one period's measurements,
// so that it can be tested without a machine in a given state (balance.cpp
// measures and acts; this decides).
//
// Rule: an active hub is short of CPU when it is saturated (busy >=
// kSaturated of a CPU) while at least kSpareCpu CPUs idled, or starved
// (runnable but waiting for a CPU at least kStarved of the period, and
// wanting one kSaturated of it in all: other processes' threads, such as a
// database's backends, outnumber the one hub thread in the kernel's sharing).
// Only a hub with at least two threads can share.
//   Growing (some hubs inactive): every hub short of CPU, busiest first,
//   gets the next inactive hub of its own and passes it half its threads,
//   as many at once as there are inactive hubs and idle CPUs (at least one:
//   a starved hub is short without an idle CPU). A CPU-bound server thus
//   doubles its hubs each trial instead of adding one.
//   Balancing (all active): the busiest hub, if short, passes half the
//   difference of their thread counts to the active hub wanting the least
//   CPU (busy + waited), if that is below kNotBusy.
// Anything else: no moves. The balancer acts only on a decision repeated
// over several periods at a steady switch rate, and undoes a move that did
// not raise that rate (trial_paid).
#pragma once

#include <algorithm>

namespace green::interpose {

constexpr double kSaturated = 0.85;  // of one CPU
constexpr double kSpareCpu = 0.5;    // CPUs idle on average over the period
constexpr double kNotBusy = 0.6;     // an active hub that can take more
constexpr double kStarved = 0.25;    // of the period runnable but waiting for a CPU
constexpr double kTrialGain = 1.10;  // a move must raise the switch rate this much to stay
constexpr double kSteady = 1.25;     // rates of a run of periods judged on may differ this much at most
constexpr int kJudgePeriods = 3;     // a move is wanted this many periods in a row, then judged over as many

struct BalanceInput {
    const double* busy;    // per hub: its thread's CPU time / the period
    const double* waited;  // per hub: its thread's time runnable but off the CPU / the period
    const long* live;    // per hub: thread-fibers on it
    unsigned hubs;       // hubs that exist
    unsigned active;     // hubs that take new threads (the first `active`)
    double spare;        // idle CPUs over the period
};

constexpr unsigned kMaxMoves = 64;  // hubs that exist, at most

// `count` threads of hub `from` go to hub `to`.
struct HubMove {
    unsigned from = 0, to = 0;
    long count = 0;
};

struct BalanceDecision {
    unsigned active = 0;  // new active count (>= the old one)
    unsigned moves = 0;  // entries of `move`, each with a distinct `from` and `to`
    HubMove move[kMaxMoves];
    bool wanted(unsigned old_active) const noexcept { return moves > 0 || active != old_active; }
};

inline BalanceDecision decide_balance(const BalanceInput& in) noexcept {
    BalanceDecision d;
    d.active = in.active;
    const unsigned active = std::min(in.active, kMaxMoves);
    // Short of CPU: saturated with CPUs idle, or starved, i.e. wanting a CPU
    // most of the time but kept waiting for it (other processes' threads
    // outnumber this one hub thread: one more thread gets one more share).
    auto short_of_cpu = [&](unsigned i) {
        const bool saturated = in.busy[i] >= kSaturated && in.spare >= kSpareCpu;
        const bool starved = in.waited[i] >= kStarved && in.busy[i] + in.waited[i] >= kSaturated;
        return (saturated || starved) && in.live[i] >= 2;
    };
    // A hub that can take more is one that neither ran nor waited to run
    // much: moving threads to another starved hub gains no CPU.
    auto wanted_cpu = [&](unsigned i) { return in.busy[i] + in.waited[i]; };
    if (active < in.hubs) {
        // Each new hub wants up to a CPU of its own: no more of them than
        // CPUs idled, but one for a hub that is starved with none idle.
        const double spare_cpus = in.spare >= 1.0 ? in.spare : 1.0;
        unsigned grow = std::min(in.hubs, kMaxMoves) - active;
        if (grow > spare_cpus) grow = static_cast<unsigned>(spare_cpus);
        bool taken[kMaxMoves] = {};
        while (d.moves < grow) {
            int from = -1;
            for (unsigned i = 0; i < active; ++i)
                if (!taken[i] && short_of_cpu(i) && (from < 0 || in.busy[i] > in.busy[from])) from = static_cast<int>(i);
            if (from < 0) break;
            taken[from] = true;
            // Onto a new hub, half rounded up: `from` also carries what
            // cannot move (the main thread, its own scheduling).
            d.move[d.moves] = {static_cast<unsigned>(from), active + d.moves, (in.live[from] + 1) / 2};
            ++d.moves;
        }
        d.active = active + d.moves;
        return d;
    }
    unsigned from = 0;
    for (unsigned i = 1; i < active; ++i)
        if (in.busy[i] > in.busy[from]) from = i;
    if (!short_of_cpu(from)) return d;
    int to = -1;
    for (unsigned i = 0; i < active; ++i)
        if (i != from && wanted_cpu(i) < kNotBusy && (to < 0 || wanted_cpu(i) < wanted_cpu(to))) to = static_cast<int>(i);
    if (to < 0) return d;
    // Half the difference, rounded down, so that a difference of one never
    // moves a thread back and forth.
    const long count = (in.live[from] - in.live[to]) / 2;
    if (count > 0) d.move[d.moves++] = {from, static_cast<unsigned>(to), count};
    return d;
}

// Switch rates over kJudgePeriods periods are steady when they are all
// positive and the highest is within kSteady of the lowest. Rates that drift
// within the run (a server still starting, a load generator's next level)
// would credit a move with the drift, or blame it for it.
inline bool steady(const double* rates, int n) noexcept {
    double lo = rates[0], hi = rates[0];
    for (int i = 1; i < n; ++i) {
        lo = std::min(lo, rates[i]);
        hi = std::max(hi, rates[i]);
    }
    return lo > 0 && hi <= lo * kSteady;
}

// Did a move pay? The hubs' switch rate (every request a connection thread
// serves parks and resumes it at least once) in the periods after the move
// against the periods that wanted it, both steady. Spare CPU can be a load
// generator or a database waiting for this server, which a second hub would
// take that CPU from, and a starved hub may gain nothing from one more share
// of a machine its own client needs: only the result tells.
inline bool trial_paid(const double* before, const double* after, int n) noexcept {
    if (!steady(before, n) || !steady(after, n)) return false;
    double sum_before = 0, sum_after = 0;
    for (int i = 0; i < n; ++i) {
        sum_before += before[i];
        sum_after += after[i];
    }
    return sum_after >= sum_before * kTrialGain;
}

}  // namespace green::interpose
