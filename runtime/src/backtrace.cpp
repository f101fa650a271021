// Walking and naming fiber stacks, for reports a user can act on.
//
// Capture uses glibc's backtrace(), i.e. libgcc's unwinder, the one the
// program's own C++ exceptions use. (libunwind.so exports _Unwind_* too;
// linked into a preloaded shim it could take over the program's exception
// unwinding, which the program could tell.) On Debian 12 (glibc >= 2.35,
// GCC 12) libgcc finds unwind tables through _dl_find_object, which takes
// no lock, so a walk inside a signal handler cannot deadlock on the loader
// lock once backtrace() has been called once (that first call loads
// libgcc_s; capture_thread makes it before it sends any signal).
//
// A suspended fiber is walked on its own stack: Boost.Context's
// resume_with runs a function on top of the fiber's saved frames, as if the
// fiber's switch-away call had called it. That function walks the stack and
// switches straight back to the caller, leaving the fiber suspended at a new
// point inside the function; when the fiber's hub resumes it later, the
// function returns what that resume passed, and the fiber continues from its
// original switch exactly as it would have. Nothing else runs on the fiber
// meanwhile, so the caller must be the only thread that could resume it.
//
// A running fiber (one that holds its hub) is walked from a thread-directed
// signal: the handler runs on the hub thread, on its alternate signal stack
// where it has one, walks through the signal frame into the fiber's frames,
// records the pcs in a static slot and wakes the asking thread with a futex.
// Only pcs are taken there; naming happens later, in the asking thread.
//
// Naming uses GCC's libbacktrace (the backend Boost.Stacktrace uses): where
// debug info exists, file:line and the chain of inlined calls; otherwise the
// ELF symbol. It reads DWARF itself with mmap and atomics, so it takes no
// pthread lock (the shim would hook it) and pulls in no other library.
// (elfutils' libdw was tried: it loads libdebuginfod, whose dependencies'
// constructors take pthread locks from the reporting thread.)
#include "backtrace.hpp"

#include <backtrace.h>
#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub.hpp"
#include "os.hpp"
#include "sanitizer.hpp"
#include "spinlock.hpp"


namespace green::detail {

bool Trace::operator==(const Trace& o) const noexcept {
    return depth == o.depth && std::memcmp(pc, o.pc, sizeof(void*) * static_cast<std::size_t>(depth)) == 0;
}

// --- suspended fibers -------------------------------------------------------

namespace {

// Not inlined, so its name marks where the capture's own frames end.
__attribute__((noinline)) void green_capture_here(Trace& out) noexcept {
    out.depth = ::backtrace(out.pc, Trace::kMaxFrames);
    asm volatile("" ::: "memory");  // keep the call from becoming a tail call
}

}  // namespace

bool capture_suspended(FiberRecord* f, Trace& out) noexcept {
    out.depth = 0;
    out.skip = -1;
    out.fiber_id = f->id;
    if (!f->ctx || f->state == FiberState::Running || f->state == FiberState::Done) return false;
    if (!f->is_root && !f->started) return false;
    FiberRecord* self = Hub::running_fiber_if_any();
    static thread_local sanitizer::FiberState plain_thread;  // a thread with no hub
    if (!self) sanitizer::on_root(plain_thread);  // TSan: switch back to this thread's own fiber
    sanitizer::FiberState* me = self ? &self->sanitizer : &plain_thread;
    struct Args {
        Trace* out;
        FiberRecord* f;
        sanitizer::FiberState* me;
    } args{&out, f, me};
    sanitizer::before_switch(*me, f->sanitizer, false);
    f->ctx = std::move(f->ctx).resume_with([a = &args](boost::context::fiber&& back) {
        // `a` points into the caller's frame, valid only until the switch
        // below; the second half of this function must not touch it.
        FiberRecord* fiber = a->f;
        sanitizer::after_switch(fiber->sanitizer, a->me);
        green_capture_here(*a->out);
        sanitizer::before_switch(fiber->sanitizer, *a->me, false);
        back = std::move(back).resume();
        // Resumed by the fiber's hub: hand over the context that resumed us,
        // as the fiber's own switch would have received it. The hub's
        // after_switch() (sanitizer included) runs where the fiber left off.
        return std::move(back);
    });
    sanitizer::after_switch(*me, &f->sanitizer);
    return out.depth > 0;
}

// --- running fibers, through a signal ---------------------------------------

namespace {

// SIGRTMAX-3: real-time, so it queues and has no meaning of its own; high in
// the range because programs that use RT signals usually count up from
// SIGRTMIN. Installed only when the program has not claimed it.
int pick_signal() noexcept { return SIGRTMAX - 3; }

std::atomic<std::uint32_t> g_capture_lock{0};    // one capture at a time
std::atomic<std::uint32_t> g_signal_state{0};    // 0 idle, 1 asked, 2 answered
std::atomic<pid_t> g_signal_target{0};
Trace g_signal_trace;                            // written by the handler while state is 1
std::atomic<bool> g_handler_installed{false};
void* g_restorer = nullptr;  // where a signal handler returns to (libc's __restore_rt)

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);

// libc's own sigaction: under the shim, the program's sigaction may be
// hooked, and the runtime's handler is not the program's business.
SigactionFn real_sigaction() noexcept {
    static SigactionFn fn = [] {
        void* h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        void* sym = h ? dlsym(h, "sigaction") : nullptr;
        return sym ? reinterpret_cast<SigactionFn>(sym) : &::sigaction;
    }();
    return fn;
}

void on_capture_signal(int, siginfo_t* info, void*) {
    const int saved_errno = errno;
    if (info->si_code == SI_TKILL && info->si_pid == getpid() && g_signal_state.load(std::memory_order_acquire) == 1 &&
        g_signal_target.load(std::memory_order_relaxed) == os::gettid()) {
        FiberRecord* f = Hub::running_fiber_if_any();
        g_signal_trace.fiber_id = f ? f->id : 0;
        green_capture_here(g_signal_trace);
        // Everything up to the kernel's return trampoline is this handler.
        g_signal_trace.skip = -1;
        for (int i = 0; i < g_signal_trace.depth && i < 8; ++i)
            if (g_restorer && g_signal_trace.pc[i] == g_restorer) g_signal_trace.skip = i + 1;
        g_signal_state.store(2, std::memory_order_release);
        os::futex_wake(&g_signal_state, 1);
    }
    errno = saved_errno;
}

bool install_handler(const char** why) noexcept {
    if (g_handler_installed.load(std::memory_order_acquire)) {
        struct sigaction now{};
        real_sigaction()(pick_signal(), nullptr, &now);
        if ((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_capture_signal) return true;
        *why = "the program has since claimed the backtrace signal (SIGRTMAX-3)";
        return false;
    }
    struct sigaction old{};
    real_sigaction()(pick_signal(), nullptr, &old);
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL) {
        *why = "the program uses the backtrace signal (SIGRTMAX-3)";
        return false;
    }
    struct sigaction sa{};
    sa.sa_sigaction = on_capture_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    if (real_sigaction()(pick_signal(), &sa, nullptr) != 0) {
        *why = "cannot install the backtrace signal handler";
        return false;
    }
    struct sigaction now{};
    real_sigaction()(pick_signal(), nullptr, &now);
    g_restorer = reinterpret_cast<void*>(now.sa_restorer);
    g_handler_installed.store(true, std::memory_order_release);
    return true;
}

std::uint64_t monotonic_ms() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace

int capture_signal() noexcept { return pick_signal(); }

void run_with_room(void (*fn)(void*), void* arg) noexcept {
    struct Job {
        void (*fn)(void*);
        void* arg;
    } job{fn, arg};
    // No program signal may land on it.
    pthread_t t;
    const bool started = os::start_plain_thread(
        [](void* p) -> void* {
            auto* j = static_cast<Job*>(p);
            j->fn(j->arg);
            return nullptr;
        },
        &job, 4 * 1024 * 1024, &t);
    if (started) os::libc().pthread_join(t, nullptr);
    else fn(arg);
}

int runtime_sigaction(int sig, const struct sigaction* sa, struct sigaction* old) noexcept {
    return real_sigaction()(sig, sa, old);
}

bool capture_thread(pid_t tid, Trace& out, unsigned timeout_ms, const char** why) noexcept {
    SpinGuard g(g_capture_lock);
    out.depth = 0;
    if (g_signal_state.load(std::memory_order_acquire) == 1) {
        // A previous target never answered (the signal is blocked there, or
        // it is stopped); its handler may still write the slot.
        *why = "a previous backtrace request is still unanswered";
        return false;
    }
    {
        // The first backtrace() loads libgcc_s: never inside the handler.
        void* prime[2];
        ::backtrace(prime, 2);
    }
    if (!install_handler(why)) return false;
    g_signal_target.store(tid, std::memory_order_relaxed);
    g_signal_state.store(1, std::memory_order_release);
    if (os::raw_syscall6(SYS_tgkill, getpid(), tid, pick_signal(), 0, 0, 0) != 0) {
        g_signal_state.store(0, std::memory_order_release);
        *why = "the hub thread is gone";
        return false;
    }
    const std::uint64_t until = monotonic_ms() + timeout_ms;
    for (;;) {
        if (g_signal_state.load(std::memory_order_acquire) == 2) break;
        std::uint64_t now = monotonic_ms();
        if (now >= until) {
            *why = "the hub thread did not answer the backtrace signal (blocked there?)";
            return false;  // state stays 1: the slot may still be written
        }
        timespec left{static_cast<time_t>((until - now) / 1000), static_cast<long>((until - now) % 1000) * 1000000L};
        os::raw_syscall6(SYS_futex, reinterpret_cast<long>(&g_signal_state), FUTEX_WAIT_PRIVATE, 1,
                         reinterpret_cast<long>(&left), 0, 0);
    }
    out = g_signal_trace;
    g_signal_state.store(0, std::memory_order_release);
    return out.depth > 0;
}

// --- naming -----------------------------------------------------------------

// One libbacktrace state for the process: it reads the debug info of every
// module loaded when it is first used, and cannot be freed (libbacktrace
// never frees). Modules dlopen'ed after that are named by their ELF symbol
// tables only.
backtrace_state* shared_state() {
    static backtrace_state* state = backtrace_create_state(nullptr, 1, [](void*, const char*, int) {}, nullptr);
    return state;
}

struct Symbolizer::Impl {
    std::unordered_map<std::uintptr_t, std::vector<std::string>> cache;

    static std::string demangle(const char* sym) {
        int status = -1;
        char* d = abi::__cxa_demangle(sym, nullptr, nullptr, &status);
        std::string text = status == 0 && d ? d : sym;
        std::free(d);
        return text;
    }

    // `pc` is where the frame executes; for a return address the caller
    // passes pc - 1 so the line is the call's, not the next statement's.
    // One entry per function at that pc, innermost first: functions inlined
    // there come before the one the code belongs to, each with the line it
    // is at, so the user's own line shows even when the call that parks was
    // inlined into it.
    const std::vector<std::string>& frames(std::uintptr_t pc) {
        auto it = cache.find(pc);
        if (it != cache.end()) return it->second;
        struct Frame {
            std::string function, location;
        };
        std::vector<Frame> found;
        backtrace_state* state = shared_state();
        if (state) {
            backtrace_pcinfo(
                state, pc,
                [](void* data, std::uintptr_t, const char* file, int line, const char* function) -> int {
                    if (!function && !file) return 0;
                    Frame f{function ? demangle(function) : "??", {}};
                    if (file) f.location = std::string(" (") + file + ':' + std::to_string(line) + ')';
                    static_cast<std::vector<Frame>*>(data)->push_back(std::move(f));
                    return 0;
                },
                [](void*, const char*, int) {}, &found);
        }
        // The code's own function, from the symbol table: its full signature,
        // and a name where there is no debug info at all.
        std::string symbol;
        if (state) {
            backtrace_syminfo(
                state, pc,
                [](void* data, std::uintptr_t, const char* name, std::uintptr_t, std::uintptr_t) {
                    if (name) *static_cast<std::string*>(data) = demangle(name);
                },
                [](void*, const char*, int) {}, &symbol);
        }
        std::vector<std::string> out;
        if (found.empty()) {
            if (symbol.empty()) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "0x%" PRIxPTR, pc);
                symbol = buf;
            }
            Dl_info info{};
            if (dladdr(reinterpret_cast<void*>(pc), &info) && info.dli_fname) symbol += std::string(" (in ") + info.dli_fname + ')';
            out.push_back(std::move(symbol));
        } else {
            if (!symbol.empty()) found.back().function = symbol;
            for (std::size_t i = 0; i < found.size(); ++i)
                out.push_back(found[i].function + found[i].location + (i + 1 < found.size() ? " [inlined]" : ""));
        }
        return cache.emplace(pc, std::move(out)).first->second;
    }
};

Symbolizer::Symbolizer() : impl_(std::make_unique<Impl>()) {}
Symbolizer::~Symbolizer() = default;

void Symbolizer::append(const Trace& t, std::string& out, const char* indent) {
    // The capture's own frames (the walker, the resume_with trampoline, the
    // signal handler and its return trampoline) say nothing about the fiber.
    int first = 0;
    bool after_signal = t.skip >= 0;
    if (after_signal) {
        first = t.skip;
    } else {
        for (int i = 0; i < t.depth && i < 8; ++i) {
            std::string_view n = impl_->frames(reinterpret_cast<std::uintptr_t>(t.pc[i])).back();
            if (n.find("green_capture_here") != std::string_view::npos || n.find("fiber_ontop") != std::string_view::npos ||
                n.find("capture_suspended") != std::string_view::npos)
                first = i + 1;
        }
    }
    if (first >= t.depth) {
        out += indent;
        out += "(no frames)\n";
        return;
    }
    int number = 0;
    for (int i = first; i < t.depth; ++i) {
        auto pc = reinterpret_cast<std::uintptr_t>(t.pc[i]);
        // Every frame but the interrupted one holds a return address.
        if (!(after_signal && i == first) && pc > 0) --pc;
        for (const std::string& frame : impl_->frames(pc)) {
            char head[32];
            std::snprintf(head, sizeof head, "#%d ", number++);
            out += indent;
            out += head;
            out += frame;
            out += '\n';
        }
    }
}

}  // namespace green::detail
