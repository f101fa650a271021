// Running calls that cannot be made non-blocking on real OS threads.
//
// getaddrinfo, regular-file I/O and other calls that block inside the kernel or
// inside libc (where no hook can see) would stop a whole hub. call_blocking()
// runs them on the blocking pool while only the calling fiber suspends. Work
// is queued, never dropped, when every pool thread is busy.
#pragma once

#include <green/fiber.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace green {

namespace detail {
// Runs job(arg) on a pool thread; the calling fiber parks until it finished.
// Not a cancellation point: the job owns arguments on the caller's stack.
void run_on_pool(void (*job)(void*), void* arg) noexcept;
}  // namespace detail

template <class F>
auto call_blocking(F&& fn) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    struct Frame {
        F& fn;
        std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
        std::exception_ptr error;
    } frame{fn, std::nullopt, nullptr};
    detail::run_on_pool(
        [](void* p) {
            auto* f = static_cast<Frame*>(p);
            try {
                if constexpr (std::is_void_v<R>) {
                    f->fn();
                    f->result.emplace(true);
                } else {
                    f->result.emplace(f->fn());
                }
            } catch (...) {
                f->error = std::current_exception();
            }
        },
        &frame);
    if (frame.error) std::rethrow_exception(frame.error);
    if constexpr (!std::is_void_v<R>) return std::move(*frame.result);
}

// Number of pool threads (GREEN_POOL_SIZE); threads start on first use.
std::size_t blocking_pool_size() noexcept;

}  // namespace green
