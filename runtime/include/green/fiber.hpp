// Fibers: spawn, join, detach, cancel, and the calling fiber's own controls.
//
// A fiber is a stackful coroutine pinned to the hub (OS thread) it was spawned
// on; it never migrates, so errno and thread_local addresses the compiler
// cached stay valid across suspensions. The callable and its result live at the
// top of the fiber's pooled stack, so spawning allocates nothing once the stack
// pool is warm.
//
// Task<R> is the owning handle. Its destructor detaches (like gevent.spawn's
// fire-and-forget); an exception escaping a detached fiber is reported on
// stderr with the fiber's name, never dropped.
#pragma once

#include <green/errors.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace green {

struct SpawnOptions {
    std::string_view name = {};   // shown in deadlock and overflow reports; copied (31 chars kept)
    std::size_t stack_size = 0;   // 0: the configured default (GREEN_STACK_SIZE)
    // true: the fiber gets its own thread_local / __thread variables (fresh
    // initial values, destructors run when it ends), as a new thread would.
    // false: it shares its hub thread's. errno and the C++ exception state
    // are the fiber's own either way.
    bool own_thread_locals = false;
};

using Clock = std::chrono::steady_clock;

namespace detail {

struct FiberRecord;  // opaque; lives at the top of the fiber's stack

// Type-erased body of a fiber: run() executes the callable and stores its
// result in the payload; destroy() ends the payload's lifetime.
struct TaskOps {
    void (*run)(void* payload);
    void (*destroy)(void* payload) noexcept;
    // true: an exception escaping run() is not caught at all, so it
    // terminates the process exactly as one escaping a thread function does
    // (the shim's pthread fibers); false: join() rethrows it.
    bool uncaught_terminates = false;
};

FiberRecord* fiber_create(const SpawnOptions& options, std::size_t payload_size,
                          std::size_t payload_align, const TaskOps* ops, void** payload);
void fiber_start(FiberRecord* fiber) noexcept;
void fiber_join(FiberRecord* fiber);          // waits; rethrows the fiber's exception
bool fiber_join_until(FiberRecord* fiber, Clock::time_point deadline);
void fiber_detach(FiberRecord* fiber) noexcept;
void fiber_cancel(FiberRecord* fiber) noexcept;
bool fiber_done(const FiberRecord* fiber) noexcept;
std::uint64_t fiber_id(const FiberRecord* fiber) noexcept;
void* fiber_payload(FiberRecord* fiber) noexcept;

// The result comes first so that join() can find it without knowing F.
template <class R>
using ResultSlot = std::optional<std::conditional_t<std::is_void_v<R>, bool, R>>;

template <class F, class R>
struct TaskPayload {
    ResultSlot<R> result;
    F fn;

    static void run(void* self) {
        auto* p = static_cast<TaskPayload*>(self);
        if constexpr (std::is_void_v<R>) {
            p->fn();
            p->result.emplace(true);
        } else {
            p->result.emplace(p->fn());
        }
    }
    static void destroy(void* self) noexcept { static_cast<TaskPayload*>(self)->~TaskPayload(); }
    static constexpr TaskOps ops{&TaskPayload::run, &TaskPayload::destroy};
};

}  // namespace detail

template <class R>
class Task {
public:
    Task() = default;
    Task(Task&& other) noexcept : fiber_(std::exchange(other.fiber_, nullptr)) {}
    Task& operator=(Task&& other) noexcept {
        if (this != &other) {
            reset();
            fiber_ = std::exchange(other.fiber_, nullptr);
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() { reset(); }

    bool joinable() const noexcept { return fiber_ != nullptr; }
    std::uint64_t id() const noexcept { return fiber_ ? detail::fiber_id(fiber_) : 0; }
    bool done() const noexcept { return fiber_ && detail::fiber_done(fiber_); }

    // Waits for the fiber to finish; returns its value or rethrows its exception.
    R join() {
        // Wait with the handle still set, so cancel() through this Task keeps
        // working while a fiber is inside join(); if the joiner itself is
        // cancelled here, the Task stays joinable.
        detail::fiber_join_until(fiber_, Clock::time_point::max());
        detail::FiberRecord* f = std::exchange(fiber_, nullptr);
        struct Release {
            detail::FiberRecord* f;
            ~Release() { detail::fiber_detach(f); }
        } release{f};
        detail::fiber_join(f);
        if constexpr (!std::is_void_v<R>) {
            auto* result = static_cast<detail::ResultSlot<R>*>(detail::fiber_payload(f));
            return std::move(**result);
        }
    }

    // Waits at most until `deadline`; true if the fiber finished (then join()
    // returns without waiting).
    bool wait_until(Clock::time_point deadline) { return detail::fiber_join_until(fiber_, deadline); }
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> d) {
        return wait_until(Clock::now() + std::chrono::duration_cast<Clock::duration>(d));
    }

    void detach() noexcept { reset(); }

    // Asks the fiber to stop: green::Cancelled is thrown at its next (or
    // current) suspension point. Safe from any thread.
    void cancel() noexcept {
        if (fiber_) detail::fiber_cancel(fiber_);
    }

private:
    template <class F>
    friend auto spawn(F&& fn, const SpawnOptions& options) -> Task<std::invoke_result_t<std::decay_t<F>&>>;
    explicit Task(detail::FiberRecord* f) noexcept : fiber_(f) {}
    void reset() noexcept {
        if (fiber_) detail::fiber_detach(std::exchange(fiber_, nullptr));
    }
    detail::FiberRecord* fiber_ = nullptr;
};

// Starts `fn` as a new fiber on the calling thread's hub. It first runs when
// the caller next suspends (yield, wait, join, ...).
template <class F>
auto spawn(F&& fn, const SpawnOptions& options = {}) -> Task<std::invoke_result_t<std::decay_t<F>&>> {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    using Payload = detail::TaskPayload<std::decay_t<F>, R>;
    static_assert(alignof(Payload) <= 64, "callable too strictly aligned for a fiber stack");
    void* storage = nullptr;
    detail::FiberRecord* f =
        detail::fiber_create(options, sizeof(Payload), alignof(Payload), &Payload::ops, &storage);
    new (storage) Payload{std::nullopt, std::forward<F>(fn)};
    detail::fiber_start(f);
    return Task<R>(f);
}

namespace this_fiber {

void yield();
void sleep_until(Clock::time_point deadline);
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
    sleep_until(Clock::now() + std::chrono::ceil<Clock::duration>(d));
}
std::uint64_t id() noexcept;         // 0 never names a fiber
std::string_view name() noexcept;
void set_name(std::string_view name) noexcept;
bool cancel_requested() noexcept;
void check_cancel();                 // throws green::Cancelled if cancel() was called

}  // namespace this_fiber

// While alive, every blocking green operation of the calling fiber that would
// wait past `deadline` throws green::DeadlineExceeded instead (like
// gevent.Timeout). Scopes nest; the earliest deadline wins.
class Deadline {
public:
    explicit Deadline(Clock::time_point deadline) noexcept;
    template <class Rep, class Period>
    explicit Deadline(std::chrono::duration<Rep, Period> d) noexcept
        : Deadline(Clock::now() + std::chrono::duration_cast<Clock::duration>(d)) {}
    ~Deadline();
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;
    Clock::time_point when() const noexcept { return when_; }

private:
    Clock::time_point when_;
    Clock::time_point saved_;
};

}  // namespace green
