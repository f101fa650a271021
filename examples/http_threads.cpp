// Thread-per-connection HTTP/1.1 keep-alive server: an ordinary synchronous
// program (plain sockets, std::thread, std::mutex; no green headers).
//
//   http_threads PORT [UPSTREAM_PORT]
//
// Routes are listed in http_common.hpp. Unpatched, every open connection costs
// an OS thread; under greenrun, once pthread_create spawns fibers (issue 4),
// every connection costs a fiber and the blocking calls suspend only it.
#include <cstdio>
#include <system_error>
#include <thread>

#include "http_common.hpp"

int main(int argc, char** argv) {
    int port = 0, upstream_port = 0;
    example::parse_server_args("http_threads", argc, argv, port, upstream_port);
    static example::Routes routes;  // outlives the detached connection threads at exit
    routes.upstream_port = upstream_port;
    int listen_fd = example::listen_and_announce("http_threads", port);
    example::serve_thread_per_connection("http_threads", listen_fd, [](int fd) {
        example::Connection c{fd, {}, {}};
        while (example::serve_one(routes, c)) {
        }
        close(fd);
    });
}
