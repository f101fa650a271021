// See hook_context.hpp: the waits of hooked calls on fds.
#include "hook_context.hpp"

#include <poll.h>

#include "balance.hpp"
#include "hooks_cancel.hpp"
#include "real.hpp"

namespace green::interpose {

WaitResult wait_ready(detail::Hub* h, int fd, int events, Clock::time_point deadline) {
    if (h) {
        cancel_point();  // a hooked call that would block is a cancellation point
        // The caller's `h` may be stale: this fiber may have moved at an
        // earlier call of this loop; nothing above it here refers to its hub.
        h = detail::Hub::current_if_any();
        if (h->moves_requested()) [[unlikely]] h = move_to_requested_hub(h);
        WaitResult r = h->wait_fd(fd, events, deadline);
        if (r == WaitResult::Cancelled) cancel_point();
        return r;
    }
    pollfd p{fd, static_cast<short>(((events & kReadable) ? POLLIN : 0) | ((events & kWritable) ? POLLOUT : 0)), 0};
    int r = real_poll()(&p, 1, timeout_ms(deadline));
    if (r > 0) return WaitResult::Ready;
    if (r == 0) return WaitResult::TimedOut;
    return WaitResult::Cancelled;  // EINTR: reported as EINTR, as the blocking call would
}

WaitResult wait_blocking(detail::Hub* h, int fd, int events, Clock::time_point deadline, bool restartable) {
    return wait_blocking_restarting(h, fd, events, deadline, restartable && deadline == Clock::time_point::max());
}

WaitResult wait_blocking_restarting(detail::Hub* h, int fd, int events, Clock::time_point deadline,
                                    bool sa_restart_restarts) {
    for (;;) {
        if (h) signals_wait_begins();
        WaitResult w = wait_ready(h, fd, events, deadline);
        if (w == WaitResult::Cancelled && h && !signals_eintr(sa_restart_restarts)) continue;
        return w;
    }
}

bool ready_now(int fd, short events) noexcept {
    pollfd p{fd, events, 0};
    return real_poll()(&p, 1, 0) != 0;
}

}  // namespace green::interpose
