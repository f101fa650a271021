// A synchronous HTTP client: N GET requests spread over T threads, each
// thread with its own keep-alive connection (the articles' client-side test).
// An ordinary program (plain sockets and std::thread; no green headers): run
// it plain and under greenrun to compare.
//
//   client_threads [-n REQUESTS] [-t THREADS] [--close] PORT [PATH]
//
// Prints one summary line; the exit status is 0 when every answer was 200.
#include <getopt.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "http_common.hpp"

namespace {

// Reads one response; returns its status, or -1 when the connection failed.
// `keep` is cleared when the server will close the connection.
int read_response(example::Connection& c, bool& keep) {
    size_t end;
    while ((end = c.buf.find("\r\n\r\n")) == std::string::npos)
        if (!example::read_more(c.fd, c.buf)) return -1;
    std::string_view head(c.buf.data(), end);
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return -1;
    int status = std::atoi(std::string(head.substr(9, 3)).c_str());
    size_t length = 0;
    keep = true;
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos) {
        size_t next = head.find("\r\n", pos + 2);
        std::string_view h = head.substr(pos + 2, next == std::string_view::npos ? head.npos : next - pos - 2);
        size_t colon = h.find(':');
        if (colon != std::string_view::npos) {
            std::string_view name = h.substr(0, colon), value = example::trim(h.substr(colon + 1));
            if (example::iequals(name, "content-length")) length = std::strtoul(std::string(value).c_str(), nullptr, 10);
            if (example::iequals(name, "connection") && example::iequals(value, "close")) keep = false;
        }
        pos = next;
    }
    while (c.buf.size() < end + 4 + length)
        if (!example::read_more(c.fd, c.buf)) return -1;
    c.buf.erase(0, end + 4 + length);
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    long requests = 100, threads = 4;
    bool close_each = false;
    static option longopts[] = {{"requests", required_argument, nullptr, 'n'},
                                {"threads", required_argument, nullptr, 't'},
                                {"close", no_argument, nullptr, 'c'},
                                {nullptr, 0, nullptr, 0}};
    for (int opt; (opt = getopt_long(argc, argv, "n:t:", longopts, nullptr)) != -1;) {
        if (opt == 'n') requests = std::atol(optarg);
        else if (opt == 't') threads = std::atol(optarg);
        else if (opt == 'c') close_each = true;
        else optind = argc + 1;
    }
    if (optind > argc || argc - optind < 1 || argc - optind > 2 || requests < 1 || threads < 1 || threads > 10000) {
        std::fprintf(stderr, "usage: client_threads [-n REQUESTS] [-t THREADS] [--close] PORT [PATH]\n");
        return 2;
    }
    int port = example::parse_port("client_threads", argv[optind]);
    std::string path = argc - optind == 2 ? argv[optind + 1] : "/hello";
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                          (close_each ? "Connection: close\r\n\r\n" : "\r\n");

    std::atomic<long> next{0}, errors{0};
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (long t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            example::Connection c{-1, {}, {}};
            while (next.fetch_add(1) < requests) {
                if (c.fd < 0) c.fd = example::connect_loopback(port);
                bool keep = false;
                int status = c.fd < 0 ? -1 : example::write_all(c.fd, request) ? read_response(c, keep) : -1;
                if (status != 200) errors.fetch_add(1);
                if (!keep && c.fd >= 0) {
                    close(c.fd);
                    c.fd = -1;
                    c.buf.clear();
                }
            }
            if (c.fd >= 0) close(c.fd);
        });
    for (auto& t : pool) t.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("client_threads: %ld requests, %ld threads, %ld errors, %.3f s, %.1f req/s\n", requests, threads,
                errors.load(), secs, static_cast<double>(requests) / secs);
    return errors.load() == 0 ? 0 : 1;
}
