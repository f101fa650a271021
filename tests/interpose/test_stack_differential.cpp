// Stacks of threads that became fibers, compared with real threads: the
// stack probe (probe_stacks.cpp) runs unpatched and under the shim with 1 and
// 2 hubs. Cases that fit their stacks print the same lines and exit the same;
// cases whose frame overflows the stack die in every run (unpatched: SIGSEGV),
// and under the shim with a report naming the overflowing thread, never by
// writing another fiber's stack.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <regex>
#include <string>
#include <tuple>

#include "../common/env.hpp"
#include "probe_cases.hpp"

using namespace green::test;

namespace {

const std::vector<std::string> kFitting = {"recursion_1m_default", "recursion_4m_default", "recursion_1m_explicit",
                                           "recursion_4m_explicit", "reports_default_size", "many_threads_300k"};
const std::vector<std::string> kOverflowing = {"local_array_1m", "read_into_big_buffer"};

TEST(StackDifferentialSetup, EveryProbeCaseIsTested) {
    std::vector<std::string> all = kFitting;
    all.insert(all.end(), kOverflowing.begin(), kOverflowing.end());
    EXPECT_EQ(probe_cases(env_or_die("GREEN_PROBE_STACKS")), lines(all));
}

using Param = std::tuple<std::string, int>;  // case, hubs
class StackFits : public ::testing::TestWithParam<Param> {};

TEST_P(StackFits, PatchedOutputMatchesUnpatched) {
    const auto& [name, hubs] = GetParam();
    const std::string probe = env_or_die("GREEN_PROBE_STACKS");
    auto plain = run_capture({probe, name});
    auto patched = run_capture({probe, name}, shim_env(hubs));
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_FALSE(plain.out.empty());
    EXPECT_EQ(patched.status, 0) << patched.err;
    EXPECT_EQ(patched.out, plain.out) << patched.err;
}

class StackOverflows : public ::testing::TestWithParam<Param> {};

TEST_P(StackOverflows, BothDieAndTheShimNamesTheThread) {
    const auto& [name, hubs] = GetParam();
    const std::string probe = env_or_die("GREEN_PROBE_STACKS");
    auto plain = run_capture({probe, name});
    ASSERT_EQ(plain.status, 128 + SIGSEGV) << plain.out << plain.err;
    auto patched = run_capture({probe, name}, shim_env(hubs));
    EXPECT_EQ(patched.status, 128 + SIGABRT) << patched.out << patched.err;
    EXPECT_EQ(patched.out.find("survived"), std::string::npos);
    EXPECT_TRUE(std::regex_search(patched.err, std::regex("green: stack overflow in fiber [0-9]+ \"overflower\" "
                                                          "\\(stack of 262144 bytes, guard page hit\\)")))
        << patched.err;
}

// GREEN_STACK_SIZE replaces the default thread stack size: a 4 MiB recursion
// in a default thread overflows a 1 MiB default, and is reported as such.
TEST(StackSize, GreenStackSizeOverridesTheDefault) {
    auto r = run_capture({env_or_die("GREEN_PROBE_STACKS"), "recursion_4m_default"},
                         {preload_env(), "GREEN_STACK_SIZE=1M"});
    EXPECT_EQ(r.status, 128 + SIGABRT) << r.out << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("stack overflow in fiber [0-9]+ \"[^\"]*\" \\(stack of 1048576 "
                                                    "bytes, guard page hit\\)")))
        << r.err;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
    return std::get<0>(info.param) + "_hubs" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Cases, StackFits, ::testing::Combine(::testing::ValuesIn(kFitting), ::testing::Values(1, 2)),
                         param_name);
INSTANTIATE_TEST_SUITE_P(Cases, StackOverflows,
                         ::testing::Combine(::testing::ValuesIn(kOverflowing), ::testing::Values(1, 2)), param_name);

}  // namespace
