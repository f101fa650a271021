// The deadlock detector: exit status 3 with a report outside green::run, a
// green::Deadlock exception carrying the report inside it, and no false
// alarms while a timer, an fd, a pool job or an ExternalWaker can still wake
// someone.
#include "test_util.hpp"

#include <gmock/gmock.h>

#include <unistd.h>

#include <cstdio>
#include <future>
#include <latch>
#include <string>
#include <thread>
#include <utility>

using namespace green_test;
using testing::AllOf;
using testing::ContainsRegex;
using testing::HasSubstr;

namespace {

// --- children of the death tests (each runs in a fresh process) ---------------

[[noreturn]] void event_and_join_child() {
    green::Event never;
    auto waiter = green::spawn([&] { never.wait(); }, {"event-waiter"});
    auto joiner = green::spawn([&] { waiter.join(); }, {"the-joiner"});
    joiner.join();  // the thread's root parks too: nothing can ever run again
    std::_Exit(0);  // not reached
}

// Two mutexes and two fibers that each lock one and then wait for the
// other's: a cycle nothing can break.
struct MutexCycle {
    green::Mutex a, b;
    green::Event a_held, b_held;
};

// Named, out-of-line frames that the report's backtraces must show.
__attribute__((noinline)) void holds_a_waits_for_b(MutexCycle& c) {
    std::lock_guard la(c.a);
    c.a_held.set();
    c.b_held.wait();
    std::lock_guard lb(c.b);
}

__attribute__((noinline)) void holds_b_waits_for_a(MutexCycle& c) {
    std::lock_guard lb(c.b);
    c.b_held.set();
    c.a_held.wait();
    std::lock_guard la(c.a);
}

// Starts the cycle's fibers under the names given; joining either never returns.
std::pair<green::Task<void>, green::Task<void>> start_cycle(MutexCycle& c, const char* first, const char* second) {
    auto a = green::spawn([&c] { holds_a_waits_for_b(c); }, {first});
    auto b = green::spawn([&c] { holds_b_waits_for_a(c); }, {second});
    return {std::move(a), std::move(b)};
}

[[noreturn]] void mutex_cycle_child() {
    MutexCycle cycle;
    auto [first, second] = start_cycle(cycle, "locks-a-then-b", "locks-b-then-a");
    first.join();
    std::_Exit(0);  // not reached
}

[[noreturn]] void named_cycle_child() {
    // stdout into the captured stderr: a pipe, so stdio buffers it fully
    // and only a flush before the exit lets the line through.
    dup2(2, 1);
    std::printf("buffered line from the program\n");
    MutexCycle cycle;
    auto [first, second] = start_cycle(cycle, "first", "second");
    first.join();
    std::_Exit(0);  // not reached
}

// The report line of the fiber named `name`, or "".
std::string report_line(const std::string& report, const std::string& name) {
    std::size_t at = report.find("\"" + name + "\" waits");  // the fiber's own line
    if (at == std::string::npos) return {};
    std::size_t begin = report.rfind('\n', at) + 1;
    return report.substr(begin, report.find('\n', at) - begin);
}

[[noreturn]] void mutex_cycle_under_run_child() {
    std::uint64_t id_a = 0, id_b = 0;
    try {
        green::run([&] {
            MutexCycle cycle;
            auto [first, second] = start_cycle(cycle, "locks-a-then-b", "locks-b-then-a");
            id_a = first.id();
            id_b = second.id();
            first.join();
        });
    } catch (const green::Deadlock& d) {
        std::string report = d.what();
        std::fprintf(stderr, "caught green::Deadlock: %s", report.c_str());
        // Each line names the fiber holding the mutex waited for, by id and name.
        auto names = [](const std::string& line, const std::string& holder) {
            return line.find("held by fiber " + holder) != std::string::npos;
        };
        bool ok = names(report_line(report, "locks-a-then-b"), std::to_string(id_b) + " \"locks-b-then-a\"") &&
                  names(report_line(report, "locks-b-then-a"), std::to_string(id_a) + " \"locks-a-then-b\"");
        std::fprintf(stderr, "holders %s\n", ok ? "named" : "wrong");
        std::_Exit(0);
    }
    std::_Exit(1);
}

[[noreturn]] void two_hubs_child() {
    // Each hub waits for an event only the other would set after its own
    // wait: both hubs idle, neither can make progress.
    green::Event for_a, for_b;
    std::latch hubs(2);
    // A thread whose hub runs one fiber: it waits for `mine`, then sets `theirs`.
    auto hub = [&hubs](green::Event& mine, green::Event& theirs, const char* name) {
        return std::thread([&hubs, &mine, &theirs, name] {
            (void)green::this_fiber::id();
            hubs.arrive_and_wait();
            green::spawn([&] {
                mine.wait();
                theirs.set();
            }, {name}).join();
        });
    };
    std::thread a = hub(for_a, for_b, "on-hub-a");
    std::thread b = hub(for_b, for_a, "on-hub-b");
    a.join();  // this thread never used green: it is not a hub
    b.join();
    std::_Exit(0);  // not reached
}

// Runs `child` in a fresh process (the "threadsafe" style re-executes this
// binary) and expects it to exit with `code`, its stderr matching `report`.
void expect_child_exit(void (*child)(), int code, const testing::Matcher<const std::string&>& report) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(child(), testing::ExitedWithCode(code), report);
}

}  // namespace

TEST(DeadlockDeathTest, ExitsWithStatus3AndReportsWhoWaitsOnWhat) {
    expect_child_exit(event_and_join_child, 3,
                      AllOf(HasSubstr("deadlock"), ContainsRegex("\"event-waiter\" waits on Event"),
                            ContainsRegex("\"the-joiner\" waits to join fiber [0-9]+ \"event-waiter\""),
                            ContainsRegex("\"thread-root\" waits to join fiber [0-9]+ \"the-joiner\"")));
}

TEST(DeadlockDeathTest, MutexCycleIsReported) {
    expect_child_exit(mutex_cycle_child, 3,
                      AllOf(HasSubstr("deadlock"), ContainsRegex("\"locks-a-then-b\" waits for Mutex .* held by fiber"),
                            ContainsRegex("\"locks-b-then-a\" waits for Mutex .* held by fiber")));
}

TEST(DeadlockDeathTest, ReportShowsEachParkedFibersStackAndFlushesStdio) {
    expect_child_exit(named_cycle_child, 3,
                      AllOf(ContainsRegex("\"first\" waits for Mutex [^\n]*\n( +#[0-9]+ [^\n]*\n)*"
                                          " +#[0-9]+ [^\n]*holds_a_waits_for_b[^\n]*test_deadlock.cpp:[0-9]+"),
                            ContainsRegex("\"second\" waits for Mutex [^\n]*\n( +#[0-9]+ [^\n]*\n)*"
                                          " +#[0-9]+ [^\n]*holds_b_waits_for_a[^\n]*test_deadlock.cpp:[0-9]+"),
                            HasSubstr("buffered line from the program")));
}

TEST(DeadlockDeathTest, MutexCycleUnderRunThrowsDeadlock) {
    expect_child_exit(mutex_cycle_under_run_child, 0,
                      AllOf(HasSubstr("caught green::Deadlock: green: deadlock"),
                            ContainsRegex("\"locks-a-then-b\" waits for Mutex 0x[0-9a-f]+ held by fiber [0-9]+"),
                            ContainsRegex("\"locks-b-then-a\" waits for Mutex 0x[0-9a-f]+ held by fiber [0-9]+"),
                            HasSubstr("holders named")));
}

TEST(DeadlockDeathTest, SpansEveryHub) {
    expect_child_exit(
        two_hubs_child, 3,
        AllOf(HasSubstr("deadlock"), ContainsRegex("hub [0-9]+ \\(thread [0-9]+\\)"),
              ContainsRegex("\"on-hub-a\" waits on Event"), ContainsRegex("\"on-hub-b\" waits on Event")));
}

TEST(Deadlock, UnderRunThrowsDeadlockWithTheReport) {
    green::Event never, main_exited;
    std::string report;
    try {
        green::run([&] {
            struct Exit {
                green::Event& e;
                ~Exit() { e.set(); }
            } on_exit{main_exited};
            auto waiter = green::spawn([&] { never.wait(); }, {"stuck-waiter"});
            waiter.join();
        }, "run-main");
        ADD_FAILURE() << "green::run returned";
    } catch (const green::Deadlock& d) {
        report = d.what();
    }
    EXPECT_THAT(report, HasSubstr("deadlock"));
    EXPECT_THAT(report, ContainsRegex("\"stuck-waiter\" waits on Event"));
    EXPECT_THAT(report, ContainsRegex("\"run-main\" waits to join fiber [0-9]+ \"stuck-waiter\""));

    // The fibers are still parked; let them finish so nothing outlives the
    // objects they wait on.
    never.set();
    main_exited.wait();
}

TEST(Deadlock, NoFalseAlarmWhileATimerIsPending) {
    bool slept = in_green([] {
        green::Event ev;
        bool woke_from_sleep = false;
        auto setter = green::spawn([&] {
            green::this_fiber::sleep_for(30ms);
            woke_from_sleep = true;
            ev.set();
        });
        ev.wait();
        setter.join();
        return woke_from_sleep;
    });
    EXPECT_TRUE(slept) << "the wait ended before the sleeping fiber set the event";
}

TEST(Deadlock, NoFalseAlarmWhileAPoolJobRuns) {
    in_green([] {
        green::Event ev;
        std::promise<void> go;
        auto f = go.get_future();
        auto caller = green::spawn([&] {
            int job = green::call_blocking([&] {
                f.wait();
                return 42;
            });
            ev.set();
            return job;
        });
        // A plain thread (no hub, no ExternalWaker) releases the job: while
        // this fiber waits, the in-flight pool job is the only thing that
        // can wake anyone, and it must count.
        std::thread t([&] { go.set_value(); });
        ev.wait();
        t.join();
        EXPECT_EQ(caller.join(), 42) << "the pool job's result";
    });
}

TEST(Deadlock, NoFalseAlarmWhileAnFdWaitIsPending) {
    in_green([] {
        SocketPair sp;
        green::Event ev;
        auto reader = green::spawn([&] {
            EXPECT_EQ(green::wait_fd(sp.a(), green::kReadable), green::WaitResult::Ready);
            ev.set();
        });
        // A plain thread writes; this hub only has the fd wait to go on.
        std::thread t([&] { write_byte(sp.b()); });
        ev.wait();
        t.join();
        reader.join();
    });
}

TEST(Deadlock, NoFalseAlarmWhileAnotherHubWorks) {
    in_green([] {
        green::Event done;
        std::latch has_hub(1);
        int yields = 0;
        std::thread t([&] {
            (void)green::this_fiber::id();
            has_hub.count_down();
            for (; yields < 100; ++yields) green::this_fiber::yield();
            done.set();
        });
        has_hub.wait();
        done.wait();
        t.join();
        EXPECT_EQ(yields, 100) << "the other hub's work ran to its end";
    });
}
