// The adaptive-hub policy (interpose/src/balance_policy.hpp) on measurements
// that a machine cannot be made to produce on demand: a saturated hub with
// and without idle CPUs, the next hubs made active (as many as idle CPUs
// allow, each short hub splitting onto one of its own), balancing among
// active hubs, and the cases that must not move anything.
#include <gtest/gtest.h>

#include "balance_policy.hpp"

using green::interpose::BalanceDecision;
using green::interpose::decide_balance;
using green::interpose::HubMove;

namespace {

struct Case {
    const char* name;
    std::vector<double> busy;
    std::vector<double> waited;
    std::vector<long> live;
    unsigned active;
    double spare;
    unsigned want_active;
    std::vector<HubMove> want_moves;  // in this order
};

class BalancePolicy : public testing::TestWithParam<Case> {};

TEST_P(BalancePolicy, Decides) {
    const Case& c = GetParam();
    BalanceDecision d =
        decide_balance({c.busy.data(), c.waited.data(), c.live.data(), static_cast<unsigned>(c.busy.size()), c.active, c.spare});
    EXPECT_EQ(d.active, c.want_active);
    ASSERT_EQ(d.moves, c.want_moves.size());
    for (unsigned m = 0; m < d.moves; ++m) {
        EXPECT_EQ(d.move[m].from, c.want_moves[m].from) << "move " << m;
        EXPECT_EQ(d.move[m].to, c.want_moves[m].to) << "move " << m;
        EXPECT_EQ(d.move[m].count, c.want_moves[m].count) << "move " << m;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BalancePolicy,
    testing::Values(
        // A CPU-heavy server on one hub of two, the other CPU idle: the
        // second hub becomes active and takes half the threads.
        Case{"saturated_spare_cpu_activates_next", {0.97, 0.0}, {0.0, 0.0}, {4, 0}, 1, 0.9, 2, {{0, 1, 2}}},
        // The same hub as busy, but the other CPU is busy too (a client on
        // the same machine): nothing changes.
        Case{"saturated_no_spare_cpu_stays", {0.97, 0.0}, {0.0, 0.0}, {16, 0}, 1, 0.1, 1, {}},
        // Not saturated: the hub is not what limits the server.
        Case{"not_saturated_stays", {0.70, 0.0}, {0.0, 0.0}, {16, 0}, 1, 1.2, 1, {}},
        // One thread cannot be shared.
        Case{"single_thread_stays", {1.0, 0.0}, {0.0, 0.0}, {1, 0}, 1, 1.0, 1, {}},
        // All hubs active: the busiest passes threads to the least busy one.
        Case{"active_hubs_rebalance", {0.20, 0.95, 0.50}, {0.0, 0.0, 0.0}, {3, 9, 5}, 3, 1.5, 3, {{1, 0, 3}}},
        // A hub that runs a third of the time and waits for a CPU the rest
        // (a client among a database's 50 busy backends): starved, so the
        // next hub becomes active though no CPU idled. Of pgbench -j 4's
        // three threads two move: the main thread, which cannot, stays.
        Case{"starved_activates_next", {0.30, 0.0}, {0.70, 0.0}, {3, 0}, 1, 0.3, 2, {{0, 1, 2}}},
        // Busy on a CPU of its own, no waiting and none idle: not starved.
        Case{"busy_not_waiting_no_spare_stays", {0.99, 0.0}, {0.0, 0.0}, {16, 0}, 1, 0.0, 1, {}},
        // Waiting a little is not starving.
        Case{"waiting_little_stays", {0.50, 0.0}, {0.20, 0.0}, {8, 0}, 1, 0.1, 1, {}},
        // Both hubs active and both starved: the other one would gain no CPU
        // for the threads moved to it.
        Case{"starved_hubs_do_not_trade", {0.21, 0.16}, {0.77, 0.82}, {2, 1}, 2, 0.0, 2, {}},
        // A difference of one thread between active hubs moves nothing (it
        // would move back and forth).
        Case{"one_thread_apart_stays", {0.95, 0.10}, {0.0, 0.0}, {3, 2}, 2, 0.9, 2, {}},
        // All hubs active and all busy: nowhere to move.
        Case{"all_busy_stays", {0.90, 0.95}, {0.0, 0.0}, {6, 6}, 2, 0.6, 2, {}},
        // Four hubs, two active, the busy one is the second: the third
        // becomes active.
        Case{"activates_in_order", {0.40, 0.99, 0.0, 0.0}, {0.0, 0.0, 0.0, 0.0}, {2, 8, 0, 0}, 2, 2.0, 3, {{1, 2, 4}}},
        // Many CPUs idle and every active hub saturated (a CPU-bound server
        // on 16 CPUs): each splits onto a new hub of its own, busiest first,
        // so the hub count doubles in one trial.
        Case{"saturated_hubs_all_split", {0.95, 0.97, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}, {9, 8, 0, 0, 0, 0, 0, 0},
             2, 10.0, 4, {{1, 2, 4}, {0, 3, 5}}},
        // As many new hubs as CPUs idled: one and a half idle CPUs give one.
        Case{"split_bounded_by_spare_cpus", {0.95, 0.97, 0, 0}, {0, 0, 0, 0}, {8, 8, 0, 0}, 2, 1.5, 3, {{1, 2, 4}}},
        // And no more than the hubs that exist.
        Case{"split_bounded_by_hubs", {0.95, 0.97, 0.0}, {0, 0, 0}, {8, 8, 0}, 2, 6.0, 3, {{1, 2, 4}}},
        // Of the active hubs only those short of CPU split; one with a single
        // thread cannot.
        Case{"only_short_hubs_split", {0.99, 0.30, 0.95, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, {1, 6, 6, 0, 0, 0}, 3, 4.0, 4,
             {{2, 3, 3}}}),
    [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// A move stays only if it raised the hubs' switch rate by kTrialGain, with
// the rates steady before and after it: a CPU-heavy server that doubles
// stays; a static server whose second hub took the load generator's CPU
// (0.6x) is undone, and so is a move that changed nothing measurable, and one
// judged while the load itself was still rising.
struct TrialCase {
    const char* name;
    double before[3];
    double after[3];
    bool paid;
};

class BalanceTrial : public testing::TestWithParam<TrialCase> {};

TEST_P(BalanceTrial, KeepsAMoveOnlyWhenItRaisedASteadySwitchRate) {
    const TrialCase& c = GetParam();
    static_assert(green::interpose::kJudgePeriods == 3);
    EXPECT_EQ(green::interpose::trial_paid(c.before, c.after, 3), c.paid);
}

INSTANTIATE_TEST_SUITE_P(
    Rates, BalanceTrial,
    testing::Values(TrialCase{"cpu_server_doubles", {4600, 4500, 4700}, {8600, 8900, 8400}, true},
                    TrialCase{"static_server_loses", {147000, 150000, 146000}, {93000, 95000, 91000}, false},
                    TrialCase{"no_measurable_change", {10000, 10100, 9900}, {10500, 10400, 10600}, false},
                    TrialCase{"ten_percent_gain", {10000, 10000, 10000}, {11000, 11000, 11000}, true},
                    // The load was still ramping up while the move was wanted:
                    // the gain after it is the ramp's, not the move's.
                    TrialCase{"rising_before", {2000, 6000, 9000}, {14000, 14500, 14200}, false},
                    // The load changed under the trial.
                    TrialCase{"unsteady_after", {10000, 10000, 10000}, {30000, 10000, 12000}, false},
                    TrialCase{"idle_period", {10000, 10000, 10000}, {20000, 0, 20000}, false}),
    [](const testing::TestParamInfo<TrialCase>& info) { return std::string(info.param.name); });

TEST(BalanceSteady, RatesWithinTheBoundAreSteady) {
    using green::interpose::steady;
    const double flat[3] = {100, 110, 120};
    const double wide[3] = {100, 110, 130};
    const double zero[3] = {0, 0, 0};
    EXPECT_TRUE(steady(flat, 3));
    EXPECT_FALSE(steady(wide, 3));
    EXPECT_FALSE(steady(zero, 3));
}

}  // namespace
