// The shim's hubs: the main thread's, plus GREEN_HUBS-1 hub threads started
// at initialisation. New "threads" (fibers) are placed round-robin over them
// and never migrate afterwards.
#pragma once

namespace green::detail {
class Hub;
}

namespace green::interpose {

void start_hub_threads(unsigned hubs);
// The hub the next pthread_create'd fiber should run on.
detail::Hub* place_new_thread() noexcept;

}  // namespace green::interpose
