// Which hub a new thread-fiber runs on. A fiber moves afterwards only when
// the balancer (balance.cpp) asks, so this choice decides where most
// "threads" spend their life: it is made by load, not blindly in turn, so
// that one long-lived thread and many short ones, or a hub held by a
// CPU-bound fiber, do not collect the new threads.
//
// With adaptive hubs only the first placement_active() slots take new
// threads; the balancer raises that number.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace green::detail {
class Hub;
}

namespace green::interpose {

// Start-up (hubs.cpp): the hubs new threads may go to, in slot order; slot 0
// is the main thread's hub.
void placement_add_hub(detail::Hub* hub) noexcept;
// On each hub's own thread, once, so that a thread-fiber ending there finds
// its slot without a search.
void placement_bind_this_thread(unsigned slot) noexcept;
// The hub the next pthread_create'd fiber should run on; counts it there.
detail::Hub* place_new_thread() noexcept;
// A thread-fiber placed by place_new_thread() ended (on its hub's thread),
// or was never started (`hub`: where it had been placed).
void placement_thread_ended() noexcept;
void placement_thread_not_started(detail::Hub* hub) noexcept;

// Adaptive hubs (balance.cpp): new threads go to the first placement_active()
// slots only; placement_start_adaptive() sets that to 1.
void placement_start_adaptive() noexcept;
unsigned placement_active() noexcept;
void placement_activate(unsigned n) noexcept;
unsigned placement_hub_count() noexcept;
detail::Hub* placement_hub(unsigned slot) noexcept;
long placement_live(unsigned slot) noexcept;  // thread-fibers counted on the slot
// The slot of the hub the calling context runs on (-1: none).
int placement_slot_of_this_thread() noexcept;
// The calling thread-fiber moved here from `from_slot`: recount it.
void placement_thread_moved(int from_slot) noexcept;
// Another thread's CPU time in ns (-1 if it cannot be read), and the
// monotonic clock in ns: the readings placement and the balancer judge by.
std::int64_t thread_cpu_ns(pid_t tid) noexcept;
std::int64_t monotonic_ns() noexcept;

}  // namespace green::interpose
