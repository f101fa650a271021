// The stack half of the differential probe: threads that use as much stack as
// real programs do. Run unpatched and under the shim, the cases that fit their
// stacks must print the same lines; the cases that overflow die unpatched with
// SIGSEGV, and under the shim with a report that names the thread.
//
// Built without -fstack-clash-protection on purpose (Debian's gcc default):
// a large frame moves the stack pointer in one step, past any guard page.
#include <pthread.h>
#include <unistd.h>

#include "probe_main.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// Uses about `bytes` of stack: non-tail recursion with a written 1 KiB frame,
// so the compiler can neither make it a loop nor drop the frame.
__attribute__((noinline)) unsigned recurse(std::size_t bytes) {
    volatile unsigned char frame[1024];
    for (std::size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<unsigned char>(bytes + i);
    if (bytes <= sizeof frame) return frame[3];
    return recurse(bytes - sizeof frame) + frame[bytes % sizeof frame];
}

struct Job {
    std::size_t use;
    unsigned result = 0;
};

void* use_stack(void* p) {
    auto* job = static_cast<Job*>(p);
    job->result = recurse(job->use);
    return nullptr;
}

// One thread with `attr_size` (0: no attribute) using `use` bytes of stack.
void recursion_in_thread(std::size_t attr_size, std::size_t use) {
    Job job{use};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (attr_size) pthread_attr_setstacksize(&attr, attr_size);
    pthread_t t;
    int rc = pthread_create(&t, attr_size ? &attr : nullptr, use_stack, &job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        std::printf("pthread_create: %s\n", std::strerror(rc));
        return;
    }
    pthread_join(t, nullptr);
    std::printf("thread (stack %zu KiB) used %zu KiB: result %u\n", attr_size / 1024, use / 1024, job.result);
}

constexpr std::size_t KiB = 1024, MiB = 1024 * 1024;

void recursion_1m_default() { recursion_in_thread(0, 1 * MiB); }
void recursion_4m_default() { recursion_in_thread(0, 4 * MiB); }
void recursion_1m_explicit() { recursion_in_thread(2 * MiB, 1 * MiB); }
void recursion_4m_explicit() { recursion_in_thread(16 * MiB, 4 * MiB); }

void reports_default_size() {
    // What a thread sees of its own stack: pthread_getattr_np's size is at
    // least what it would be unpatched (the default), so code that sizes its
    // work by it behaves the same.
    pthread_t t;
    pthread_create(
        &t, nullptr,
        [](void*) -> void* {
            pthread_attr_t a;
            std::size_t size = 0, def = 0;
            pthread_getattr_np(pthread_self(), &a);
            pthread_attr_getstacksize(&a, &size);
            pthread_attr_destroy(&a);
            pthread_attr_t d;
            pthread_getattr_default_np(&d);
            pthread_attr_getstacksize(&d, &def);
            pthread_attr_destroy(&d);
            std::printf("own stack >= default thread stack: %d\n", size + 64 * KiB >= def);
            return nullptr;
        },
        nullptr);
    pthread_join(t, nullptr);
}

long rss_kib() {
    FILE* f = std::fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
    if (f) std::fclose(f);
    return kib;
}

// 2,000 threads alive at once, each having used 300 KiB of its stack; once
// they have ended, most of that memory is given back (unpatched: glibc
// releases exited threads' stacks; patched: the stack pool trims them).
void many_threads_300k() {
    constexpr int kThreads = 2000;
    pthread_barrier_t all_used, measured;
    pthread_barrier_init(&all_used, nullptr, kThreads + 1);
    pthread_barrier_init(&measured, nullptr, kThreads + 1);
    struct Arg {
        pthread_barrier_t* all_used;
        pthread_barrier_t* measured;
        unsigned result;
    };
    std::vector<Arg> args(kThreads, Arg{&all_used, &measured, 0});
    std::vector<pthread_t> ts(kThreads);
    for (int i = 0; i < kThreads; ++i) {
        int rc = pthread_create(
            &ts[i], nullptr,
            [](void* p) -> void* {
                auto* a = static_cast<Arg*>(p);
                a->result = recurse(300 * KiB);
                pthread_barrier_wait(a->all_used);
                pthread_barrier_wait(a->measured);
                return nullptr;
            },
            &args[i]);
        if (rc != 0) {
            std::printf("pthread_create %d: %s\n", i, std::strerror(rc));
            std::exit(1);
        }
    }
    pthread_barrier_wait(&all_used);
    const long peak = rss_kib();
    pthread_barrier_wait(&measured);
    unsigned sum = 0;
    for (int i = 0; i < kThreads; ++i) {
        pthread_join(ts[i], nullptr);
        sum += args[i].result;
    }
    pthread_barrier_destroy(&all_used);
    pthread_barrier_destroy(&measured);
    const long after = rss_kib();
    std::printf("%d threads used 300 KiB each: sum %u\n", kThreads, sum);
    std::printf("peak RSS above 500 MiB: %d\n", peak > 500 * 1024);
    std::printf("more than half of it given back after they ended: %d\n", after < peak / 2);
}

// --- overflows: both runs die; the shim names the thread ----------------------

void* named_overflow(void* fn) {
    pthread_setname_np(pthread_self(), "overflower");
    reinterpret_cast<void (*)()>(fn)();
    return nullptr;
}

void run_named_overflow(void (*fn)()) {
    // A small stack, so the frames below do not fit, and a guard wider than
    // the frames reach past it: unpatched, the overflow always faults in the
    // thread's own guard instead of sometimes writing into whatever mapping
    // lies below the stack. (The shim places its own guards.)
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);
    pthread_attr_setguardsize(&attr, 64 * KiB);
    pthread_t t;
    pthread_create(&t, &attr, named_overflow, reinterpret_cast<void*>(fn));
    pthread_join(t, nullptr);
    std::printf("survived\n");  // not reached in either run
}

__attribute__((noinline)) void one_mib_local_array() {
    volatile char big[1 * MiB];
    std::memset(const_cast<char*>(big), 1, sizeof big);  // lowest address first
    std::printf("%d\n", big[12345]);
}

__attribute__((noinline)) void big_read_into_local_buffer() {
    // 268 KiB: the buffer reaches past the bottom of a 256 KiB stack; the
    // read must not fill anything but this thread's own memory.
    char buf[268 * KiB];
    int p[2];
    if (pipe(p) != 0) std::exit(1);
    if (write(p[1], "data", 4) != 4) std::exit(1);
    ssize_t n = read(p[0], buf, sizeof buf);
    std::printf("read %zd: %.4s\n", n, buf);
}

void local_array_1m() { run_named_overflow(one_mib_local_array); }
void read_into_big_buffer() { run_named_overflow(big_read_into_local_buffer); }

const green::probe::Case kCases[] = {
    {"recursion_1m_default", recursion_1m_default},
    {"recursion_4m_default", recursion_4m_default},
    {"recursion_1m_explicit", recursion_1m_explicit},
    {"recursion_4m_explicit", recursion_4m_explicit},
    {"reports_default_size", reports_default_size},
    {"many_threads_300k", many_threads_300k},
    {"local_array_1m", local_array_1m},
    {"read_into_big_buffer", read_into_big_buffer},
};

}  // namespace

int main(int argc, char** argv) { return green::probe::main("probe_stacks", kCases, argc, argv); }
