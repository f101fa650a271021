// poll, ppoll, select, pselect, epoll_wait, epoll_pwait (and the
// _FORTIFY_SOURCE entry points __poll_chk, __ppoll_chk).
//
// Each first asks the kernel with a zero timeout; if nothing is ready and the
// caller would wait, the fiber parks on a watcher per fd (one wait for the
// whole set, no busy polling), then asks the kernel again with a zero
// timeout. The kernel thus computes every revents bit itself, so results are
// identical to unpatched. Wakeups that the zero-timeout recheck does not
// confirm (another fiber drained the fd) go back to waiting.
//
// Not suspended, by design (documented): calls with a signal mask (ppoll,
// pselect, epoll_pwait with a non-null mask) block the hub, because the mask
// must be atomically in force for the wait and would apply to every fiber of
// the hub; and entries asking only for POLLERR/POLLHUP (events == 0) are not
// watched, as libev cannot watch "no event" — such a poll wakes on its
// timeout or on another fd only.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include <cstring>
#include <vector>

#include "balance.hpp"
#include "hook_context.hpp"
#include "hooks_cancel.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

namespace {

int interest_of(short events) noexcept {
    int e = 0;
    if (events & (POLLIN | POLLPRI | POLLRDHUP | POLLRDNORM | POLLRDBAND)) e |= kReadable;
    if (events & (POLLOUT | POLLWRNORM | POLLWRBAND)) e |= kWritable;
    return e;
}

// A poll that returns without waiting lets the hub's other fibers run first.
// An event loop whose descriptors are always ready (a client with nothing
// left to send keeps its sockets registered for writing) would otherwise
// never suspend and starve every other fiber of its hub, including the one
// whose progress would let it stop; unpatched, the kernel preempts it.
// Alone on its hub, the fiber continues at once (no switch).
int yield_after(detail::Hub* h, int r) noexcept {
    if (h) {
        int saved = errno;
        h->yield();
        errno = saved;
    }
    return r;
}

// Parks until the set may be ready; `check` is the zero-timeout kernel call.
template <class Check>
int wait_set(detail::Hub* h, const FdInterest* set, std::size_t n, Clock::time_point deadline, Check&& check) {
    const int saved_errno = errno;
    for (bool first = true;; first = false) {
        int r = check();
        if (r != 0) {
            if (r > 0) errno = saved_errno;
            return first ? yield_after(h, r) : r;
        }
        if (deadline != Clock::time_point::max() && Clock::now() >= deadline) {
            errno = saved_errno;
            return 0;
        }
        cancel_point();
        // A move point, as in wait_ready: nothing above uses `h` after this.
        h = detail::Hub::current_if_any();
        if (h->moves_requested()) [[unlikely]] h = move_to_requested_hub(h);
        WaitResult w = h->wait_any_fd(set, n, deadline);
        if (w == WaitResult::Cancelled) cancel_point();
        if (w == WaitResult::TimedOut) {
            int last = check();  // report what became ready at the very end, as the kernel would
            if (last >= 0) errno = saved_errno;
            return last;
        }
        if (w != WaitResult::Ready) {
            errno = EINTR;
            return -1;
        }
    }
}

int poll_fiber(detail::Hub* h, pollfd* fds, nfds_t n, Clock::time_point deadline) {
    FdInterest inline_set[16];
    std::vector<FdInterest> heap_set;
    FdInterest* set = inline_set;
    if (n > 16) {
        heap_set.resize(n);
        set = heap_set.data();
    }
    for (nfds_t i = 0; i < n; ++i) set[i] = FdInterest{fds[i].fd, interest_of(fds[i].events)};
    return wait_set(h, set, n, deadline, [&] { return real_poll()(fds, n, 0); });
}

// fd sets are bit arrays of nfds bits, which may exceed FD_SETSIZE when the
// program allocated them itself: copy and test exactly nfds bits.
bool bit_set(const fd_set* s, int fd) noexcept {
    const auto* words = reinterpret_cast<const unsigned long*>(s);
    constexpr int kBits = 8 * sizeof(unsigned long);
    return (words[fd / kBits] >> (fd % kBits)) & 1ul;
}

int select_fiber(detail::Hub* h, int nfds, fd_set* r, fd_set* w, fd_set* e, Clock::time_point deadline) {
    // select() overwrites its sets: keep the caller's originals to recheck with.
    constexpr std::size_t kWord = sizeof(unsigned long);
    const std::size_t bytes = (static_cast<std::size_t>(nfds) + 8 * kWord - 1) / (8 * kWord) * kWord;
    std::vector<unsigned long> saved(3 * (bytes / kWord) + 1);
    auto* in_r = reinterpret_cast<fd_set*>(saved.data());
    auto* in_w = reinterpret_cast<fd_set*>(saved.data() + bytes / kWord);
    auto* in_e = reinterpret_cast<fd_set*>(saved.data() + 2 * (bytes / kWord));
    if (r) std::memcpy(in_r, r, bytes);
    if (w) std::memcpy(in_w, w, bytes);
    if (e) std::memcpy(in_e, e, bytes);
    std::vector<FdInterest> set;
    for (int fd = 0; fd < nfds; ++fd) {
        int ev = 0;
        if ((r && bit_set(in_r, fd)) || (e && bit_set(in_e, fd))) ev |= kReadable;
        if (w && bit_set(in_w, fd)) ev |= kWritable;
        if (ev) set.push_back({fd, ev});
    }
    return wait_set(h, set.data(), set.size(), deadline, [&] {
        if (r) std::memcpy(r, in_r, bytes);
        if (w) std::memcpy(w, in_w, bytes);
        if (e) std::memcpy(e, in_e, bytes);
        timeval zero{0, 0};
        return real_select()(nfds, r, w, e, &zero);
    });
}

}  // namespace

extern "C" {

int poll(pollfd* fds, nfds_t n, int timeout) {
    count_call(Family::Poll);
    detail::Hub* h = fiber_context();
    if (!h || timeout == 0) return yield_after(h, real_poll()(fds, n, timeout));
    return poll_fiber(h, fds, n, deadline_after_ms(timeout));
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
    if (fdslen / sizeof(pollfd) < n) __builtin_trap();
    return poll(fds, n, timeout);
}

int ppoll(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask) {
    count_call(Family::Poll);
    detail::Hub* h = fiber_context();
    if (!h || mask || answers_at_once(ts)) return yield_after(h, real_ppoll()(fds, n, ts, mask));
    return poll_fiber(h, fds, n, deadline_after(ts));
}

int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask, size_t fdslen) {
    if (fdslen / sizeof(pollfd) < n) __builtin_trap();
    return ppoll(fds, n, ts, mask);
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* tv) {
    count_call(Family::Poll);
    detail::Hub* h = fiber_context();
    if (!h || nfds < 0 || answers_at_once(tv)) return yield_after(h, real_select()(nfds, r, w, e, tv));
    const Clock::time_point deadline = deadline_after(tv);
    int result = select_fiber(h, nfds, r, w, e, deadline);
    // Linux reports the time not slept.
    if (tv && result >= 0) *tv = to_timeval(result == 0 ? Clock::duration::zero() : time_left(deadline));
    return result;
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* ts, const sigset_t* mask) {
    count_call(Family::Poll);
    detail::Hub* h = fiber_context();
    if (!h || nfds < 0 || mask || answers_at_once(ts)) return yield_after(h, real_pselect()(nfds, r, w, e, ts, mask));
    return select_fiber(h, nfds, r, w, e, deadline_after(ts));
}

int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout) {
    count_call(Family::Poll);
    detail::Hub* h = fiber_context();
    if (!h || timeout == 0) return yield_after(h, real_epoll_wait()(epfd, events, maxevents, timeout));
    // An epoll fd is itself readable while any of its events is pending.
    FdInterest self{epfd, kReadable};
    return wait_set(h, &self, 1, deadline_after_ms(timeout), [&] { return real_epoll_wait()(epfd, events, maxevents, 0); });
}

int epoll_pwait(int epfd, epoll_event* events, int maxevents, int timeout, const sigset_t* mask) {
    if (mask) {
        count_call(Family::Poll);
        return real_epoll_pwait()(epfd, events, maxevents, timeout, mask);
    }
    return epoll_wait(epfd, events, maxevents, timeout);
}

}  // extern "C"
