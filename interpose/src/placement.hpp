// Which hub a new thread-fiber runs on. Fibers never migrate, so this one
// choice decides where a "thread" spends its whole life: it is made by load,
// not blindly in turn, so that one long-lived thread and many short ones, or a
// hub held by a CPU-bound fiber, do not collect the new threads.
#pragma once

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

}  // namespace green::interpose
