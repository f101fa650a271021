// Bringing the shim up inside an unmodified program, and its report at exit.
//
// The constructor validates GREEN_* (a bad value exits 2 with one line),
// gives the main thread its hub, so that `main` runs as that hub's root fiber
// and every hooked blocking call it makes suspends only the calling fiber,
// and only then lets hooks suspend (g_shim_ready). fork() is handled by the
// runtime's own atfork handlers (only the forking fiber lives on in the child). Priority 101 runs it
// before the program's own constructors where the linker allows.
//
// GREEN_STATS=1 prints, at exit, that the shim was active and what it did,
// to a copy of stderr taken at start, one of the shim's own fds (top of the
// fd limit, close-on-exec, hidden from the program's close and dup2).
#include <green/run.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "balance.hpp"
#include "fiber_tls.hpp"
#include "hook_context.hpp"
#include "hubs.hpp"
#include "os.hpp"
#include "real.hpp"
#include "shim_fds.hpp"
#include "signals.hpp"

namespace green::interpose {

std::atomic<bool> g_shim_ready{false};
bool g_thread_locals_per_thread = false;

namespace {

// GREEN_THREAD_LOCALS=thread (config.cpp) gives every thread-fiber its own
// thread_local / __thread variables, as unpatched; asking for it where it
// cannot be had (fiber_tls.cpp's checks) is refused at start rather than run
// with shared state.
void choose_thread_locals(const Config& c) {
    if (!c.thread_locals_per_thread) return;
    if (const char* why = detail::fiber_tls_unavailable_reason()) {
        char line[512];
        int n = std::snprintf(line, sizeof line,
                              "green: GREEN_THREAD_LOCALS=thread cannot be honoured: %s; set GREEN_THREAD_LOCALS=hub to "
                              "share thread_local variables among the fibers of a hub\n",
                              why);
        detail::os::write_stderr(line, static_cast<std::size_t>(std::min(n, static_cast<int>(sizeof line) - 1)));
        _exit(2);
    }
    g_thread_locals_per_thread = true;
}

std::atomic<std::uint64_t> g_calls[static_cast<int>(Family::Count)];
const char* const kFamilyNames[] = {"socket", "read", "write", "connect", "accept", "close",
                                    "poll", "sleep", "dns", "fcntl", "thread", "lock"};

int g_stats_fd = -1;

void print_stats() {
    Stats s = green::stats();
    char buf[4096];
    int n = std::snprintf(buf, sizeof buf,
                          "green: shim active (pid %d): hubs %" PRIu64 ", fibers spawned %" PRIu64
                          ", switches %" PRIu64 ", waits: fd %" PRIu64 ", timer %" PRIu64 ", sync %" PRIu64
                          ", pool jobs %" PRIu64 ", hub-blocked episodes %" PRIu64 ", fibers moved %" PRIu64
                          "\ngreen: hooked calls:",
                          static_cast<int>(getpid()), s.hubs, s.fibers_spawned, s.switches, s.fd_waits,
                          s.timer_waits, s.sync_waits, s.pool_jobs, s.blocked_episodes, s.fibers_moved);
    for (int i = 0; i < static_cast<int>(Family::Count) && n < static_cast<int>(sizeof buf) - 40; ++i)
        n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), " %s=%" PRIu64, kFamilyNames[i],
                           g_calls[i].load(std::memory_order_relaxed));
    if (n < static_cast<int>(sizeof buf) - 1) buf[n++] = '\n';
    n += balance_report(buf + n, static_cast<int>(sizeof buf) - n);
    // To the copy of stderr taken at start: programs such as coreutils close
    // fd 2 in their own exit handler, which runs before this one.
    int fd = g_stats_fd >= 0 ? g_stats_fd : 2;
    for (std::size_t off = 0; off < static_cast<std::size_t>(n);) {
        ssize_t w = real_write()(fd, buf + off, static_cast<std::size_t>(n) - off);
        if (w <= 0) break;
        off += static_cast<std::size_t>(w);
    }
}

__attribute__((constructor(101))) void start_shim() {
    const Config& c = green::config();  // exits 2 on a bad GREEN_* value
    detail::Hub::current();
    signals_start_process();  // before any other thread exists
    choose_thread_locals(c);
    start_hub_threads(c.hubs, c.hubs_adaptive);
    if (c.stats) {
        // The program cannot close it or have its number (shim_fds.hpp).
        int copy = real_dup()(2);
        if (copy >= 0) {
            detail::os::RuntimeFdScope own;
            g_stats_fd = adopt_shim_fd(copy);
        }
        std::atexit(print_stats);
    }
    g_shim_ready.store(true, std::memory_order_release);
}

}  // namespace

void count_call(Family f) noexcept {
    // Only the program's calls: libev's own (epoll_wait, eventfd writes from
    // the scheduler) pass through the same hooks.
    detail::Hub* h = detail::Hub::current_if_any();
    if (h && h->in_scheduler()) return;
    g_calls[static_cast<int>(f)].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace green::interpose
