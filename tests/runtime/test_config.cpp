// GREEN_* configuration: valid values are parsed, invalid ones stop the
// process at first use with exit status 2 and one line naming the variable
// and the accepted form. Configuration is read once per process, so every
// case runs in a death-test child ("threadsafe": a fresh exec of this binary).
#include "test_util.hpp"

#include <gmock/gmock.h>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace green_test;
using testing::AllOf;
using testing::HasSubstr;

namespace {

void clear_green_env() {
    for (const char* v : {"GREEN_STACK_SIZE", "GREEN_POOL_SIZE", "GREEN_STACK_GUARD", "GREEN_STATS", "GREEN_HUBS",
                          "GREEN_DUMP_SIGNAL"})
        ::unsetenv(v);
}

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
                    Rejected{"GREEN_DUMP_SIGNAL", "KILL", "one of QUIT, USR1, USR2"},
                    Rejected{"GREEN_DUMP_SIGNAL", "quit", "one of QUIT, USR1, USR2"},
                    Rejected{"GREEN_DUMP_SIGNAL", "3", "one of QUIT, USR1, USR2"}),
    [](const testing::TestParamInfo<Rejected>& info) {
        std::string name = std::string(info.param.var).substr(6) + "_" + std::to_string(info.index);
        return name;
    });

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
    std::fprintf(stderr, "stack_size=%zu pool_size=%zu stack_guard=%s stats=%d hubs=%u dump_signal=%d\n", c.stack_size,
                 c.pool_size, guard, c.stats ? 1 : 0, c.hubs, c.dump_signal);
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
    testing::Values(Accepted{nullptr, nullptr, "stack_size=262144 pool_size=16 stack_guard=auto stats=0 hubs=1"},
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
                    Accepted{"GREEN_HUBS", "64", "hubs=64"},
                    Accepted{nullptr, nullptr, "dump_signal=3\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "USR2", "dump_signal=12\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "SIGUSR1", "dump_signal=10\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "off", "dump_signal=0\n"},
                    Accepted{"GREEN_DUMP_SIGNAL", "0", "dump_signal=0\n"}),
    [](const testing::TestParamInfo<Accepted>& info) {
        return std::string(info.param.var ? std::string(info.param.var).substr(6) : "defaults") + "_" +
               std::to_string(info.index);
    });

}  // namespace
