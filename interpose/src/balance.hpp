// Adaptive hubs: the balancer that activates hubs and moves thread-fibers
// between them when that pays (see balance.cpp).
#pragma once

namespace green::detail {
class Hub;
}

namespace green::interpose {

// Starts the balancer thread (once; again in a fork child that restarts its
// hub threads).
void start_balancer() noexcept;
void balancer_after_fork_in_child() noexcept;
// A move point: the calling thread-fiber, on hub `h` and about to wait, moves
// to the hub the balancer asked for, if any. Returns the hub it runs on now.
detail::Hub* move_to_requested_hub(detail::Hub* h);
// What the balancer saw and did, for GREEN_STATS: moves tried and kept, and
// each hub thread's CPU time and time runnable but waiting for a CPU since
// the balancer started. Writes one line into `buf` (nothing if no balancer
// ran) and returns its length.
int balance_report(char* buf, int size) noexcept;

}  // namespace green::interpose
