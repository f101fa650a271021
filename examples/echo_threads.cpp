// Thread-per-connection TCP echo server: an ordinary synchronous program
// (plain sockets and std::thread; no green headers).
//
//   echo_threads PORT        (0 picks a free port; prints "listening on PORT")
//
// Every byte received is written back until the client closes.
#include <cstdio>
#include <system_error>
#include <thread>

#include "sync_net.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: echo_threads PORT   (0 picks a free port)\n");
        return 2;
    }
    int listen_fd = example::listen_and_announce("echo_threads", example::parse_port("echo_threads", argv[1]));
    bool warned = false;
    for (;;) {
        int fd = example::accept_retrying(listen_fd);
        try {
            std::thread([fd] {
                char buf[16384];
                for (;;) {
                    ssize_t n = read(fd, buf, sizeof buf);
                    if (n < 0 && errno == EINTR) continue;
                    if (n <= 0 || !example::write_all(fd, {buf, static_cast<size_t>(n)})) break;
                }
                close(fd);
            }).detach();
        } catch (const std::system_error& e) {
            if (!warned) std::fprintf(stderr, "echo_threads: cannot start a thread: %s\n", e.what());
            warned = true;
            close(fd);
        }
    }
}
