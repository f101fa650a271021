// See hubs.hpp. A hub thread's root fiber parks idle forever; the hub's
// scheduler runs the fibers placed on it. Hub threads start as plain threads
// (os::start_plain_thread: never the hook, which would make them fibers).
//
// After fork() the child has only the forking thread, so only its hub
// (placement.cpp then places everything there). It gets its GREEN_HUBS back
// on its first thread creation, not at once: a child that only execs should
// not pay for threads.
#include "hubs.hpp"

#include <green/run.hpp>

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "balance.hpp"
#include "hub.hpp"
#include "os.hpp"
#include "placement.hpp"
#include "signals.hpp"

namespace green::interpose {

namespace {

std::vector<detail::Hub*>* g_hubs = nullptr;  // written during start-up, and in a fork child
std::atomic<unsigned> g_ready{0};
unsigned g_wanted = 1;               // GREEN_HUBS
bool g_adaptive = false;             // GREEN_HUBS=adaptive
std::atomic<bool> g_restart{false};  // set in a fork child: hub threads are gone

struct StartArg {
    std::atomic<detail::Hub*> hub{nullptr};
    unsigned slot = 0;
};

void* hub_thread(void* p) {
    auto* arg = static_cast<StartArg*>(p);
    detail::Hub& h = detail::Hub::current();
    placement_bind_this_thread(arg->slot);
    signals_start_hub();
    arg->hub.store(&h, std::memory_order_release);
    g_ready.fetch_add(1, std::memory_order_release);
    detail::os::futex_wake(reinterpret_cast<std::atomic<std::uint32_t>*>(&g_ready), 1);
    for (;;) h.park_idle();
}

// Starts hub threads 1..hubs-1 and waits until each has its hub.
void add_hub_threads(unsigned hubs) {
    g_ready.store(0, std::memory_order_relaxed);
    for (unsigned i = 1; i < hubs; ++i) {
        auto* arg = new StartArg();  // lives as long as the process
        arg->slot = i;
        if (!detail::os::start_plain_thread(hub_thread, arg, 256 * 1024)) {
            detail::os::write_stderr("green: cannot start a hub thread (GREEN_HUBS)\n");
            _exit(2);
        }
        for (unsigned seen; (seen = g_ready.load(std::memory_order_acquire)) < i;)
            detail::os::futex_wait(reinterpret_cast<std::atomic<std::uint32_t>*>(&g_ready), seen);
        g_hubs->push_back(arg->hub.load());
        placement_add_hub(g_hubs->back());
    }
    if (hubs > 1 && (g_adaptive || config().balance == Balance::Eager)) start_balancer();
}

void after_fork_in_child() {
    if (!g_hubs) return;
    g_hubs->clear();
    if (detail::Hub* h = detail::Hub::current_if_any()) g_hubs->push_back(h);
    g_restart.store(g_wanted > 1 && !g_hubs->empty(), std::memory_order_relaxed);
    balancer_after_fork_in_child();
}

}  // namespace

void start_hub_threads(unsigned hubs, bool adaptive) {
    g_wanted = hubs;
    g_adaptive = adaptive;
    if (adaptive) placement_start_adaptive();
    g_hubs = new std::vector<detail::Hub*>();
    g_hubs->push_back(&detail::Hub::current());
    placement_add_hub(g_hubs->back());
    placement_bind_this_thread(0);
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    add_hub_threads(hubs);
}

void restart_hub_threads_after_fork() noexcept {
    if (g_restart.load(std::memory_order_relaxed) && g_restart.exchange(false)) add_hub_threads(g_wanted);
}

}  // namespace green::interpose
