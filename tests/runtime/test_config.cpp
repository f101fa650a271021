// GREEN_* configuration: valid values are parsed, invalid ones stop the
// process at first use with exit status 2 and one line naming the variable
// and the accepted form. Configuration is read once per process, so every
// case runs in a death-test child ("threadsafe": a fresh exec of this binary).
#include "test_util.hpp"

#include <gmock/gmock.h>

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace green_test;
using testing::AllOf;
using testing::HasSubstr;

namespace {

MATCHER(IsOneLine, "is exactly one newline-terminated line") {
    return !arg.empty() && arg.back() == '\n' && arg.find('\n') == arg.size() - 1;
}

struct Rejected {
    const char* var;
    const char* value;
    const char* accepted;  // part of the "expected ..." text
};

void PrintTo(const Rejected& r, std::ostream* os) { *os << r.var << "='" << r.value << "'"; }

// The first green call in the child reads the configuration.
[[noreturn]] void rejected_child(const Rejected& r) {
    clear_green_env();
    ::setenv(r.var, r.value, 1);
    green::spawn([] {}).join();
    std::_Exit(0);  // not reached for an invalid value
}

class ConfigRejects : public testing::TestWithParam<Rejected> {};

TEST_P(ConfigRejects, ExitsWithStatus2AndOneExplanatoryLine) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const Rejected& r = GetParam();
    EXPECT_EXIT(rejected_child(r), testing::ExitedWithCode(2),
                AllOf(IsOneLine(), HasSubstr(std::string(r.var) + "='" + r.value + "'"), HasSubstr("expected"),
                      HasSubstr(r.accepted)));
}

INSTANTIATE_TEST_SUITE_P(
    Values, ConfigRejects,
    testing::Values(Rejected{"GREEN_STACK_SIZE", "banana", "stack size in bytes with optional K/M/G suffix"},
                    Rejected{"GREEN_STACK_SIZE", "", "16K to 1G"},
                    Rejected{"GREEN_STACK_SIZE", "8K", "16K to 1G"},
                    Rejected{"GREEN_STACK_SIZE", "2G", "16K to 1G"},
                    Rejected{"GREEN_STACK_SIZE", "-64K", "16K to 1G"},
                    Rejected{"GREEN_STACK_SIZE", "64KB", "16K to 1G"},
                    Rejected{"GREEN_STACK_SIZE", "99999999999999999999999", "16K to 1G"},
                    Rejected{"GREEN_POOL_SIZE", "0", "1 to 1024"},
                    Rejected{"GREEN_POOL_SIZE", "many", "1 to 1024"},
                    Rejected{"GREEN_POOL_SIZE", "1025", "1 to 1024"},
                    Rejected{"GREEN_POOL_SIZE", " 4", "1 to 1024"},
                    Rejected{"GREEN_STACK_GUARD", "maybe", "auto, on, off"},
                    Rejected{"GREEN_STACK_GUARD", "ON", "auto, on, off"},
                    Rejected{"GREEN_STATS", "yes", "0 or 1"},
                    Rejected{"GREEN_HUBS", "0", "1 to 64"},
                    Rejected{"GREEN_HUBS", "65", "1 to 64"},
                    Rejected{"GREEN_HUBS", "AUTO", "1 to 64, auto, or adaptive"},
                    Rejected{"GREEN_HUBS", "auto4", "1 to 64, auto, or adaptive"},
                    Rejected{"GREEN_HUBS", "", "1 to 64, auto, or adaptive"},
                    Rejected{"GREEN_BALANCE", "always", "auto, eager or off"},
                    Rejected{"GREEN_DUMP_SIGNAL", "KILL", "one of QUIT, USR1, USR2"},
                    Rejected{"GREEN_DUMP_SIGNAL", "quit", "one of QUIT, USR1, USR2"},
                    Rejected{"GREEN_DUMP_SIGNAL", "3", "one of QUIT, USR1, USR2"},
                    Rejected{"GREEN_THREAD_LOCALS", "fiber", "thread or hub"},
                    Rejected{"GREEN_THREAD_LOCALS", "", "thread or hub"}),
    [](const testing::TestParamInfo<Rejected>& info) {
        std::string name = std::string(info.param.var).substr(6) + "_" + std::to_string(info.index);
        return name;
    });

// A value longer than the message buffer: the line shows it cut ("..."),
// still one line, and nothing beyond the buffer is written.
TEST(ConfigRejectsLongValue, ShowsTheValueCutOnOneLine) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    static const std::string value(3000, '7');
    EXPECT_EXIT(rejected_child(Rejected{"GREEN_POOL_SIZE", value.c_str(), "1 to 1024"}), testing::ExitedWithCode(2),
                AllOf(IsOneLine(), HasSubstr("GREEN_POOL_SIZE='777"), HasSubstr("...'"),
                      testing::ResultOf([](const std::string& s) { return s.size(); }, testing::Lt(512u))));
}

struct Accepted {
    const char* var;
    const char* value;
    const char* printed;  // what the child prints for the parsed Config
};

void PrintTo(const Accepted& a, std::ostream* os) { *os << a.var << "='" << a.value << "'"; }

[[noreturn]] void accepted_child(const Accepted& a) {
    clear_green_env();
    if (a.var) ::setenv(a.var, a.value, 1);
    const green::Config& c = green::config();
    const char* guard = c.stack_guard == green::StackGuard::Auto ? "auto"
                        : c.stack_guard == green::StackGuard::On ? "on"
                                                                  : "off";
    const char* balance = c.balance == green::Balance::Auto ? "auto" : c.balance == green::Balance::Eager ? "eager" : "off";
    std::fprintf(stderr, "stack_size=%zu pool_size=%zu stack_guard=%s stats=%d hubs=%u adaptive=%d balance=%s dump_signal=%d\n",
                 c.stack_size, c.pool_size, guard, c.stats ? 1 : 0, c.hubs, c.hubs_adaptive ? 1 : 0, balance,
                 c.dump_signal);
    // The runtime works with it.
    green::spawn([] {}).join();
    std::_Exit(0);
}

class ConfigAccepts : public testing::TestWithParam<Accepted> {};

TEST_P(ConfigAccepts, ParsesTheValue) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const Accepted& a = GetParam();
    EXPECT_EXIT(accepted_child(a), testing::ExitedWithCode(0), HasSubstr(a.printed));
}

INSTANTIATE_TEST_SUITE_P(
    Values, ConfigAccepts,
    testing::Values(Accepted{nullptr, nullptr, "stack_size=262144 pool_size=16 stack_guard=auto stats=0 hubs="},
                    Accepted{nullptr, nullptr, " balance=auto "},
                    Accepted{"GREEN_STACK_SIZE", "64K", "stack_size=65536 "},
                    Accepted{"GREEN_STACK_SIZE", "64k", "stack_size=65536 "},
                    Accepted{"GREEN_STACK_SIZE", "1M", "stack_size=1048576 "},
                    Accepted{"GREEN_STACK_SIZE", "16384", "stack_size=16384 "},
                    Accepted{"GREEN_STACK_SIZE", "1G", "stack_size=1073741824 "},
                    Accepted{"GREEN_POOL_SIZE", "1", "pool_size=1 "},
                    Accepted{"GREEN_POOL_SIZE", "1024", "pool_size=1024 "},
                    Accepted{"GREEN_STACK_GUARD", "on", "stack_guard=on "},
                    Accepted{"GREEN_STACK_GUARD", "off", "stack_guard=off "},
                    Accepted{"GREEN_STACK_GUARD", "auto", "stack_guard=auto "},
                    Accepted{"GREEN_STATS", "1", "stats=1 "},
                    Accepted{"GREEN_STATS", "0", "stats=0 "},
                    Accepted{"GREEN_HUBS", "64", "hubs=64 adaptive=0 "},
                    Accepted{"GREEN_HUBS", "1", "hubs=1 adaptive=0 "},
                    Accepted{"GREEN_BALANCE", "eager", " balance=eager "},
                    Accepted{"GREEN_BALANCE", "off", " balance=off "},
                    Accepted{nullptr, nullptr, "dump_signal=3\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "USR2", "dump_signal=12\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "SIGUSR1", "dump_signal=10\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "off", "dump_signal=0\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "0", "dump_signal=0\n"}),
    [](const testing::TestParamInfo<Accepted>& info) {
        return std::string(info.param.var ? std::string(info.param.var).substr(6) : "defaults") + "_" +
               std::to_string(info.index);
    });

// GREEN_HUBS=auto, and the default (adaptive): one hub per CPU the process
// may run on. The child restricts its own affinity first and prints what was
// chosen.
[[noreturn]] void auto_hubs_child(int pin_to_cpus, const char* hubs_value = "auto") {
    clear_green_env();
    if (hubs_value) ::setenv("GREEN_HUBS", hubs_value, 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) std::_Exit(10);
    const int allowed = CPU_COUNT(&set);
    if (pin_to_cpus > 0) {
        cpu_set_t pinned;
        CPU_ZERO(&pinned);
        for (int cpu = 0, taken = 0; cpu < CPU_SETSIZE && taken < pin_to_cpus; ++cpu)
            if (CPU_ISSET(cpu, &set)) {
                CPU_SET(cpu, &pinned);
                ++taken;
            }
        if (sched_setaffinity(0, sizeof pinned, &pinned) != 0) std::_Exit(11);
    }
    const unsigned hubs = green::config().hubs;
    const int usable = pin_to_cpus > 0 && pin_to_cpus < allowed ? pin_to_cpus : allowed;
    std::fprintf(stderr, "hubs=%u allowed=%d adaptive=%d\n", hubs, allowed, green::config().hubs_adaptive ? 1 : 0);
    green::spawn([] {}).join();
    std::_Exit(hubs >= 1 && hubs <= static_cast<unsigned>(usable) ? 0 : 12);
}

TEST(ConfigAutoHubs, PinnedToOneCpuGivesOneHub) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(auto_hubs_child(1), testing::ExitedWithCode(0), HasSubstr("hubs=1 "));
}

TEST(ConfigAutoHubs, NeverMoreHubsThanAllowedCpus) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    const int allowed = CPU_COUNT(&set);
    if (allowed < 2) GTEST_SKIP() << "this machine lets the test use one CPU only";
    // Two CPUs allowed: 2 hubs, unless a cgroup CPU quota of one CPU or less
    // applies (then 1); never more.
    EXPECT_EXIT(auto_hubs_child(2), testing::ExitedWithCode(0), testing::ContainsRegex("hubs=[12] "));
    EXPECT_EXIT(auto_hubs_child(0), testing::ExitedWithCode(0),
                testing::ContainsRegex("hubs=[1-9][0-9]* allowed=" + std::to_string(allowed) + " adaptive=0"));
}

// The default counts hubs as auto does, and makes them adaptive when there
// is more than one; pinned to one CPU it is plain one hub.
TEST(ConfigAutoHubs, DefaultIsAdaptiveOverTheUsableCpus) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(auto_hubs_child(1, nullptr), testing::ExitedWithCode(0), HasSubstr("hubs=1 allowed="));
    EXPECT_EXIT(auto_hubs_child(1, nullptr), testing::ExitedWithCode(0), HasSubstr(" adaptive=0"));
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    if (CPU_COUNT(&set) < 2) GTEST_SKIP() << "this machine lets the test use one CPU only";
    EXPECT_EXIT(auto_hubs_child(2, nullptr), testing::ExitedWithCode(0),
                testing::ContainsRegex("hubs=2 allowed=[0-9]+ adaptive=1|hubs=1 allowed=[0-9]+ adaptive=0"));
}

}  // namespace
