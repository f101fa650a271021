// Fiber-aware synchronisation primitives.
//
// Every primitive here may be used between fibers on the same hub, on
// different hubs, and from plain OS threads (a thread that blocks on one gets a
// hub of its own on first use and parks in its event loop). A waiter is always
// resumed by its own hub: a wake from another thread goes through that hub's
// remote queue, never by running the fiber on the waker's thread.
//
// Blocking members are suspension points: they throw green::Cancelled after
// Task::cancel() and green::DeadlineExceeded past an enclosing green::Deadline.
// The exception is Mutex::lock (and RecursiveMutex::lock), which, like
// pthread_mutex_lock, is not a cancellation point, so RAII unlock/lock pairs in
// destructors stay safe. CondVar waits re-acquire the mutex before throwing.
// The *_until / *_for forms return false when their own timeout passes.
#pragma once

#include <green/fiber.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace green {

namespace detail {
struct Waiter;
// An intrusive FIFO of parked waiters guarded by a tiny spinlock. The layout is
// public only so primitives can be members without an allocation.
struct WaitList {
    std::atomic<std::uint32_t> lock{0};
    Waiter* head = nullptr;
    Waiter* tail = nullptr;
};

// What both fiber mutexes offer beyond their own members: try_lock_for from
// their try_lock_until (std's TimedLockable), and no copies (waiters are
// linked to the object's own list).
template <class Lock>
class TimedLockable {
public:
    template <class Rep, class Period>
    bool try_lock_for(std::chrono::duration<Rep, Period> d) {
        return static_cast<Lock*>(this)->try_lock_until(Clock::now() + std::chrono::ceil<Clock::duration>(d));
    }

protected:
    TimedLockable() = default;
    ~TimedLockable() = default;
    TimedLockable(const TimedLockable&) = delete;
    TimedLockable& operator=(const TimedLockable&) = delete;
};
}  // namespace detail

// A one-shot (until reset) flag that fibers wait for.
class Event {
public:
    Event() = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    void set() noexcept;          // wakes every waiter; later waits return at once
    void reset() noexcept;
    bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }
    void wait();
    bool wait_until(Clock::time_point deadline);
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> d) {
        return wait_until(Clock::now() + std::chrono::ceil<Clock::duration>(d));
    }

private:
    std::atomic<bool> set_{false};
    detail::WaitList waiters_;
};

// A counting semaphore. release() hands permits to waiters in FIFO order.
class Semaphore {
public:
    explicit Semaphore(std::size_t initial = 0) noexcept : count_(initial) {}
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    void acquire();
    bool try_acquire() noexcept;
    bool acquire_until(Clock::time_point deadline);
    template <class Rep, class Period>
    bool acquire_for(std::chrono::duration<Rep, Period> d) {
        return acquire_until(Clock::now() + std::chrono::ceil<Clock::duration>(d));
    }
    void release(std::size_t n = 1) noexcept;
    std::size_t value() const noexcept;

private:
    std::size_t count_;  // guarded by waiters_.lock
    detail::WaitList waiters_;
};

// A mutex owned by a fiber (not by an OS thread): two fibers of one hub
// exclude each other. Unlock hands ownership directly to the oldest waiter, so
// a woken fiber never loses the lock to a barging one (no starvation).
// Locking a Mutex the calling fiber already owns throws std::system_error
// (EDEADLK) rather than hanging; unlocking one it does not own throws EPERM.
class Mutex : public detail::TimedLockable<Mutex> {
public:
    void lock();
    bool try_lock() noexcept;
    bool try_lock_until(Clock::time_point deadline);
    void unlock();
    std::uint64_t owner() const noexcept { return owner_.load(std::memory_order_relaxed); }

protected:
    bool lock_until(Clock::time_point deadline, bool timed);
    std::atomic<std::uint64_t> owner_{0};  // fiber id; 0 = free
    detail::WaitList waiters_;
};

// Like Mutex, but the owning fiber may lock it again; it is released when
// unlock() has been called as often as lock().
class RecursiveMutex : public detail::TimedLockable<RecursiveMutex> {
public:
    void lock();
    bool try_lock() noexcept;
    bool try_lock_until(Clock::time_point deadline);
    void unlock();

private:
    Mutex inner_;
    std::size_t depth_ = 0;  // touched only by the owner
};

// A condition variable for green::Mutex. Waits may wake spuriously, as with
// std::condition_variable; use the predicate forms.
class CondVar {
public:
    CondVar() = default;
    CondVar(const CondVar&) = delete;
    CondVar& operator=(const CondVar&) = delete;

    void wait(Mutex& m);
    template <class Pred>
    void wait(Mutex& m, Pred pred) {
        while (!pred()) wait(m);
    }
    // false if the deadline passed (the mutex is held again either way)
    bool wait_until(Mutex& m, Clock::time_point deadline);
    template <class Pred>
    bool wait_until(Mutex& m, Clock::time_point deadline, Pred pred) {
        while (!pred()) {
            if (!wait_until(m, deadline)) return pred();
        }
        return true;
    }
    template <class Rep, class Period, class Pred>
    bool wait_for(Mutex& m, std::chrono::duration<Rep, Period> d, Pred pred) {
        return wait_until(m, Clock::now() + std::chrono::ceil<Clock::duration>(d), std::move(pred));
    }
    void notify_one() noexcept;
    void notify_all() noexcept;

private:
    detail::WaitList waiters_;
};

// Counts outstanding work; wait() returns when the count is back to zero.
class WaitGroup {
public:
    WaitGroup() = default;
    WaitGroup(const WaitGroup&) = delete;
    WaitGroup& operator=(const WaitGroup&) = delete;

    void add(std::ptrdiff_t n = 1) noexcept;
    void done() noexcept { add(-1); }
    void wait();
    bool wait_until(Clock::time_point deadline);
    std::ptrdiff_t count() const noexcept { return count_.load(std::memory_order_acquire); }

private:
    std::atomic<std::ptrdiff_t> count_{0};
    detail::WaitList waiters_;
};

}  // namespace green
