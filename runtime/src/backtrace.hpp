// Stacks of fibers, for the reports that name what a fiber is doing
// (deadlock, blocked hub, on-demand dump). See backtrace.cpp for how each
// kind of fiber is walked and why it is safe.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

namespace green::detail {

struct FiberRecord;

struct Trace {
    static constexpr int kMaxFrames = 40;
    int depth = 0;
    int skip = -1;               // frames of the capture itself; -1: find them by name
    std::uint64_t fiber_id = 0;  // capture_thread: the fiber that was running
    void* pc[kMaxFrames];
    bool operator==(const Trace& o) const noexcept;
};

// Walks a fiber that is not running (parked, runnable or never started
// counts as not running), on the calling thread, which must be the fiber's
// own hub thread or a thread that knows that hub cannot resume it
// meanwhile (every hub stuck). Returns false for a fiber that never ran.
bool capture_suspended(FiberRecord* f, Trace& out) noexcept;

// Walks whatever runs now on thread `tid` of this process (a hub thread
// held by a fiber), through a thread-directed signal. Waits at most
// `timeout_ms`. On failure returns false and sets *why.
bool capture_thread(pid_t tid, Trace& out, unsigned timeout_ms, const char** why) noexcept;

// Runs fn(arg) on a helper thread with a stack large enough for libdw
// (which overflowed 128 KiB), and waits for it; inline if no thread can be
// made. For reports built on a fiber's or scheduler's small stack.
void run_with_room(void (*fn)(void*), void* arg) noexcept;

// libc's own sigaction, whatever the program's is hooked to.
int runtime_sigaction(int sig, const struct sigaction* sa, struct sigaction* old) noexcept;

// The signal capture_thread sends (documented in ARCHITECTURE.md).
int capture_signal() noexcept;

// Turns traces into "#n function (file:line)" lines. One per report: it
// reads the process's current module list (libraries dlopen'ed later are
// seen by the next report) and caches what it resolved.
class Symbolizer {
public:
    Symbolizer();
    ~Symbolizer();
    Symbolizer(const Symbolizer&) = delete;
    Symbolizer& operator=(const Symbolizer&) = delete;
    // Appends one line per frame, each starting with `indent`.
    void append(const Trace& t, std::string& out, const char* indent);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace green::detail
