// Fd readiness: the per-fd state machine behind wait_fd(), and close/reuse.
//
// Per hub, per fd, one FdWatch: a libev io watcher plus the fibers of this
// hub waiting on the fd. States of its watcher, by `armed` (the event mask it
// is started with):
//
//   idle (armed = 0)  --wait(E)-->        armed |= E   (ev_io_start)
//   armed             --event E, waiter-->  wake it, stay armed: the fiber
//                                          usually waits again right away,
//                                          and a stop/start costs epoll_ctl
//   armed             --event E, nobody--> armed &= ~E (lazy disarm; level-
//                                          triggered epoll would otherwise
//                                          report it on every poll)
//   any               --close(fd)-->       waiters woken with Closed, watcher
//                                          stopped and removed from epoll,
//                                          generation bumped
//
// A wait on several fds (poll, select, epoll_wait of the shim) links one
// member Waiter into each fd's list; a wake of any member goes to the wait as
// a whole (Waiter::group), so the first event wins and the rest find it
// taken. The watchers stay armed after the wait like any other, so a program
// that polls the same set in a loop costs no epoll_ctl per call.
//
// Generations (process-wide, per fd number) make close-and-reuse safe: each
// FdWatch remembers the generation it was armed for; a wait that finds a
// newer one re-initialises the watcher (ev_io_set, so libev re-registers the
// new file) instead of trusting the old registration, and a close message
// that reaches another hub late wakes only waiters of the closed generation.
// Hubs that ever watched an fd are recorded in a bitmask so a close reaches
// them all.
#include <green/io.hpp>

#include <atomic>
#include <memory>
#include <new>

#include "chunked_table.hpp"
#include "hub.hpp"
#include "spinlock.hpp"
#include "wait_list.hpp"

namespace green::detail {

struct FdWatch {
    ev_io io;
    Hub* hub;
    WaitList waiters;  // hub-thread only; the lock is unused
    int armed = 0;
    std::uint32_t generation = 0;
};

namespace {

// Process-wide per-fd facts (chunked_table.hpp: nothing for fds never
// waited on, no lock to read).
struct FdGlobal {
    std::atomic<std::uint32_t> generation{0};
    std::atomic<std::uint64_t> hub_mask{0};
};
constinit ChunkedTable<FdGlobal> g_fd_facts;

WaitResult to_result(WakeReason r) noexcept {
    switch (r) {
        case WakeReason::Woken: return WaitResult::Ready;
        case WakeReason::TimedOut: return WaitResult::TimedOut;
        case WakeReason::Expired: return WaitResult::Expired;
        case WakeReason::Closed: return WaitResult::Closed;
        case WakeReason::Cancelled:
        case WakeReason::Interrupted:
        case WakeReason::Deadlock:
        case WakeReason::Waiting: break;
    }
    return WaitResult::Cancelled;
}


// An fd's waiters are a list private to its hub: woken directly, with no
// lock to leave first. A member of a wait on several fds wakes that wait.
void wake_fd_waiter(Waiter& x, WakeReason reason) noexcept { Hub::wake(x.group ? *x.group : x, reason); }

void wake_all_fd_waiters(FdWatch* w, WakeReason reason) noexcept {
    while (Waiter* x = list_pop_front(w->waiters)) wake_fd_waiter(*x, reason);
}

}  // namespace

std::uint32_t fd_generation(int fd) noexcept {
    const FdGlobal* g = g_fd_facts.find(fd);
    return g ? g->generation.load(std::memory_order_acquire) : 0;
}

std::uint32_t bump_fd_generation(int fd) noexcept {
    FdGlobal* g = g_fd_facts.find(fd);
    return g ? g->generation.fetch_add(1, std::memory_order_acq_rel) + 1 : 0;
}

void note_fd_hub(int fd, unsigned hub_index) noexcept {
    if (FdGlobal* g = g_fd_facts.find_or_create(fd)) {
        std::uint64_t bit = std::uint64_t{1} << (hub_index < 63 ? hub_index : 63);
        if (!(g->hub_mask.load(std::memory_order_relaxed) & bit)) g->hub_mask.fetch_or(bit, std::memory_order_acq_rel);
    }
}

std::uint64_t fd_hub_mask(int fd) noexcept {
    const FdGlobal* g = g_fd_facts.find(fd);
    return g ? g->hub_mask.load(std::memory_order_acquire) : 0;
}

FdWatch* Hub::fd_watch(int fd) noexcept {
    if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 64, nullptr);
    FdWatch* w = fds_[static_cast<std::size_t>(fd)];
    std::uint32_t gen = fd_generation(fd);
    if (!w) {
        w = new FdWatch();
        w->hub = this;
        ev_io_init(&w->io, &Hub::on_fd, fd, 0);
        w->io.data = w;
        w->generation = gen;
        fds_[static_cast<std::size_t>(fd)] = w;
        note_fd_hub(fd, index_);
    } else if (w->generation != gen) {
        // Closed and reused since this hub last used the number: whatever
        // libev and epoll knew belongs to the old file.
        wake_all_fd_waiters(w, WakeReason::Closed);
        ev_io_stop(loop_, &w->io);
        ev_io_set(&w->io, fd, 0);
        w->armed = 0;
        w->generation = gen;
        note_fd_hub(fd, index_);
    }
    return w;
}

int Hub::fd_watch_interest(int fd) const noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !fds_[static_cast<std::size_t>(fd)]) return -1;
    const FdWatch* w = fds_[static_cast<std::size_t>(fd)];
    return ev_is_active(&w->io) ? w->armed : 0;
}

void Hub::rearm_fd(FdWatch* w) noexcept {
    int want = w->armed;
    ev_io_stop(loop_, &w->io);
    if (want) {
        ev_io_modify(&w->io, want);
        ev_io_start(loop_, &w->io);
    }
}

WaitResult Hub::wait_fd(int fd, int events, Clock::time_point deadline) noexcept {
    ParkOptions o = ParkOptions::interruptible(deadline);
    if (WakeReason r = precheck(o); r != WakeReason::Waiting) return to_result(r);
    events &= kReadable | kWritable;
    if (fd < 0 || events == 0) return WaitResult::Ready;  // the caller's syscall reports the error
    FdWatch* w = fd_watch(fd);
    Waiter me(current_, WaitKind::Fd, reinterpret_cast<const void*>(static_cast<std::intptr_t>(fd)),
              static_cast<std::uintptr_t>(events));
    list_push_back(w->waiters, me);
    if ((w->armed & events) != events) {
        w->armed |= events;
        rearm_fd(w);
    }
    add(parked_on_io, 1);
    HubCounters::bump(counters.fd_waits);
    WakeReason r = park(me, o);
    add(parked_on_io, -1);
    if (me.list) list_unlink(w->waiters, me);
    return to_result(r);
}

void Hub::on_fd(struct ev_loop*, ev_io* io, int revents) noexcept {
    auto* w = static_cast<FdWatch*>(io->data);
    Hub* h = w->hub;
    int waited = 0;
    for (Waiter* x = w->waiters.head; x;) {
        Waiter* next = x->next;
        int want = static_cast<int>(x->detail);
        waited |= want;
        if ((want & revents) || (revents & EV_ERROR)) {
            list_unlink(w->waiters, *x);
            wake_fd_waiter(*x, WakeReason::Woken);
        }
        x = next;
    }
    if (revents & EV_ERROR) {
        // libev stopped the watcher (the fd is bad). Waiters were woken and
        // will see the error from their own syscall.
        w->armed = 0;
        return;
    }
    int unwanted = revents & (EV_READ | EV_WRITE) & ~waited;
    if (!unwanted) return;
    // Nobody of this hub waits on the fd any more: stop rather than narrow
    // the watcher. A stop never reaches epoll_ctl (libev drops the fd's
    // registration lazily), while a narrowed mask is an epoll_ctl(MOD) at
    // the next loop turn, and by then another hub may have closed the fd
    // (its fibers share it, or the fiber that used it here moved there):
    // libev aborts on the EBADF.
    w->armed = w->waiters.head ? w->armed & ~unwanted : 0;
    h->rearm_fd(w);
}

WaitResult Hub::wait_any_fd(const FdInterest* fds, std::size_t n, Clock::time_point deadline) noexcept {
    // A set of one fd (a client library waiting on its socket, as libpq
    // does for every reply) is a plain wait_fd. A close of a waited fd
    // meanwhile wakes the caller Ready: its own recheck reports what the
    // kernel says about the fd, as poll() does for a closed descriptor.
    const FdInterest* only = nullptr;
    std::size_t watchable = 0;
    for (std::size_t i = 0; i < n && watchable < 2; ++i)
        if (fds[i].fd >= 0 && (fds[i].events & (kReadable | kWritable))) {
            only = &fds[i];
            ++watchable;
        }
    if (watchable == 1) {
        WaitResult r = wait_fd(only->fd, only->events, deadline);
        return r == WaitResult::Closed ? WaitResult::Ready : r;
    }
    ParkOptions o = ParkOptions::interruptible(deadline);
    if (WakeReason r = precheck(o); r != WakeReason::Waiting) return to_result(r);
    // One member Waiter per fd, in that fd's long-lived FdWatch; small sets
    // on the stack.
    union Member {
        Member() noexcept {}
        ~Member() {}
        Waiter w;
    };
    constexpr std::size_t kInline = 16;
    Member inline_members[kInline];
    std::unique_ptr<Member[]> heap_members;
    Member* members = inline_members;
    if (n > kInline) {
        heap_members.reset(new (std::nothrow) Member[n]);
        if (!heap_members) return WaitResult::Ready;  // the caller's recheck polls again
        members = heap_members.get();
    }
    Waiter me(current_, WaitKind::Poll, nullptr, n);
    std::size_t linked = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const int events = fds[i].events & (kReadable | kWritable);
        if (fds[i].fd < 0 || events == 0) continue;
        FdWatch* w = fd_watch(fds[i].fd);
        Waiter* m = new (&members[linked].w) Waiter(current_, WaitKind::Fd,
                                                    reinterpret_cast<const void*>(static_cast<std::intptr_t>(fds[i].fd)),
                                                    static_cast<std::uintptr_t>(events));
        m->group = &me;
        ++linked;
        list_push_back(w->waiters, *m);
        if ((w->armed & events) != events) {
            w->armed |= events;
            rearm_fd(w);
        }
    }
    if (linked) add(parked_on_io, 1);
    HubCounters::bump(counters.fd_waits);
    WakeReason r = park(me, o);
    if (linked) add(parked_on_io, -1);
    for (std::size_t i = 0; i < linked; ++i) {
        Waiter& m = members[i].w;
        if (m.list) list_unlink(*static_cast<WaitList*>(m.list), m);
        m.~Waiter();
    }
    return r == WakeReason::Closed ? WaitResult::Ready : to_result(r);
}

void Hub::fd_closing_local(int fd, std::uint32_t generation) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
    FdWatch* w = fds_[static_cast<std::size_t>(fd)];
    if (!w || w->generation >= generation) return;  // already handled or newer
    wake_all_fd_waiters(w, WakeReason::Closed);
    if (w->armed) {
        // epoll watches the open file description, not the number: with a dup
        // of the fd still open, the kernel keeps the registration after
        // close(). libev notices events for an fd nobody watches (its
        // per-fd generation no longer matches) and rebuilds its epoll set,
        // so this costs a rebuild, never a wrong wake.
        ev_io_stop(loop_, &w->io);
        w->armed = 0;
    }
    ev_io_set(&w->io, fd, 0);
    w->generation = generation;
}

void Hub::post_fd_closing(int fd, std::uint32_t generation) noexcept {
    // Called from notify_fd_closing's walk over the hub registry, i.e. with
    // the registry lock held (which also keeps this hub from being retired):
    // unstick it without taking that lock again.
    {
        SpinGuard g(closing_lock_);
        closing_.emplace_back(fd, generation);
        closing_pending_.store(true, std::memory_order_seq_cst);
    }
    hub_unstick_registry_locked(this);
    ev_async_send(loop_, &async_);
}

void Hub::process_fd_closings() noexcept {
    std::vector<std::pair<int, std::uint32_t>> batch;
    {
        SpinGuard g(closing_lock_);
        batch.swap(closing_);
        closing_pending_.store(false, std::memory_order_relaxed);
    }
    for (auto [fd, gen] : batch) fd_closing_local(fd, gen);
}

// A fiber left this hub for another: the watchers it kept armed here between
// its waits (a watcher with no waiters stays armed, to spare an epoll_ctl per
// wait) now belong to nobody, and that fiber may close their fds on its new
// hub at any moment, before a closing message reaches this one. libev must not
// touch a closed fd with epoll_ctl (it aborts on EBADF), so stop every armed
// watcher nobody here waits on; a stop never reaches epoll_ctl.
void Hub::disarm_unwaited_fds() noexcept {
    for (FdWatch* w : fds_) {
        if (!w || !w->armed || w->waiters.head) continue;
        ev_io_stop(loop_, &w->io);
        w->armed = 0;
    }
}

void Hub::drop_fd_waiters() noexcept {
    for (FdWatch* w : fds_) {
        if (!w) continue;
        ev_io_stop(loop_, &w->io);
        w->armed = 0;
        w->waiters.head = w->waiters.tail = nullptr;
    }
}

void Hub::destroy_fd_watches() noexcept {
    for (FdWatch* w : fds_) {
        if (!w) continue;
        ev_io_stop(loop_, &w->io);
        delete w;
    }
    fds_.clear();
}

}  // namespace green::detail

namespace green {

const char* to_string(WaitResult r) noexcept {
    switch (r) {
        case WaitResult::Ready: return "ready";
        case WaitResult::TimedOut: return "timed out";
        case WaitResult::Expired: return "deadline expired";
        case WaitResult::Cancelled: return "cancelled";
        case WaitResult::Closed: return "closed";
    }
    return "?";
}

WaitResult wait_fd(int fd, int events, Clock::time_point deadline) noexcept {
    return detail::Hub::current().wait_fd(fd, events, deadline);
}

WaitResult wait_any_fd(const FdInterest* fds, std::size_t n, Clock::time_point deadline) noexcept {
    return detail::Hub::current().wait_any_fd(fds, n, deadline);
}

WaitResult wait_until(Clock::time_point deadline) noexcept {
    using namespace detail;
    Hub& h = Hub::current();
    ParkOptions o = ParkOptions::interruptible(deadline);
    if (WakeReason r = h.precheck(o); r != WakeReason::Waiting) {
        return r == WakeReason::TimedOut ? WaitResult::TimedOut
               : r == WakeReason::Expired ? WaitResult::Expired
                                          : WaitResult::Cancelled;
    }
    Waiter me(h.running(), WaitKind::Sleep);
    HubCounters::bump(h.counters.timer_waits);
    switch (h.park(me, o)) {
        case WakeReason::TimedOut: return WaitResult::TimedOut;
        case WakeReason::Expired: return WaitResult::Expired;
        default: return WaitResult::Cancelled;
    }
}

void notify_fd_closing(int fd) noexcept {
    using namespace detail;
    std::uint64_t mask = fd_hub_mask(fd);
    if (mask == 0) return;  // no hub ever waited on it
    std::uint32_t gen = bump_fd_generation(fd);
    Hub* here = Hub::current_if_any();
    struct Ctx {
        int fd;
        std::uint32_t gen;
        std::uint64_t mask;
        Hub* here;
    } ctx{fd, gen, mask, here};
    for_each_hub(
        [](Hub* h, void* p) {
            auto* c = static_cast<Ctx*>(p);
            std::uint64_t bit = std::uint64_t{1} << (h->index() < 63 ? h->index() : 63);
            if (!(c->mask & bit)) return;
            if (h == c->here) h->fd_closing_local(c->fd, c->gen);
            else h->post_fd_closing(c->fd, c->gen);
        },
        &ctx);
}

}  // namespace green

