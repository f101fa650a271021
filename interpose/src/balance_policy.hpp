// The adaptive-hub policy as a pure function of one period's measurements,
// so that it can be tested without a machine in a given state (balance.cpp
// measures and acts; this decides).
//
// Rule: the busiest active hub `from` is saturated (busy >= kSaturated of a
// CPU), has at least two threads to share, and at least kSpareCpu CPUs idled
// over the period: then `to` is the next inactive hub (made active), or else
// the least busy active hub if it is below kNotBusy; `from` moves half the
// difference of their thread counts. Anything else: no moves. The balancer
// acts only on a decision repeated over several periods, and undoes a move
// that did not raise the hubs' switch rate (trial_paid).
#pragma once

namespace green::interpose {

constexpr double kSaturated = 0.85;  // of one CPU
constexpr double kSpareCpu = 0.5;    // CPUs idle on average over the period
constexpr double kNotBusy = 0.6;     // an active hub that can take more
constexpr double kTrialGain = 1.10;  // a move must raise the switch rate this much to stay

struct BalanceInput {
    const double* busy;  // per hub: its thread's CPU time / the period
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
    if (in.busy[from] < kSaturated || in.spare < kSpareCpu || in.live[from] < 2) return d;
    int to = -1;
    if (in.active < in.hubs) {
        to = static_cast<int>(in.active);
        d.active = in.active + 1;
    } else {
        for (unsigned i = 0; i < in.active; ++i)
            if (i != from && in.busy[i] < kNotBusy && (to < 0 || in.busy[i] < in.busy[to])) to = static_cast<int>(i);
        if (to < 0) return d;
    }
    d.from = from;
    d.to = static_cast<unsigned>(to);
    d.moves = (in.live[from] - in.live[d.to]) / 2;
    return d;
}

// Did a move pay? The hubs' switch rate (every request a connection thread
// serves parks and resumes it at least once) after the move against before
// it. Spare CPU can be a load generator or a database waiting for this
// server, which a second hub would take that CPU from: only the result tells.
inline bool trial_paid(double rate_before, double rate_after) noexcept {
    return rate_after >= rate_before * kTrialGain;
}

}  // namespace green::interpose
