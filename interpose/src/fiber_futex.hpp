// Futex waits that suspend only the calling fiber.
//
// libstdc++ 12 implements std::atomic::wait, std::counting_semaphore and
// std::latch with syscall(SYS_futex, ...), and pthread_once here needs the
// same "wait while *addr == val" primitive. Waiters are kept per address in
// a hashed table of wait lists; a wake pops matching waiters and, for
// whatever count is left, also wakes threads really blocked in the kernel on
// the address (a thread without a hub).
#pragma once

#include <green/fiber.hpp>

#include <atomic>
#include <cstdint>

namespace green::interpose {

constexpr std::uint32_t kFutexMatchAny = 0xffffffffu;

// 0, or an errno (EAGAIN: *addr != expected; ETIMEDOUT).
int fiber_futex_wait(const std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                     Clock::time_point deadline = Clock::time_point::max(), std::uint32_t bitset = kFutexMatchAny) noexcept;
// Number of waiters woken (fibers and kernel waiters together).
int fiber_futex_wake(const std::atomic<std::uint32_t>* addr, int count, std::uint32_t bitset = kFutexMatchAny) noexcept;

// Threads without a hub that passed a FUTEX_WAIT through to the kernel right
// now; wakes skip the kernel when there are none.
std::atomic<int>& kernel_futex_waiters() noexcept;

}  // namespace green::interpose
