// Thread-per-connection TCP echo server: an ordinary synchronous program
// (plain sockets and std::thread; no green headers).
//
//   echo_threads PORT [--exit-after N]
//
// PORT 0 picks a free port; prints "listening on PORT". Every byte received is
// written back until the client closes. Totals (connections, most open at
// once, bytes) are kept under one std::mutex shared by every connection
// thread, the articles' shared state; with --exit-after N the server prints
// them and exits after the N-th connection closed, so a test can check they
// came out exact.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "sync_net.hpp"

namespace {

struct Totals {
    std::mutex mutex;
    long open_now = 0;
    long max_open = 0;
    long closed = 0;
    unsigned long long bytes = 0;
};
Totals totals;
long exit_after = 0;

void serve(int fd) {
    {
        std::lock_guard lock(totals.mutex);
        if (++totals.open_now > totals.max_open) totals.max_open = totals.open_now;
    }
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        {
            std::lock_guard lock(totals.mutex);
            totals.bytes += static_cast<unsigned long long>(n);
        }
        if (!example::write_all(fd, {buf, static_cast<size_t>(n)})) break;
    }
    close(fd);
    std::lock_guard lock(totals.mutex);
    --totals.open_now;
    if (++totals.closed == exit_after) {
        std::printf("connections %ld max_open %ld bytes %llu\n", totals.closed, totals.max_open, totals.bytes);
        std::fflush(stdout);
        std::exit(0);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2 && !(argc == 4 && std::strcmp(argv[2], "--exit-after") == 0)) {
        std::fprintf(stderr, "usage: echo_threads PORT [--exit-after N]   (PORT 0 picks a free port)\n");
        return 2;
    }
    if (argc == 4) {
        exit_after = std::atol(argv[3]);
        if (exit_after <= 0) {
            std::fprintf(stderr, "echo_threads: --exit-after takes a positive count, not '%s'\n", argv[3]);
            return 2;
        }
    }
    int listen_fd = example::listen_and_announce("echo_threads", example::parse_port("echo_threads", argv[1]));
    example::serve_thread_per_connection("echo_threads", listen_fd, serve);
}
