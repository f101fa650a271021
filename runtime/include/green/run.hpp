// Entering the runtime: green::run and process-wide configuration.
//
// Any thread may use green directly: its hub is created on first use, and its
// original stack becomes that hub's "root" fiber. run() is the usual entry
// point anyway: it runs `main` as a named fiber, returns its value, and turns
// a process-wide deadlock into a green::Deadlock exception instead of an exit.
#pragma once

#include <green/fiber.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace green {

enum class StackGuard { Auto, On, Off };
// GREEN_BALANCE: when adaptive hubs move threads (the shim's balance.cpp).
enum class Balance { Auto, Eager, Off };

struct Config {
    std::size_t stack_size;   // GREEN_STACK_SIZE: bytes, K/M suffix accepted (default 256K)
    bool stack_size_set;      // GREEN_STACK_SIZE was given: it also replaces the shim's default thread stack size
    std::size_t pool_size;    // GREEN_POOL_SIZE: blocking-pool threads (default 16)
    StackGuard stack_guard;   // GREEN_STACK_GUARD=auto|on|off (default auto, see stack_pool.hpp)
    bool stats;               // GREEN_STATS=0|1: counters on stderr at exit (default 0)
    unsigned hubs;            // GREEN_HUBS: hub threads the shim starts (default: one per usable CPU)
    bool hubs_adaptive;       // GREEN_HUBS=adaptive (the default): new threads use one hub until the
                              // shim's balancer finds it saturated with CPUs idle, then more
    Balance balance;          // GREEN_BALANCE=auto|eager|off (default auto: when a hub is saturated and a
                              // CPU idles; eager: all the time, every hub, to test moving; off: never)
    unsigned blocked_ms;      // GREEN_BLOCKED_MS: report a hub stuck in one fiber this long (default 2000, 0 = off)
    int dump_signal;          // GREEN_DUMP_SIGNAL: signal that prints every fiber's stack (default SIGQUIT, 0 = none)
    bool thread_locals_per_thread;  // GREEN_THREAD_LOCALS=thread|hub: the shim's thread-fibers get their own
                                    // thread_local variables (default thread; hub in ASan/TSan builds)
};

// The configuration read from GREEN_* variables at first use. An unparsable
// value prints one line naming the variable and the accepted form, and exits
// with status 2.
const Config& config() noexcept;

namespace detail {
void enter_run_scope() noexcept;
void leave_run_scope() noexcept;
}  // namespace detail

template <class F>
auto run(F&& main, std::string_view name = "main") {
    detail::enter_run_scope();
    struct Leave {
        ~Leave() { detail::leave_run_scope(); }
    } leave;
    auto task = spawn(std::forward<F>(main), SpawnOptions{name, 0});
    return task.join();
}

// Counters since start, summed over all hubs (cheap; for tests and stats).
struct Stats {
    std::uint64_t fibers_spawned;
    std::uint64_t switches;
    std::uint64_t fd_waits;
    std::uint64_t timer_waits;
    std::uint64_t sync_waits;
    std::uint64_t pool_jobs;
    std::uint64_t hubs;
    std::uint64_t blocked_episodes;  // hubs reported blocked by the monitor (GREEN_BLOCKED_MS)
    std::uint64_t fibers_moved;      // fibers that continued on another hub (the shim's balancing)
};
Stats stats() noexcept;

// While an ExternalWaker exists, the deadlock detector assumes that some
// thread outside green may still wake a fiber (e.g. a plain thread that will
// call Event::set() later) and does not declare a deadlock.
class ExternalWaker {
public:
    ExternalWaker() noexcept;
    ~ExternalWaker();
    ExternalWaker(const ExternalWaker&) = delete;
    ExternalWaker& operator=(const ExternalWaker&) = delete;
};

}  // namespace green
