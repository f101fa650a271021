// The adaptive-hub policy as a pure function of one period's measurements,
// so that it can be tested without a machine in a given state (balance.cpp
// measures and acts; this decides).
//
// Rule: the busiest active hub `from` has at least two threads to share and
// is short of CPU: saturated (busy >= kSaturated of a CPU) while at least
// kSpareCpu CPUs idled, or starved (runnable but waiting for a CPU at least
// kStarved of the period, and wanting one kSaturated of it in all: other
// processes' threads, such as a database's backends, outnumber the one hub
// thread in the kernel's sharing). Then `to` is the next inactive hub (made
// active), or else the active hub wanting the least CPU (busy + waited) if
// that is below kNotBusy, and `from` moves half the difference of their
// thread counts. Anything else: no moves. The balancer acts only on a
// decision repeated over several periods at a steady switch rate, and undoes
// a move that did not raise that rate (trial_paid).
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

struct BalanceDecision {
    unsigned active;  // new active count (>= the old one)
    unsigned from = 0, to = 0;
    long moves = 0;  // threads `from` should pass to `to`
};

inline BalanceDecision decide_balance(const BalanceInput& in) noexcept {
    BalanceDecision d{in.active};
    if (in.active == 0) return d;
    unsigned from = 0;
    for (unsigned i = 1; i < in.active; ++i)
        if (in.busy[i] > in.busy[from]) from = i;
    // Short of CPU: saturated with CPUs idle, or starved, i.e. wanting a CPU
    // most of the time but kept waiting for it (other processes' threads
    // outnumber this one hub thread: one more thread gets one more share).
    const bool saturated = in.busy[from] >= kSaturated && in.spare >= kSpareCpu;
    const bool starved = in.waited[from] >= kStarved && in.busy[from] + in.waited[from] >= kSaturated;
    if (!(saturated || starved) || in.live[from] < 2) return d;
    // A hub that can take more is one that neither ran nor waited to run
    // much: moving threads to another starved hub gains no CPU.
    auto wanted_cpu = [&](unsigned i) { return in.busy[i] + in.waited[i]; };
    int to = -1;
    if (in.active < in.hubs) {
        to = static_cast<int>(in.active);
        d.active = in.active + 1;
    } else {
        for (unsigned i = 0; i < in.active; ++i)
            if (i != from && wanted_cpu(i) < kNotBusy && (to < 0 || wanted_cpu(i) < wanted_cpu(to))) to = static_cast<int>(i);
        if (to < 0) return d;
    }
    d.from = from;
    d.to = static_cast<unsigned>(to);
    // Half the difference. Onto a newly active hub, rounded up: `from` also
    // carries what cannot move (the main thread, its own scheduling). Between
    // active hubs, rounded down, so that a difference of one never moves a
    // thread back and forth.
    const long diff = in.live[from] - in.live[d.to];
    d.moves = d.active != in.active ? (diff + 1) / 2 : diff / 2;
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
