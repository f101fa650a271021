// Differential tests: the probe program (plain POSIX, no green headers) runs
// once unpatched and once under LD_PRELOAD=libgreen-preload.so; for every
// call family its printed observations (return values, errno names, bytes,
// flags) must be identical, and the patched run must show the shim active.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <cctype>
#include <sstream>

#include "../common/env.hpp"
#include "probe_cases.hpp"

using namespace green::test;

namespace {

// Cases of the I/O probe (probe.cpp) and of the thread probe (probe_threads.cpp).
const std::vector<std::string> kCases = {"read_write", "vectors", "nonblocking_flags", "timeouts", "connect_accept",
                                         "poll_select", "bad_timeouts", "sleep", "dns", "dns_numeric", "sendfile", "big_transfer",
                                         "files", "thread_passthrough"};
const std::vector<std::string> kThreadCases = {"lifecycle", "keys", "mutex_types", "condvar",
                                               "rwlock", "rwlock_reader_timeout", "barrier_sem", "far_deadlines", "clock_ids", "process", "free_after_wake", "exit_from_thread",
                                               "uncaught_in_thread", "main_pthread_exit",
                                               "main_returns_with_threads_blocked", "foreign_thread", "cancel", "cancel_swallowed",
                                               "exit_time_keys"};
// Cases of the fd/process probe (probe_fds.cpp), run with one hub and two.
const std::vector<std::string> kFdCases = {"first_open", "daemon_close", "foreign_pipe_thread", "eventfd_timerfd",
                                           "inherited_listener", "popen_reader", "child_pipes", "vfork_exec",
                                           "fork_threads", "fork_during_fd_churn", "daemon_threads", "waitall", "select_big",
                                           "splice_tee", "mmsg", "linger_close", "stdio_socket", "pty_reader"};
// Listed by the probe but checked by their own tests below.
const std::vector<std::string> kThreadOnlyPatched = {"lock_cycle", "rwlock_cycle"};
// Cases of the per-thread state probe (probe_thread_state.cpp).
const std::vector<std::string> kStateCases = {"errno", "exceptions", "thread_locals", "thread_local_connection",
                                              "thread_local_connection_poll", "dlopen_tls", "thread_churn"};

// Exit statuses the cases end with unpatched (0 unless listed); the patched
// run must end the same way.
int expected_status(const std::string& name) {
    if (name == "exit_from_thread") return 7;
    if (name == "uncaught_in_thread") return 128 + SIGABRT;
    if (name == "main_returns_with_threads_blocked") return 4;
    if (name == "cancel_swallowed") return 128 + SIGABRT;
    return 0;
}

class Differential : public ::testing::TestWithParam<std::string> {};

TEST(DifferentialSetup, EveryProbeCaseIsTested) {
    EXPECT_EQ(probe_cases(env_or_die("GREEN_PROBE")), lines(kCases)) << "probe cases and this test's list differ";
    std::vector<std::string> all = kThreadCases;
    all.insert(all.end(), kThreadOnlyPatched.begin(), kThreadOnlyPatched.end());
    EXPECT_EQ(probe_cases(env_or_die("GREEN_PROBE_THREADS")), lines(all))
        << "thread probe cases and this test's list differ";
    EXPECT_EQ(probe_cases(env_or_die("GREEN_PROBE_THREAD_STATE")), lines(kStateCases))
        << "thread-state probe cases and this test's list differ";
    EXPECT_EQ(probe_cases(env_or_die("GREEN_PROBE_FDS")), lines(kFdCases))
        << "fd probe cases and this test's list differ";
}

// "io/<case>" runs probe, "threads/<case>" runs probe_threads, "state/<case>"
// runs probe_thread_state, "fds/<case>" runs probe_fds, with the default hub
// count; "threads2/", "state2/" and "fds2/" run them with GREEN_HUBS=2
// (fibers on two OS threads); "threadsm/", "statem/" and "fdsm/" with two
// hubs and GREEN_BALANCE=eager (threads keep moving between them).
TEST_P(Differential, PatchedOutputMatchesUnpatched) {
    const std::string param = GetParam();
    const std::string kind = param.substr(0, param.find('/'));
    const std::string name = param.substr(param.find('/') + 1);
    const std::string probe = env_or_die(kind == "io"                        ? "GREEN_PROBE"
                                         : kind.rfind("state", 0) == 0 ? "GREEN_PROBE_THREAD_STATE"
                                         : kind.rfind("fds", 0) == 0   ? "GREEN_PROBE_FDS"
                                                                       : "GREEN_PROBE_THREADS");
    std::vector<std::string> env = {preload_env(), "GREEN_STATS=1"};
    if (kind.back() == '2' || kind.back() == 'm') env.push_back("GREEN_HUBS=2");
    if (kind.back() == 'm') env.push_back("GREEN_BALANCE=eager");
    auto plain = run_capture({probe, name});
    auto patched = run_capture({probe, name}, env);
    ASSERT_EQ(plain.status, expected_status(name)) << plain.err;
    ASSERT_EQ(patched.status, plain.status) << patched.err;
    ASSERT_FALSE(plain.out.empty());
    EXPECT_EQ(patched.out, plain.out);
    if (name == "cancel_swallowed") {
        EXPECT_NE(plain.err.find("FATAL: exception not rethrown"), std::string::npos) << plain.err;
        EXPECT_NE(patched.err.find("FATAL: exception not rethrown"), std::string::npos) << patched.err;
    } else if (name == "uncaught_in_thread") {
        EXPECT_NE(patched.err.find("terminate called after throwing"), std::string::npos) << patched.err;
        EXPECT_NE(patched.err.find("escaped a thread"), std::string::npos) << patched.err;
    } else {
        EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
    }
    EXPECT_EQ(plain.err.find("green:"), std::string::npos) << "unpatched run must not load the shim";
    if (name == "dns_numeric") {
        // Numeric hosts and services never reach the resolver: no pool job.
        EXPECT_NE(patched.err.find("pool jobs 0,"), std::string::npos) << patched.err;
        EXPECT_EQ(patched.err.find(" dns=0"), std::string::npos) << "the calls went through the hooks: " << patched.err;
    }
}

// A program that brings its own allocator: jemalloc's first malloc takes a
// pthread mutex before the shim is ready, and its background threads are made
// by libc's own pthread_create. Same output with and without the shim.
class WithJemalloc : public ::testing::TestWithParam<std::string> {};

TEST_P(WithJemalloc, SameOutputAsUnpatched) {
    const std::string jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    if (access(jemalloc.c_str(), R_OK) != 0) GTEST_SKIP() << jemalloc << " missing (package libjemalloc2)";
    const std::string param = GetParam();
    const std::string hubs = param.substr(0, param.find('/'));
    const std::string name = param.substr(param.find('/') + 1);
    const std::string probe = env_or_die("GREEN_PROBE_THREADS");
    // background_thread:true makes jemalloc start its own threads.
    const std::string conf = "MALLOC_CONF=background_thread:true";
    auto plain = run_capture({probe, name}, {"LD_PRELOAD=" + jemalloc, conf});
    auto patched = run_capture({probe, name}, {"LD_PRELOAD=" + env_or_die("GREEN_PRELOAD") + " " + jemalloc, conf,
                                               "GREEN_STATS=1", "GREEN_HUBS=" + hubs});
    ASSERT_EQ(plain.status, 0) << plain.err;
    EXPECT_EQ(patched.status, 0) << patched.err;
    EXPECT_EQ(patched.out, plain.out);
    EXPECT_NE(patched.err.find("green: shim active"), std::string::npos) << patched.err;
}

INSTANTIATE_TEST_SUITE_P(Cases, WithJemalloc,
                         ::testing::Values("1/lifecycle", "1/condvar", "1/foreign_thread", "1/cancel", "2/lifecycle",
                                           "2/condvar", "2/foreign_thread", "2/cancel"),
                         [](const auto& info) {
                             std::string s = "hubs" + info.param;
                             for (auto& c : s) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return s;
                         });

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

// The moving variants above must really move threads: with
// GREEN_BALANCE=eager, a probe whose threads each keep a thread_local
// connection across hundreds of blocking waits, in read() or in poll() (both
// move points), sees its threads continue on the other hub, and prints what
// it prints unpatched.
class ShimMoves : public ::testing::TestWithParam<std::string> {};

TEST_P(ShimMoves, EagerBalancingMovesThreadsWhoseStateGoesWithThem) {
    const std::string probe = env_or_die("GREEN_PROBE_THREAD_STATE");
    auto plain = run_capture({probe, GetParam()});
    auto moving = run_capture({probe, GetParam()}, {preload_env(), "GREEN_STATS=1", "GREEN_HUBS=2", "GREEN_BALANCE=eager"});
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_EQ(moving.status, 0) << moving.err;
    EXPECT_EQ(moving.out, plain.out);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(moving.err, m, std::regex("fibers moved ([0-9]+)"))) << moving.err;
    EXPECT_GT(std::stoul(m[1].str()), 10u) << moving.err;
}

INSTANTIATE_TEST_SUITE_P(WaitingIn, ShimMoves, ::testing::Values("thread_local_connection", "thread_local_connection_poll"));

TEST(ShimReports, RwlockCycleNamesEachDirection) {
    auto r = run_capture({env_or_die("GREEN_PROBE_THREADS"), "rwlock_cycle"}, {preload_env()});
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("\"reads-b-then-a\" waits for pthread_rwlock \\(read\\) 0x[0-9a-f]+ held by "
                                                    "fiber [0-9]+ \"writes-a-then-b\", which waits on pthread_rwlock "
                                                    "\\(write\\) 0x[0-9a-f]+\n")))
        << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("\"writes-a-then-b\" waits on pthread_rwlock \\(write\\) 0x[0-9a-f]+\n")))
        << r.err;
}

// GREEN_THREAD_LOCALS=hub is the documented way back to thread_local shared
// by the fibers of a hub; the default gives each thread its own.
TEST(ShimThreadLocals, HubModeSharesThemAndThreadModeDoesNot) {
    const std::string probe = env_or_die("GREEN_PROBE_THREAD_STATE");
    auto plain = run_capture({probe, "thread_locals"});
    auto shared = run_capture({probe, "thread_locals"}, {preload_env(), "GREEN_THREAD_LOCALS=hub"});
    auto own = run_capture({probe, "thread_locals"}, {preload_env(), "GREEN_THREAD_LOCALS=thread"});
    ASSERT_EQ(plain.status, 0);
    EXPECT_EQ(own.status, 0) << own.err;
    EXPECT_EQ(shared.status, 0) << shared.err;
    EXPECT_EQ(own.out, plain.out);
    EXPECT_NE(shared.out, plain.out) << "with GREEN_THREAD_LOCALS=hub the fibers of a hub share thread_local";
}

// A GREEN_* value that does not parse stops the program at start with one
// line naming the variable and the accepted form, exit status 2.
struct BadConfig {
    const char* assignment;
    const char* variable;
    const char* accepted;
};
class ShimConfig : public ::testing::TestWithParam<BadConfig> {};

// A value far longer than the message buffer is shown cut, on one line.
const std::string kLongValue = "GREEN_POOL_SIZE=" + std::string(3000, '7');

TEST_P(ShimConfig, BadValueFailsAtStartWithOneLine) {
    auto r = run_capture({env_or_die("GREEN_PROBE"), "read_write"}, {preload_env(), GetParam().assignment});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(r.out.empty()) << "the program must not have run: " << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(GetParam().variable), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(GetParam().accepted), std::string::npos) << r.err;
    EXPECT_LT(r.err.size(), 512u) << r.err;
    EXPECT_EQ(r.err.back(), '\n');
}

INSTANTIATE_TEST_SUITE_P(Values, ShimConfig,
                         ::testing::Values(BadConfig{"GREEN_STACK_SIZE=banana", "GREEN_STACK_SIZE", "16K to 1G"},
                                           BadConfig{"GREEN_STACK_SIZE=8K", "GREEN_STACK_SIZE", "16K to 1G"},
                                           BadConfig{"GREEN_POOL_SIZE=0", "GREEN_POOL_SIZE", "1 to 1024"},
                                           BadConfig{"GREEN_STACK_GUARD=maybe", "GREEN_STACK_GUARD", "auto, on, off"},
                                           BadConfig{"GREEN_STATS=yes", "GREEN_STATS", "0 or 1"},
                                           BadConfig{"GREEN_HUBS=-1", "GREEN_HUBS", "1 to 64"},
                                           BadConfig{"GREEN_HUBS=all", "GREEN_HUBS", "1 to 64, auto, or adaptive"},
                                           BadConfig{"GREEN_BALANCE=sometimes", "GREEN_BALANCE", "auto, eager or off"},
                                           BadConfig{kLongValue.c_str(), "GREEN_POOL_SIZE", "1 to 1024"},
                                           BadConfig{"GREEN_BLOCKED_MS=soon", "GREEN_BLOCKED_MS",
                                                     "milliseconds from 0 (off) to 3600000"},
                                           BadConfig{"GREEN_THREAD_LOCALS=fiber", "GREEN_THREAD_LOCALS",
                                                     "thread or hub"},
                                           BadConfig{"GREEN_DUMP_SIGNAL=KILL", "GREEN_DUMP_SIGNAL",
                                                     "one of QUIT, USR1, USR2"}),
                         [](const auto& info) {
                             std::string n = info.param.assignment;
                             for (char& c : n)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n.size() > 40 ? n.substr(0, 40) + "_cut" : n;
                         });

std::vector<std::string> all_cases() {
    std::vector<std::string> out;
    for (const auto& c : kCases) out.push_back("io/" + c);
    for (const auto& c : kThreadCases) out.push_back("threads/" + c);
    for (const auto& c : kThreadCases) out.push_back("threads2/" + c);
    for (const auto& c : kThreadCases) out.push_back("threadsm/" + c);
    for (const auto& c : kStateCases) out.push_back("state/" + c);
    for (const auto& c : kStateCases) out.push_back("state2/" + c);
    for (const auto& c : kStateCases) out.push_back("statem/" + c);
    for (const auto& c : kFdCases) out.push_back("fds/" + c);
    for (const auto& c : kFdCases) out.push_back("fds2/" + c);
    for (const auto& c : kFdCases) out.push_back("fdsm/" + c);
    return out;
}

INSTANTIATE_TEST_SUITE_P(CallFamilies, Differential, ::testing::ValuesIn(all_cases()), [](const auto& info) {
    std::string n = info.param;
    std::replace(n.begin(), n.end(), '/', '_');
    return n;
});

}  // namespace
