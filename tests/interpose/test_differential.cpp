// Differential tests: the probe program (plain POSIX, no green headers) runs
// once unpatched and once under LD_PRELOAD=libgreen-preload.so; for every
// call family its printed observations (return values, errno names, bytes,
// flags) must be identical, and the patched run must show the shim active.
#include <gtest/gtest.h>

#include <sstream>

#include "run_capture.hpp"

using green::test::env_or_die;
using green::test::preload_env;
using green::test::run_capture;

namespace {

const std::vector<std::string> kCases = {"read_write", "vectors", "nonblocking_flags", "timeouts", "connect_accept",
                                         "poll_select", "sleep", "dns", "sendfile", "big_transfer"};

class Differential : public ::testing::TestWithParam<std::string> {};

TEST(DifferentialSetup, EveryProbeCaseIsTested) {
    auto listed = run_capture({env_or_die("GREEN_PROBE"), "--list"});
    ASSERT_EQ(listed.status, 0);
    std::string expected;
    for (const auto& c : kCases) expected += c + "\n";
    EXPECT_EQ(listed.out, expected) << "probe cases and this test's list differ";
}

TEST_P(Differential, PatchedOutputMatchesUnpatched) {
    const std::string probe = env_or_die("GREEN_PROBE");
    auto plain = run_capture({probe, GetParam()});
    auto patched = run_capture({probe, GetParam()}, {preload_env(), "GREEN_STATS=1"});
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_EQ(patched.status, 0) << patched.err;
    ASSERT_FALSE(plain.out.empty());
    EXPECT_EQ(patched.out, plain.out);
    EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
    EXPECT_EQ(plain.err.find("green:"), std::string::npos) << "unpatched run must not load the shim";
}

INSTANTIATE_TEST_SUITE_P(CallFamilies, Differential, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param; });

}  // namespace
