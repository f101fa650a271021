// Differential tests: the probe program (plain POSIX, no green headers) runs
// once unpatched and once under LD_PRELOAD=libgreen-preload.so; for every
// call family its printed observations (return values, errno names, bytes,
// flags) must be identical, and the patched run must show the shim active.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "run_capture.hpp"

using green::test::env_or_die;
using green::test::preload_env;
using green::test::run_capture;

namespace {

const std::vector<std::string> kCases = {"read_write", "vectors", "nonblocking_flags", "timeouts", "connect_accept",
                                         "poll_select", "sleep", "dns", "sendfile", "big_transfer",
                                         "files", "thread_passthrough"};

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

// A GREEN_* value that does not parse stops the program at start with one
// line naming the variable and the accepted form, exit status 2.
struct BadConfig {
    const char* assignment;
    const char* variable;
    const char* accepted;
};
class ShimConfig : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ShimConfig, BadValueFailsAtStartWithOneLine) {
    auto r = run_capture({env_or_die("GREEN_PROBE"), "read_write"}, {preload_env(), GetParam().assignment});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(r.out.empty()) << "the program must not have run: " << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(GetParam().variable), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(GetParam().accepted), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Values, ShimConfig,
                         ::testing::Values(BadConfig{"GREEN_STACK_SIZE=banana", "GREEN_STACK_SIZE", "16K to 1G"},
                                           BadConfig{"GREEN_STACK_SIZE=8K", "GREEN_STACK_SIZE", "16K to 1G"},
                                           BadConfig{"GREEN_POOL_SIZE=0", "GREEN_POOL_SIZE", "1 to 1024"},
                                           BadConfig{"GREEN_STACK_GUARD=maybe", "GREEN_STACK_GUARD", "auto, on, off"},
                                           BadConfig{"GREEN_STATS=yes", "GREEN_STATS", "0 or 1"},
                                           BadConfig{"GREEN_HUBS=-1", "GREEN_HUBS", "1 to 64"}),
                         [](const auto& info) {
                             std::string n = info.param.assignment;
                             for (char& c : n)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });

INSTANTIATE_TEST_SUITE_P(CallFamilies, Differential, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param; });

}  // namespace
