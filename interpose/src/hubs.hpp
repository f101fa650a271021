// The shim's hubs: the main thread's, plus GREEN_HUBS-1 hub threads started
// at initialisation. New "threads" (fibers) are placed over them by load
// (placement.cpp) and never migrate afterwards.
#pragma once

namespace green::detail {
class Hub;
}

namespace green::interpose {

void start_hub_threads(unsigned hubs);

}  // namespace green::interpose
