// The shim's hubs: the main thread's, plus GREEN_HUBS-1 hub threads started
// at initialisation. New "threads" (fibers) are placed over them by load
// (placement.cpp); with adaptive hubs the balancer (balance.cpp) decides how
// many of them take new threads, and moves threads between them.
#pragma once

namespace green::detail {
class Hub;
}

namespace green::interpose {

void start_hub_threads(unsigned hubs, bool adaptive);
// In a fork child, on its first thread creation: start the hub threads the
// child lost (placement.cpp calls it before choosing a hub).
void restart_hub_threads_after_fork() noexcept;

}  // namespace green::interpose
