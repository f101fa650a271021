// The public fiber API (green/fiber.hpp) on top of the hub.
#include <green/fiber.hpp>
#include <green/run.hpp>

#include <cstring>

#include "hub.hpp"
#include "wait_queue.hpp"

namespace green {

namespace detail {

namespace {

// Parks the caller until `f` is done or `deadline` passes.
WakeReason wait_done(FiberRecord* f, Clock::time_point deadline) {
    if (f->done.load(std::memory_order_acquire)) return WakeReason::Woken;
    Hub& h = Hub::current();
    if (h.running() == f) {
        throw std::logic_error("green: a fiber cannot join itself");
    }
    Waiter me(h.running(), WaitKind::Join, f);
    return wait_in(f->joiners, me, ParkOptions::cancellable(deadline),
                   [f] { return f->done.load(std::memory_order_acquire); });
}

}  // namespace

[[noreturn]] void throw_for(WakeReason r) {
    switch (r) {
        case WakeReason::Cancelled: throw Cancelled();
        case WakeReason::Expired: throw DeadlineExceeded();
        case WakeReason::Deadlock: throw Deadlock(take_deadlock_report());
        default: break;
    }
    throw std::logic_error("green: unexpected wake reason");
}

FiberRecord* fiber_create(const SpawnOptions& options, std::size_t payload_size, std::size_t payload_align,
                          const TaskOps* ops, void** payload) {
    return Hub::current().create_fiber(options, payload_size, payload_align, ops, payload);
}

void fiber_start(FiberRecord* f) noexcept { f->hub->start(f); }

void fiber_join(FiberRecord* f) {
    // No deadline of its own, so only a cancel or a scope can end it early.
    if (WakeReason r = wait_done(f, Clock::time_point::max()); r != WakeReason::Woken) throw_for(r);
    if (f->error) {
        f->error_observed = true;
        std::rethrow_exception(f->error);
    }
}

bool fiber_join_until(FiberRecord* f, Clock::time_point deadline) {
    WakeReason r = wait_done(f, deadline);
    if (r == WakeReason::Woken) return true;
    if (r == WakeReason::TimedOut) return false;
    throw_for(r);
}

void fiber_detach(FiberRecord* f) noexcept { f->hub->release(f); }

void fiber_cancel(FiberRecord* f) noexcept {
    if (f->done.load(std::memory_order_acquire)) return;
    f->hub->request_cancel(f);
}

bool fiber_done(const FiberRecord* f) noexcept { return f->done.load(std::memory_order_acquire); }
std::uint64_t fiber_id(const FiberRecord* f) noexcept { return f->id; }
void* fiber_payload(FiberRecord* f) noexcept { return f->payload; }

}  // namespace detail

namespace this_fiber {

void sleep_until(Clock::time_point deadline) {
    switch (green::wait_until(deadline)) {
        case WaitResult::TimedOut: return;
        case WaitResult::Expired: throw DeadlineExceeded();
        default: throw Cancelled();
    }
}

std::uint64_t id() noexcept { return detail::Hub::current().running()->id; }

std::string_view name() noexcept { return detail::Hub::current().running()->name; }

void set_name(std::string_view name) noexcept {
    auto* f = detail::Hub::current().running();
    std::size_t n = std::min(name.size(), sizeof f->name - 1);
    std::memcpy(f->name, name.data(), n);
    f->name[n] = '\0';
}

bool cancel_requested() noexcept {
    return detail::Hub::current().running()->cancel_requested.load(std::memory_order_acquire);
}

void check_cancel() {
    auto* f = detail::Hub::current().running();
    if (f->cancel_requested.exchange(false, std::memory_order_acq_rel)) throw Cancelled();
}

}  // namespace this_fiber

Deadline::Deadline(Clock::time_point deadline) noexcept : when_(deadline) {
    auto* f = detail::Hub::current().running();
    saved_ = f->scoped_deadline;
    f->scoped_deadline = std::min(saved_, deadline);
}

Deadline::~Deadline() { detail::Hub::current().running()->scoped_deadline = saved_; }

namespace detail {
void enter_run_scope() noexcept { ++Hub::current().run_scope_depth; }
void leave_run_scope() noexcept { --Hub::current().run_scope_depth; }
}  // namespace detail

Stats stats() noexcept {
    Stats s = detail::counters_snapshot();
    s.pool_jobs = detail::pool_jobs_completed();
    s.blocked_episodes = detail::blocked_episodes();
    return s;
}

}  // namespace green
