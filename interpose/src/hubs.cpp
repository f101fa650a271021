// See hubs.hpp. A hub thread's root fiber parks idle forever; the hub's
// scheduler runs the fibers placed on it. Hub threads are created with libc's
// own pthread_create (never the hook, which would make them fibers).
#include "hubs.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "hub.hpp"
#include "os.hpp"
#include "signals.hpp"

namespace green::interpose {

namespace {

std::vector<detail::Hub*>* g_hubs = nullptr;  // written once during start-up
std::atomic<unsigned> g_ready{0};
std::atomic<std::uint32_t> g_next{0};

struct StartArg {
    std::atomic<detail::Hub*> hub{nullptr};
};

void* hub_thread(void* p) {
    auto* arg = static_cast<StartArg*>(p);
    detail::Hub& h = detail::Hub::current();
    signals_start_hub();
    arg->hub.store(&h, std::memory_order_release);
    g_ready.fetch_add(1, std::memory_order_release);
    detail::os::futex_wake(reinterpret_cast<std::atomic<std::uint32_t>*>(&g_ready), 1);
    for (;;) h.park_idle();
}

}  // namespace

void start_hub_threads(unsigned hubs) {
    g_hubs = new std::vector<detail::Hub*>();
    g_hubs->push_back(&detail::Hub::current());
    for (unsigned i = 1; i < hubs; ++i) {
        auto* arg = new StartArg();  // lives as long as the process
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        detail::os::block_signals_in(&attr);
        if (detail::os::libc().pthread_create(&t, &attr, hub_thread, arg) != 0) {
            detail::os::write_stderr("green: cannot start a hub thread (GREEN_HUBS)\n");
            _exit(2);
        }
        pthread_attr_destroy(&attr);
        detail::os::libc().pthread_detach(t);
        // Start-up only: wait until the thread has its hub.
        for (unsigned seen; (seen = g_ready.load(std::memory_order_acquire)) < i;)
            detail::os::futex_wait(reinterpret_cast<std::atomic<std::uint32_t>*>(&g_ready), seen);
        g_hubs->push_back(arg->hub.load());
    }
}

detail::Hub* place_new_thread() noexcept {
    if (!g_hubs || g_hubs->size() == 1) return detail::Hub::current_if_any();
    return (*g_hubs)[g_next.fetch_add(1, std::memory_order_relaxed) % g_hubs->size()];
}

}  // namespace green::interpose
