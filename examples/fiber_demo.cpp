// A small program that uses libgreen's API directly ("linking as a library").
//
// It shows the two things the runtime is for, measured in the same run:
//  1. 10,000 concurrent "blocking" sleeps finish in the time of one, because
//     each sleeps in its own fiber; the same with OS threads costs a thread
//     (stack, kernel switches) per sleeper.
//  2. An echo over 1,000 socket pairs served by 2,000 fibers on one OS thread,
//     with bytes checked end to end.
#include <green/green.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Reads exactly n bytes from a non-blocking fd, suspending only this fiber.
bool read_full(int fd, char* buf, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r > 0) {
            buf += r;
            n -= static_cast<size_t>(r);
        } else if (r < 0 && errno == EAGAIN) {
            if (green::wait_fd(fd, green::kReadable) != green::WaitResult::Ready) return false;
        } else {
            return false;
        }
    }
    return true;
}

bool write_full(int fd, const char* buf, size_t n) {
    while (n > 0) {
        ssize_t r = write(fd, buf, n);
        if (r > 0) {
            buf += r;
            n -= static_cast<size_t>(r);
        } else if (r < 0 && errno == EAGAIN) {
            if (green::wait_fd(fd, green::kWritable) != green::WaitResult::Ready) return false;
        } else {
            return false;
        }
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const int sleepers = argc > 1 ? std::atoi(argv[1]) : 10000;
    const int pairs = argc > 2 ? std::atoi(argv[2]) : 1000;

    return green::run([&] {
        std::printf("green fiber demo: %d concurrent 100 ms sleeps, then echo over %d socket pairs\n\n", sleepers,
                    pairs);

        // 1. Sleepers: fibers vs threads, same run.
        auto t0 = Clock::now();
        {
            green::WaitGroup wg;
            wg.add(sleepers);
            for (int i = 0; i < sleepers; ++i)
                green::spawn([&] {
                    green::this_fiber::sleep_for(100ms);
                    wg.done();
                }, {"sleeper", 64 * 1024}).detach();
            wg.wait();
        }
        double fibers_ms = ms_since(t0);
        t0 = Clock::now();
        {
            std::vector<std::thread> threads;
            threads.reserve(static_cast<size_t>(sleepers));
            for (int i = 0; i < sleepers; ++i) threads.emplace_back([] { std::this_thread::sleep_for(100ms); });
            for (auto& t : threads) t.join();
        }
        double threads_ms = ms_since(t0);
        std::printf("  %-28s %10s %10s %8s\n", "", "fibers", "threads", "ratio");
        std::printf("  %-28s %8.1f ms %8.1f ms %7.2fx\n", "10k x sleep(100ms) wall", fibers_ms, threads_ms,
                    threads_ms / fibers_ms);

        // 2. Echo over socket pairs: one fiber writes and reads back, one echoes.
        t0 = Clock::now();
        std::atomic<long> bytes_ok{0};
        std::atomic<int> failures{0};
        {
            green::WaitGroup wg;
            for (int p = 0; p < pairs; ++p) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
                    std::perror("socketpair");
                    return 1;
                }
                wg.add(2);
                green::spawn([&, fd = sv[1]] {
                    char buf[512];
                    for (int i = 0; i < 100; ++i) {
                        if (!read_full(fd, buf, sizeof buf) || !write_full(fd, buf, sizeof buf)) ++failures;
                    }
                    close(fd);
                    wg.done();
                }, {"echo", 64 * 1024}).detach();
                green::spawn([&, fd = sv[0], p] {
                    char out[512], in[512];
                    for (int i = 0; i < 100; ++i) {
                        std::memset(out, 'a' + (p + i) % 26, sizeof out);
                        if (!write_full(fd, out, sizeof out) || !read_full(fd, in, sizeof in) ||
                            std::memcmp(in, out, sizeof in) != 0)
                            ++failures;
                        else
                            bytes_ok += static_cast<long>(sizeof in);
                    }
                    close(fd);
                    wg.done();
                }, {"client", 64 * 1024}).detach();
            }
            wg.wait();
        }
        double echo_ms = ms_since(t0);
        green::Stats s = green::stats();
        std::printf("  %-28s %8.1f ms  (%ld bytes verified, %d failures)\n", "echo 1000 pairs x 100 msgs", echo_ms,
                    bytes_ok.load(), failures.load());
        std::printf("\n  fibers spawned %llu, context switches %llu, fd waits %llu, OS threads for fibers: 1\n",
                    static_cast<unsigned long long>(s.fibers_spawned), static_cast<unsigned long long>(s.switches),
                    static_cast<unsigned long long>(s.fd_waits));
        return failures.load() == 0 ? 0 : 1;
    });
}
