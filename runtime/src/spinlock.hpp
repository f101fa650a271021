// A tiny test-and-test-and-set lock for the runtime's short critical sections
// (linking a waiter into a list, popping one). It never calls into pthreads,
// which the shim interposes; holders never suspend while holding it.
#pragma once

#include "os.hpp"

#include <sys/syscall.h>

#include <atomic>
#include <cstdint>

namespace green::detail {

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

void lock_word_acquire(std::atomic<std::uint32_t>& word) noexcept;

class SpinGuard {
public:
    explicit SpinGuard(std::atomic<std::uint32_t>& word) noexcept : word_(word) { lock_word_acquire(word_); }
    ~SpinGuard() { word_.store(0, std::memory_order_release); }
    SpinGuard(const SpinGuard&) = delete;
    SpinGuard& operator=(const SpinGuard&) = delete;

private:
    std::atomic<std::uint32_t>& word_;
};

inline void lock_word_acquire(std::atomic<std::uint32_t>& word) noexcept {
    for (;;) {
        if (word.exchange(1, std::memory_order_acquire) == 0) return;
        // Holders never suspend, but the OS may preempt one; after a short
        // spin give the core away instead of burning the slice.
        for (int spins = 0; word.load(std::memory_order_relaxed) != 0; ++spins) {
            if (spins < 128) {
                cpu_relax();
            } else {
                os::raw_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
                spins = 0;
            }
        }
    }
}

}  // namespace green::detail
