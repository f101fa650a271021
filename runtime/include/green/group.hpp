// Group: spawn many fibers, bound how many run at once, wait for all.
//
// Like gevent.pool.Pool: spawn() blocks the caller while `limit` fibers of the
// group are still running, which is how a server bounds its concurrency
// without a queue of its own. wait() joins everything spawned so far. The
// first exception thrown by a member is kept and rethrown by wait().
#pragma once

#include <green/sync.hpp>

#include <cstddef>
#include <exception>
#include <limits>
#include <utility>

namespace green {

class Group {
public:
    static constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max() / 2;
    explicit Group(std::size_t limit = kUnlimited) : slots_(limit) {}
    Group(const Group&) = delete;
    Group& operator=(const Group&) = delete;
    ~Group() { wait_all_quietly(); }

    template <class F>
    void spawn(F&& fn, const SpawnOptions& options = {}) {
        slots_.acquire();
        running_.add(1);
        green::spawn(
            [this, fn = std::forward<F>(fn)]() mutable {
                struct Done {
                    Group* g;
                    ~Done() {
                        g->slots_.release();
                        g->running_.done();
                    }
                } done{this};
                try {
                    fn();
                } catch (const Cancelled&) {
                } catch (...) {
                    record(std::current_exception());
                }
            },
            options)
            .detach();
    }

    void wait() {
        running_.wait();
        std::exception_ptr e = take_error();
        if (e) std::rethrow_exception(e);
    }
    std::size_t running() const noexcept { return static_cast<std::size_t>(running_.count()); }

private:
    void record(std::exception_ptr e) {
        std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::move(e);
    }
    std::exception_ptr take_error() {
        std::lock_guard lock(error_mutex_);
        return std::exchange(error_, nullptr);
    }
    void wait_all_quietly() noexcept {
        try {
            running_.wait();
        } catch (...) {
        }
    }

    Semaphore slots_;
    WaitGroup running_;
    Mutex error_mutex_;
    std::exception_ptr error_;
};

}  // namespace green
