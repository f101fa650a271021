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
#include "placement.hpp"

namespace green::interpose {

namespace {

std::vector<detail::Hub*>* g_hubs = nullptr;  // written once during start-up
std::atomic<unsigned> g_ready{0};

struct StartArg {
    std::atomic<detail::Hub*> hub{nullptr};
    unsigned slot = 0;
};

void* hub_thread(void* p) {
    auto* arg = static_cast<StartArg*>(p);
    detail::Hub& h = detail::Hub::current();
    placement_bind_this_thread(arg->slot);
    arg->hub.store(&h, std::memory_order_release);
    g_ready.fetch_add(1, std::memory_order_release);
    detail::os::futex_wake(reinterpret_cast<std::atomic<std::uint32_t>*>(&g_ready), 1);
    for (;;) h.park_idle();
}

}  // namespace

void start_hub_threads(unsigned hubs) {
    g_hubs = new std::vector<detail::Hub*>();
    g_hubs->push_back(&detail::Hub::current());
    placement_add_hub(g_hubs->back());
    placement_bind_this_thread(0);
    for (unsigned i = 1; i < hubs; ++i) {
        auto* arg = new StartArg();  // lives as long as the process
        arg->slot = i;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
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
        placement_add_hub(g_hubs->back());
    }
}

}  // namespace green::interpose
