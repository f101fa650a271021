// Placement of new thread-fibers over N hubs, seen from an unmodified program
// (probe_placement.cpp): where its threads' kernel TIDs say they ran.
//
// - 10,000 threads created by one thread and all alive at once end up spread
//   over the hubs within +-10% of an even share; so do long-lived threads
//   created alternately with short-lived ones.
// - A hub whose running fiber computes without yielding receives fewer of the
//   threads created meanwhile (its fibers could not run before it yields).
// - With adaptive hubs, GREEN_STATS reports what the balancer saw per hub.
#include <gtest/gtest.h>
#include <sched.h>

#include <numeric>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "../common/child.hpp"
#include "../common/env.hpp"

using namespace green::test;

namespace {

struct Counts {
    std::size_t tids = 0, main = 0, spinner = 0;
    std::vector<std::size_t> others;
};

Counts parse(const std::string& out) {
    Counts c;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream l(line);
        std::string key;
        l >> key;
        if (key == "tids") l >> c.tids;
        else if (key == "main") l >> c.main;
        else if (key == "spinner") l >> c.spinner;
        else if (key == "others")
            for (std::size_t n; l >> n;) c.others.push_back(n);
    }
    return c;
}

class Placement : public testing::TestWithParam<unsigned> {};

// Runs probe_placement MODE N and checks every hub got N / hubs +-10%.
void expect_even_spread(const char* mode, std::size_t n, unsigned hubs) {
    auto r = run_capture({env_or_die("GREEN_PROBE_PLACEMENT"), mode, std::to_string(n)}, shim_env(hubs));
    ASSERT_EQ(r.status, 0) << r.err;
    Counts c = parse(r.out);
    ASSERT_EQ(c.tids, hubs) << "each hub is one OS thread:\n" << r.out;
    std::vector<std::size_t> all = c.others;
    all.push_back(c.main);
    EXPECT_EQ(std::accumulate(all.begin(), all.end(), std::size_t{0}), n) << r.out;
    const double share = static_cast<double>(n) / hubs;
    for (std::size_t count : all) {
        EXPECT_GE(count, share * 0.9) << r.out;
        EXPECT_LE(count, share * 1.1) << r.out;
    }
}

TEST_P(Placement, TenThousandThreadsFromOneCreatorSpreadEvenly) { expect_even_spread("spread", 10000, GetParam()); }

// Each long-lived thread is followed by a short one: placement in turn would
// put every long-lived thread on the same hub(s).
TEST_P(Placement, LongLivedThreadsSpreadEvenAmongShortOnes) { expect_even_spread("alternate", 1000, GetParam()); }

TEST_P(Placement, AHubHeldByAComputingFiberReceivesFewerNewThreads) {
    const unsigned hubs = GetParam();
    const std::size_t n = 2000;
    auto r = run_capture({env_or_die("GREEN_PROBE_PLACEMENT"), "busy", std::to_string(n)}, shim_env(hubs));
    ASSERT_EQ(r.status, 0) << r.err;
    Counts c = parse(r.out);
    std::vector<std::size_t> rest = c.others;
    rest.push_back(c.main);
    const std::size_t placed_elsewhere = std::accumulate(rest.begin(), rest.end(), std::size_t{0});
    ASSERT_EQ(placed_elsewhere + c.spinner, n) << r.out;
    // An even share would be n / hubs; the busy hub must get well under half
    // of what the others get on average.
    const double others_mean = static_cast<double>(placed_elsewhere) / (hubs - 1);
    EXPECT_LT(static_cast<double>(c.spinner), others_mean / 2) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Hubs, Placement, testing::Values(2u, 4u),
                         [](const testing::TestParamInfo<unsigned>& info) { return std::to_string(info.param) + "hubs"; });

// With adaptive hubs (the default), GREEN_STATS says at exit what the
// balancer saw: moves tried and kept, the active hub count, and each hub
// thread's CPU time and time waiting for a CPU. python3 computes on hub 0
// for a few balancer periods, so hub 0 must show CPU time.
TEST(AdaptiveHubs, StatsReportWhatTheBalancerSawPerHub) {
    cpu_set_t mask;
    ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
    if (CPU_COUNT(&mask) < 2) GTEST_SKIP() << "one usable CPU: adaptive hubs start a single hub and no balancer";
    auto r = run_capture({"/usr/bin/python3", "-c", "i = 0\nwhile i < 5000000: i += 1"},
                         {preload_env(), "GREEN_STATS=1", "GREEN_HUBS=adaptive"});
    ASSERT_EQ(r.status, 0) << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.err, m,
                                  std::regex("green: balancer: moves tried ([0-9]+), kept ([0-9]+); hubs active ([0-9]+) of "
                                             "([0-9]+); hub 0 ran ([0-9.]+) s, waited to run ([0-9.]+) s;")))
        << r.err;
    EXPECT_LE(std::stoul(m[2].str()), std::stoul(m[1].str()));
    EXPECT_GE(std::stoul(m[4].str()), 2u);  // one per usable CPU (fewer under a cgroup CPU quota)
    EXPECT_GT(std::stod(m[5].str()), 0.0) << r.err;
}

}  // namespace
