// What the fault tests share: how a server is run (unpatched, or under the
// shim on 1 or 2 hubs: the same faults must be survived the same way in
// all three), what is read from /proc about it, and a bounded HTTP reader.
//
// Invariants: every wait is bounded (a broken server fails a test, it never
// hangs it), nothing sleeps to synchronise, everything is on loopback.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>

#include <cerrno>
#include <climits>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../e2e/server_child.hpp"
#include "../interpose/run_capture.hpp"

namespace green::test {

// How the server under test runs. Unpatched is the baseline: it shows the
// test itself is sound, and soak figures are ratios against it.
struct Mode {
    const char* name;
    int hubs;  // 0: unpatched
};

inline const Mode kModes[] = {{"unpatched", 0}, {"hubs1", 1}, {"hubs2", 2}};

inline std::string mode_name(const ::testing::TestParamInfo<Mode>& info) { return info.param.name; }

inline std::string example_path(const std::string& name) { return env_or_die("GREEN_EXAMPLES_DIR") + "/" + name; }

inline std::vector<std::string> mode_env(const Mode& m) {
    if (m.hubs == 0) return {};
    return {preload_env(), "GREEN_HUBS=" + std::to_string(m.hubs)};
}

// Starts an example server in `m`. A patched server is checked to really have
// the shim mapped, so a preload that silently did not load fails the test.
inline std::unique_ptr<ServerChild> start_server(const Mode& m, const std::vector<std::string>& argv) {
    auto s = std::make_unique<ServerChild>(argv, mode_env(m));
    EXPECT_GT(s->port(), 0) << "no 'listening on PORT' from " << argv[0] << "; output:\n" << s->output();
    if (s->port() > 0) {
        EXPECT_EQ(s->maps("libgreen-preload.so"), m.hubs > 0);
    }
    return s;
}

// GREEN_SOAK_SECONDS turns the tests that scale with time into a soak of
// that many seconds (bench/soak.sh); unset, they run their CI-sized counts.
inline int soak_seconds() {
    const char* v = std::getenv("GREEN_SOAK_SECONDS");
    return v ? std::atoi(v) : 0;
}

// ---- the server as /proc sees it ----

// Open fds numbered below `below`: RLIMIT_NOFILE caps fd numbers, not how
// many are open (a process may inherit one above its limit).
inline long proc_fd_count(pid_t pid, long below = LONG_MAX) {
    DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    long n = 0;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.' && std::atol(e->d_name) < below) ++n;
    closedir(d);
    return n;
}

inline long proc_map_count(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    std::string line;
    long n = 0;
    while (std::getline(f, line)) ++n;
    return n;
}

inline long proc_status_field(pid_t pid, const std::string& field) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
    return -1;
}

struct ProcFigures {
    long fds, maps, rss_kb, threads;
};

inline ProcFigures proc_figures(pid_t pid) {
    return {proc_fd_count(pid), proc_map_count(pid), proc_status_field(pid, "VmRSS"),
            proc_status_field(pid, "Threads")};
}

// ---- sockets ----

// A connection with small socket buffers (set before connect, so the
// advertised window is small too): the server's replies back up after a few
// KiB, and a large reply is still being written when the client acts.
inline int connect_small_buffers(int port, int bytes = 4096) {
    return green::test::connect_to(port, 10000, bytes);
}

// Sends what the socket takes without blocking; the bytes sent.
inline size_t send_until_full(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    return off;
}

// Is there something to read on `fd` right now (data, EOF or an error)?
inline bool readable_now(int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

// Receives exactly `n` bytes (the socket's receive timeout bounds each wait).
inline bool recv_exact(int fd, std::string& out, size_t n) {
    out.resize(n);
    size_t have = 0;
    while (have < n) {
        ssize_t r = recv(fd, out.data() + have, n - have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        have += static_cast<size_t>(r);
    }
    return true;
}

// After shutdown(SHUT_WR): true once the peer closed too (EOF), having sent
// nothing more. An echo server closes its end only after close(fd), so this
// is the event that says the server's side of a connection is gone.
inline bool wait_peer_close(int fd) {
    char c;
    for (;;) {
        ssize_t r = recv(fd, &c, 1, 0);
        if (r < 0 && errno == EINTR) continue;
        return r == 0;
    }
}

// Closes with an RST instead of a FIN: what a peer that crashes or gives up
// mid-response does to the server.
inline void close_with_reset(int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

struct HttpResponse {
    int status = 0;
    std::string body;
};

// Reads one Content-Length framed response from `fd` (bytes after it stay in
// `buf` for the next call); nullopt on EOF, error or timeout.
inline std::optional<HttpResponse> read_http_response(int fd, std::string& buf) {
    auto more = [&] {
        char chunk[8192];
        for (;;) {
            ssize_t n = recv(fd, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            buf.append(chunk, static_cast<size_t>(n));
            return true;
        }
    };
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
        if (!more()) return std::nullopt;
    std::string head = buf.substr(0, end);
    if (head.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    HttpResponse r;
    r.status = std::atoi(head.c_str() + 9);
    size_t cl = head.find("Content-Length: ");
    size_t length = cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 16, nullptr, 10);
    while (buf.size() < end + 4 + length)
        if (!more()) return std::nullopt;
    r.body = buf.substr(end + 4, length);
    buf.erase(0, end + 4 + length);
    return r;
}

// FNV-1a, 64 bit: the soak's running checksum of what went out and came back.
inline std::uint64_t fnv1a(std::uint64_t h, const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ULL;
    return h;
}
constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325ULL;

}  // namespace green::test
