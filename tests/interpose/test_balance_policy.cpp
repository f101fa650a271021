// The adaptive-hub policy (interpose/src/balance_policy.hpp) on measurements
// that a machine cannot be made to produce on demand: a saturated hub with
// and without idle CPUs, the next hub made active, balancing among active
// hubs, and the cases that must not move anything.
#include <gtest/gtest.h>

#include "balance_policy.hpp"

using green::interpose::BalanceDecision;
using green::interpose::decide_balance;

namespace {

struct Case {
    const char* name;
    std::vector<double> busy;
    std::vector<long> live;
    unsigned active;
    double spare;
    unsigned want_active;
    long want_moves;
    unsigned want_from, want_to;  // checked when moves > 0
};

class BalancePolicy : public testing::TestWithParam<Case> {};

TEST_P(BalancePolicy, Decides) {
    const Case& c = GetParam();
    BalanceDecision d =
        decide_balance({c.busy.data(), c.live.data(), static_cast<unsigned>(c.busy.size()), c.active, c.spare});
    EXPECT_EQ(d.active, c.want_active);
    EXPECT_EQ(d.moves, c.want_moves);
    if (c.want_moves > 0) {
        EXPECT_EQ(d.from, c.want_from);
        EXPECT_EQ(d.to, c.want_to);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BalancePolicy,
    testing::Values(
        // A CPU-heavy server on one hub of two, the other CPU idle: the
        // second hub becomes active and takes half the threads.
        Case{"saturated_spare_cpu_activates_next", {0.97, 0.0}, {4, 0}, 1, 0.9, 2, 2, 0, 1},
        // The same hub as busy, but the other CPU is busy too (a client on
        // the same machine): nothing changes.
        Case{"saturated_no_spare_cpu_stays", {0.97, 0.0}, {16, 0}, 1, 0.1, 1, 0, 0, 0},
        // Not saturated: the hub is not what limits the server.
        Case{"not_saturated_stays", {0.70, 0.0}, {16, 0}, 1, 1.2, 1, 0, 0, 0},
        // One thread cannot be shared.
        Case{"single_thread_stays", {1.0, 0.0}, {1, 0}, 1, 1.0, 1, 0, 0, 0},
        // All hubs active: the busiest passes threads to the least busy one.
        Case{"active_hubs_rebalance", {0.20, 0.95, 0.50}, {3, 9, 5}, 3, 1.5, 3, 3, 1, 0},
        // All hubs active and all busy: nowhere to move.
        Case{"all_busy_stays", {0.90, 0.95}, {6, 6}, 2, 0.6, 2, 0, 0, 0},
        // Four hubs, two active, the busy one is the second: the third
        // becomes active.
        Case{"activates_in_order", {0.40, 0.99, 0.0, 0.0}, {2, 8, 0, 0}, 2, 2.0, 3, 4, 1, 2}),
    [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// A move stays only if it raised the hubs' switch rate by kTrialGain: a
// CPU-heavy server that doubles stays; a static server whose second hub took
// the load generator's CPU (0.6x) is undone, and so is a move that changed
// nothing measurable.
TEST(BalanceTrial, KeepsAMoveOnlyWhenItRaisedTheSwitchRate) {
    using green::interpose::trial_paid;
    EXPECT_TRUE(trial_paid(4600, 8600));
    EXPECT_FALSE(trial_paid(147000, 93000));
    EXPECT_FALSE(trial_paid(10000, 10500));
    EXPECT_TRUE(trial_paid(10000, 11000));
}

}  // namespace
