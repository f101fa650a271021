// The same HTTP/1.1 server as http_threads, with a fixed pool of 4 worker
// threads: the articles' "4 workers". An ordinary synchronous program (plain
// sockets, epoll, std::thread, std::mutex; no green headers).
//
//   http_pool PORT [UPSTREAM_PORT]
//
// The main thread accepts and waits (epoll) for idle keep-alive connections to
// send their next request; a ready connection goes to the queue, and one of
// the 4 workers answers it with blocking calls, then hands it back to epoll.
// At most 4 requests are in progress at any time, patched or not: running it
// under greenrun makes each blocking call cheaper, not the pool wider.
#include <sys/epoll.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <thread>
#include <vector>

#include "http_common.hpp"

namespace {

constexpr int kWorkers = 4;

example::Routes g_routes;
int g_epoll = -1;
std::mutex g_queue_mutex;
std::condition_variable g_queue_cv;
std::deque<example::Connection*> g_queue;

// Waits (again) for the connection's next request: one-shot, so that exactly
// one worker owns a connection while it is being served.
void arm(example::Connection* c, int op) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.ptr = c;
    if (epoll_ctl(g_epoll, op, c->fd, &ev) != 0) {
        close(c->fd);
        delete c;
    }
}

void worker() {
    for (;;) {
        example::Connection* c;
        {
            std::unique_lock<std::mutex> lock(g_queue_mutex);
            g_queue_cv.wait(lock, [] { return !g_queue.empty(); });
            c = g_queue.front();
            g_queue.pop_front();
        }
        bool open = example::serve_one(g_routes, *c);
        // Requests the client pipelined are already here: answer them too.
        while (open && c->buf.find("\r\n\r\n") != std::string::npos) open = example::serve_one(g_routes, *c);
        if (open) {
            arm(c, EPOLL_CTL_MOD);
        } else {
            close(c->fd);
            delete c;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    int port = 0;
    example::parse_server_args("http_pool", argc, argv, port, g_routes.upstream_port);
    int listen_fd = example::listen_and_announce("http_pool", port);
    g_epoll = epoll_create1(EPOLL_CLOEXEC);
    epoll_event lev{};
    lev.events = EPOLLIN;
    lev.data.ptr = nullptr;
    if (g_epoll < 0 || epoll_ctl(g_epoll, EPOLL_CTL_ADD, listen_fd, &lev) != 0) {
        std::perror("http_pool: epoll");
        return 1;
    }
    for (int i = 0; i < kWorkers; ++i) std::thread(worker).detach();

    std::vector<epoll_event> events(256);
    for (;;) {
        int n = epoll_wait(g_epoll, events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            std::perror("http_pool: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; ++i) {
            auto* c = static_cast<example::Connection*>(events[i].data.ptr);
            if (c == nullptr) {
                arm(new example::Connection{example::accept_retrying(listen_fd), {}, {}}, EPOLL_CTL_ADD);
                continue;
            }
            {
                std::lock_guard<std::mutex> lock(g_queue_mutex);
                g_queue.push_back(c);
            }
            g_queue_cv.notify_one();
        }
    }
}
