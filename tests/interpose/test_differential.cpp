// Differential tests: the probe program (plain POSIX, no green headers) runs
// once unpatched and once under LD_PRELOAD=libgreen-preload.so; for every
// call family its printed observations (return values, errno names, bytes,
// flags) must be identical, and the patched run must show the shim active.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <regex>
#include <cctype>
#include <sstream>

#include "run_capture.hpp"

using green::test::env_or_die;
using green::test::preload_env;
using green::test::run_capture;

namespace {

// Cases of the I/O probe (probe.cpp) and of the thread probe (probe_threads.cpp).
const std::vector<std::string> kCases = {"read_write", "vectors", "nonblocking_flags", "timeouts", "connect_accept",
                                         "poll_select", "sleep", "dns", "sendfile", "big_transfer",
                                         "files", "thread_passthrough"};
const std::vector<std::string> kThreadCases = {"lifecycle", "keys", "mutex_types", "condvar",
                                               "rwlock", "barrier_sem", "process", "exit_from_thread",
                                               "uncaught_in_thread", "main_pthread_exit",
                                               "main_returns_with_threads_blocked"};
// Listed by the probe but checked by their own tests below.
const std::vector<std::string> kThreadOnlyPatched = {"lock_cycle", "thread_local_shared"};

// Exit statuses the cases end with unpatched (0 unless listed); the patched
// run must end the same way.
int expected_status(const std::string& name) {
    if (name == "exit_from_thread") return 7;
    if (name == "uncaught_in_thread") return 128 + SIGABRT;
    if (name == "main_returns_with_threads_blocked") return 4;
    return 0;
}

class Differential : public ::testing::TestWithParam<std::string> {};

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& c : v) s += c + "\n";
    return s;
}

TEST(DifferentialSetup, EveryProbeCaseIsTested) {
    auto listed = run_capture({env_or_die("GREEN_PROBE"), "--list"});
    ASSERT_EQ(listed.status, 0);
    EXPECT_EQ(listed.out, joined(kCases)) << "probe cases and this test's list differ";
    auto threads = run_capture({env_or_die("GREEN_PROBE_THREADS"), "--list"});
    ASSERT_EQ(threads.status, 0);
    std::vector<std::string> all = kThreadCases;
    all.insert(all.end(), kThreadOnlyPatched.begin(), kThreadOnlyPatched.end());
    EXPECT_EQ(threads.out, joined(all)) << "thread probe cases and this test's list differ";
}

// "io/<case>" runs probe, "threads/<case>" runs probe_threads; "threads2/"
// runs the thread probe with GREEN_HUBS=2 (fibers on two OS threads).
TEST_P(Differential, PatchedOutputMatchesUnpatched) {
    const std::string param = GetParam();
    const std::string kind = param.substr(0, param.find('/'));
    const std::string name = param.substr(param.find('/') + 1);
    const std::string probe = env_or_die(kind == "io" ? "GREEN_PROBE" : "GREEN_PROBE_THREADS");
    std::vector<std::string> env = {preload_env(), "GREEN_STATS=1"};
    if (kind == "threads2") env.push_back("GREEN_HUBS=2");
    auto plain = run_capture({probe, name});
    auto patched = run_capture({probe, name}, env);
    ASSERT_EQ(plain.status, expected_status(name)) << plain.err;
    ASSERT_EQ(patched.status, plain.status) << patched.err;
    ASSERT_FALSE(plain.out.empty());
    EXPECT_EQ(patched.out, plain.out);
    if (name == "uncaught_in_thread") {
        EXPECT_NE(patched.err.find("terminate called after throwing"), std::string::npos) << patched.err;
        EXPECT_NE(patched.err.find("escaped a thread"), std::string::npos) << patched.err;
    } else {
        EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
    }
    EXPECT_EQ(plain.err.find("green:"), std::string::npos) << "unpatched run must not load the shim";
}

TEST(ShimReports, PthreadMutexCycleNamesBothThreadsAndExits3) {
    auto r = run_capture({env_or_die("GREEN_PROBE_THREADS"), "lock_cycle"}, {preload_env()});
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_NE(r.err.find("green: deadlock"), std::string::npos) << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("\"locks-a-then-b\" waits for pthread_mutex 0x[0-9a-f]+ held by fiber "
                                                    "[0-9]+ \"locks-b-then-a\", which waits for pthread_mutex")))
        << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("\"locks-b-then-a\" waits for pthread_mutex 0x[0-9a-f]+ held by fiber "
                                                    "[0-9]+ \"locks-a-then-b\"")))
        << r.err;
}

TEST(ShimLimits, ThreadLocalIsSharedByTheFibersOfOneHub) {
    // Documented limitation (ARCHITECTURE.md): the compiler addresses
    // thread_local directly, so no preload can make it per fiber.
    const std::string probe = env_or_die("GREEN_PROBE_THREADS");
    EXPECT_EQ(run_capture({probe, "thread_local_shared"}).out, "thread_local shared by two threads: 0\n");
    EXPECT_EQ(run_capture({probe, "thread_local_shared"}, {preload_env(), "GREEN_HUBS=1"}).out,
              "thread_local shared by two threads: 1\n");
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
                                           BadConfig{"GREEN_HUBS=-1", "GREEN_HUBS", "1 to 64"},
                                           BadConfig{"GREEN_BLOCKED_MS=soon", "GREEN_BLOCKED_MS",
                                                     "milliseconds from 0 (off) to 3600000"},
                                           BadConfig{"GREEN_DUMP_SIGNAL=KILL", "GREEN_DUMP_SIGNAL",
                                                     "one of QUIT, USR1, USR2"}),
                         [](const auto& info) {
                             std::string n = info.param.assignment;
                             for (char& c : n)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });

std::vector<std::string> all_cases() {
    std::vector<std::string> out;
    for (const auto& c : kCases) out.push_back("io/" + c);
    for (const auto& c : kThreadCases) out.push_back("threads/" + c);
    for (const auto& c : kThreadCases) out.push_back("threads2/" + c);
    return out;
}

INSTANTIATE_TEST_SUITE_P(CallFamilies, Differential, ::testing::ValuesIn(all_cases()), [](const auto& info) {
    std::string n = info.param;
    std::replace(n.begin(), n.end(), '/', '_');
    return n;
});

}  // namespace
