// The HTTP/1.1 part shared by http_threads and http_pool: reading a request
// from a blocking socket, the routes, and writing the response.
//
// Routes (GET; anything else answers 404, a malformed request 400):
//   /hello             a static 14-byte body
//   /sleep?ms=N        blocks the handling thread N ms (std::this_thread::sleep_for)
//   /upstream?ms=N     a blocking HTTP request to the delay server given on the
//                      command line, which answers after N ms: genuinely I/O-bound
//   /cpu?us=N          burns N µs of the handling thread's CPU time
//   /counter?us=N      increments a std::mutex-protected counter and holds the
//                      lock N µs more (default 0): the contended write; the body
//                      is the counter's new value
// Connections are kept alive unless the client says otherwise (or speaks
// HTTP/1.0 without asking for keep-alive).
#pragma once

#include <time.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "sync_net.hpp"

namespace example {

struct Request {
    std::string_view method;
    std::string_view path;
    std::string_view query;
    bool keep_alive = true;
};

enum class ReadResult { Ok, Closed, Bad };

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// One connection's receive buffer; a request's string_views point into
// `head`, valid until the next read_request.
struct Connection {
    int fd;
    std::string buf;   // bytes received and not yet consumed
    std::string head;  // the current request's line and headers
};

// Reads one request (line and headers; a body announced by Content-Length is
// read and dropped). Closed: EOF or an error before a complete request.
inline ReadResult read_request(Connection& c, Request& req) {
    constexpr size_t kMaxHead = 64 * 1024;
    size_t end;
    while ((end = c.buf.find("\r\n\r\n")) == std::string::npos) {
        if (c.buf.size() > kMaxHead) return ReadResult::Bad;
        if (!read_more(c.fd, c.buf)) return ReadResult::Closed;
    }
    c.head.assign(c.buf, 0, end + 2);
    c.buf.erase(0, end + 4);

    std::string_view head = c.head;
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return ReadResult::Bad;
    req.method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return ReadResult::Bad;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    req.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    req.keep_alive = version == "HTTP/1.1";

    size_t content_length = 0;
    while (!head.empty()) {
        eol = head.find("\r\n");
        std::string_view h = head.substr(0, eol);
        head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
        size_t colon = h.find(':');
        if (colon == std::string_view::npos) return ReadResult::Bad;
        std::string_view name = h.substr(0, colon), value = trim(h.substr(colon + 1));
        if (iequals(name, "connection")) {
            if (iequals(value, "close")) req.keep_alive = false;
            else if (iequals(value, "keep-alive")) req.keep_alive = true;
        } else if (iequals(name, "content-length")) {
            content_length = std::strtoul(std::string(value).c_str(), nullptr, 10);
            if (content_length > (1u << 24)) return ReadResult::Bad;
        }
    }
    while (c.buf.size() < content_length)
        if (!read_more(c.fd, c.buf)) return ReadResult::Closed;
    c.buf.erase(0, content_length);
    return ReadResult::Ok;
}

// The value of `key` in a query string as a number in [0, max]; `def` when absent.
inline long query_long(std::string_view query, std::string_view key, long def, long max) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
        if (kv.size() > key.size() && kv.substr(0, key.size()) == key && kv[key.size()] == '=') {
            long v = std::strtol(std::string(kv.substr(key.size() + 1)).c_str(), nullptr, 10);
            return v < 0 ? 0 : v > max ? max : v;
        }
    }
    return def;
}

// Burns `us` of this thread's CPU time, so a request costs the same CPU
// however often the thread is preempted on a loaded machine (a wall-clock
// loop would do less work per request the busier the machine). Under the shim
// the clock is the hub thread's; the loop never yields, so all of it is ours.
inline void burn_cpu(long us) {
    auto cpu_ns = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
    };
    const long long until = cpu_ns() + us * 1000LL;
    volatile std::uint64_t x = 1;
    while (cpu_ns() < until)
        for (int i = 0; i < 64; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
}

struct Response {
    int status = 200;
    std::string body;
};

// One blocking GET to the delay server; it answers after `ms` and closes.
inline Response call_upstream(int upstream_port, long ms) {
    if (upstream_port <= 0) return {503, "no upstream configured (start the server with an upstream port)\n"};
    int fd = connect_loopback(upstream_port);
    if (fd < 0) return {502, "upstream connect failed: " + std::string(std::strerror(errno)) + "\n"};
    std::string req = "GET /delay?ms=" + std::to_string(ms) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    std::string resp;
    bool ok = write_all(fd, req);
    while (ok && read_more(fd, resp)) {
    }
    close(fd);
    size_t body = resp.find("\r\n\r\n");
    if (!ok || resp.compare(0, 12, "HTTP/1.1 200") != 0 || body == std::string::npos)
        return {502, "upstream answered badly\n"};
    return {200, "upstream: " + resp.substr(body + 4)};
}

struct Routes {
    int upstream_port = 0;
    std::mutex counter_mutex;
    std::uint64_t counter = 0;

    Response handle(const Request& req) {
        if (req.method != "GET") return {405, "only GET\n"};
        if (req.path == "/hello") return {200, "Hello, World!\n"};
        if (req.path == "/sleep") {
            long ms = query_long(req.query, "ms", 10, 60000);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            return {200, "slept " + std::to_string(ms) + " ms\n"};
        }
        if (req.path == "/upstream") return call_upstream(upstream_port, query_long(req.query, "ms", 10, 60000));
        if (req.path == "/cpu") {
            long us = query_long(req.query, "us", 100, 10000000);
            burn_cpu(us);
            return {200, "burned " + std::to_string(us) + " us\n"};
        }
        if (req.path == "/counter") {
            long us = query_long(req.query, "us", 0, 1000000);
            std::uint64_t value;
            {
                std::lock_guard<std::mutex> lock(counter_mutex);
                value = ++counter;
                if (us > 0) burn_cpu(us);  // the "write" that holds the lock
            }
            return {200, std::to_string(value) + "\n"};
        }
        return {404, "not found\n"};
    }
};

inline const char* reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        default: return "Status";
    }
}

inline bool write_response(int fd, const Response& r, bool keep_alive) {
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
                      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(r.body.size()) +
                      (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    out += r.body;
    return write_all(fd, out);
}

// Answers one request; false when the connection is to be closed.
template <class Handler>  // Routes, or anything with Response handle(const Request&)
bool serve_one(Handler& routes, Connection& c) {
    Request req;
    switch (read_request(c, req)) {
        case ReadResult::Closed: return false;
        case ReadResult::Bad: write_response(c.fd, {400, "bad request\n"}, false); return false;
        case ReadResult::Ok: break;
    }
    return write_response(c.fd, routes.handle(req), req.keep_alive) && req.keep_alive;
}

// "PORT [UPSTREAM_PORT]" for both HTTP servers.
inline void parse_server_args(const char* prog, int argc, char** argv, int& port, int& upstream_port) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s PORT [UPSTREAM_PORT]\n  PORT 0 picks a free port; the server prints 'listening on PORT'.\n"
                             "  UPSTREAM_PORT: the delay server /upstream calls (greenbench delay-server).\n", prog);
        std::exit(2);
    }
    port = parse_port(prog, argv[1]);
    upstream_port = argc == 3 ? parse_port(prog, argv[2]) : 0;
}

}  // namespace example
