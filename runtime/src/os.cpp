// See os.hpp: real libc entry points and raw syscalls for the runtime itself.
#include "os.hpp"

#include <signal.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace green::detail::os {

long raw_syscall6(long nr, long a, long b, long c, long d, long e, long f) noexcept {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;  // -errno on failure; errno itself is left alone
}

namespace {

template <class Fn>
void resolve(void* handle, const char* name, Fn& slot) noexcept {
    void* sym = dlsym(handle, name);  // RTLD_DEFAULT is a null handle
    if (!sym) {
        static const char msg[] = "green: cannot resolve libc symbol; aborting\n";
        raw_syscall6(SYS_write, 2, reinterpret_cast<long>(msg), sizeof msg - 1, 0, 0, 0);
        std::abort();
    }
    slot = reinterpret_cast<Fn>(sym);
}

Libc load() noexcept {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    // Sanitizer builds (never preloaded) must go through the sanitizer's
    // interceptors, or it loses track of the threads we start.
    void* h = RTLD_DEFAULT;
#else
    // RTLD_NOLOAD: libc is always mapped already; this never loads anything and
    // never allocates a new link map.
    void* h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!h) {
        static const char msg[] = "green: libc.so.6 is not loaded; aborting\n";
        raw_syscall6(SYS_write, 2, reinterpret_cast<long>(msg), sizeof msg - 1, 0, 0, 0);
        std::abort();
    }
#endif
    Libc l{};
    resolve(h, "pthread_create", l.pthread_create);
    resolve(h, "pthread_join", l.pthread_join);
    resolve(h, "pthread_detach", l.pthread_detach);
    resolve(h, "write", l.write);
    resolve(h, "read", l.read);
    resolve(h, "close", l.close);
    resolve(h, "nanosleep", l.nanosleep);
    return l;
}

}  // namespace

const Libc& libc() noexcept {
    static const Libc table = load();
    return table;
}

bool start_plain_thread(void* (*fn)(void*), void* arg, std::size_t stack_size, pthread_t* joinable) noexcept {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack_size);
    sigset_t all;
    sigfillset(&all);
    pthread_attr_setsigmask_np(&attr, &all);  // glibc leaves its own internal signals out
    pthread_t t;
    const bool started = libc().pthread_create(&t, &attr, fn, arg) == 0;
    pthread_attr_destroy(&attr);
    if (started && joinable) *joinable = t;
    else if (started) libc().pthread_detach(t);
    return started;
}

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
    raw_syscall6(SYS_futex, reinterpret_cast<long>(word), FUTEX_WAIT_PRIVATE, expected, 0, 0, 0);
}

void futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept {
    raw_syscall6(SYS_futex, reinterpret_cast<long>(word), FUTEX_WAKE_PRIVATE, count, 0, 0, 0);
}

namespace {
thread_local int tls_runtime_fd_scope = 0;
}
bool creating_runtime_fds() noexcept { return tls_runtime_fd_scope > 0; }
RuntimeFdScope::RuntimeFdScope() noexcept { ++tls_runtime_fd_scope; }
RuntimeFdScope::~RuntimeFdScope() { --tls_runtime_fd_scope; }

pid_t gettid() noexcept { return static_cast<pid_t>(raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0)); }

void write_stderr(const char* text, std::size_t len) noexcept {
    while (len > 0) {
        long n = raw_syscall6(SYS_write, 2, reinterpret_cast<long>(text), static_cast<long>(len), 0, 0, 0);
        if (n == -EINTR) continue;
        if (n <= 0) return;
        text += n;
        len -= static_cast<std::size_t>(n);
    }
}

void write_stderr(const char* text) noexcept { write_stderr(text, std::strlen(text)); }

long read_long_file(const char* path, long fallback) noexcept {
    long fd = raw_syscall6(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0) return fallback;
    char buf[64];
    long n = raw_syscall6(SYS_read, fd, reinterpret_cast<long>(buf), sizeof buf - 1, 0, 0, 0);
    raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (n <= 0) return fallback;
    buf[n] = '\0';
    char* end = nullptr;
    long v = std::strtol(buf, &end, 10);
    return end == buf ? fallback : v;
}

}  // namespace green::detail::os
