// What the fault tests share: how a server is run (unpatched, or under the
// shim on 1 or 2 hubs: the same faults must be survived the same way in
// all three), and what a misbehaving client does to a connection.
//
// Invariants: every wait is bounded (a broken server fails a test, it never
// hangs it), nothing sleeps to synchronise, everything is on loopback.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../common/env.hpp"
#include "../common/http_client.hpp"
#include "../common/net.hpp"
#include "../common/proc.hpp"
#include "../common/started_server.hpp"

namespace green::test {

// How the server under test runs. Unpatched is the baseline: it shows the
// test itself is sound, and soak figures are ratios against it.
struct Mode {
    const char* name;
    int hubs;  // 0: unpatched
};

inline const Mode kModes[] = {{"unpatched", 0}, {"hubs1", 1}, {"hubs2", 2}};

inline std::string mode_name(const ::testing::TestParamInfo<Mode>& info) { return info.param.name; }

inline std::vector<std::string> mode_env(const Mode& m) {
    if (m.hubs == 0) return {};
    return shim_env(m.hubs);
}

// Starts an example server in `m`.
inline std::unique_ptr<ServerChild> start_server(const Mode& m, const std::vector<std::string>& argv) {
    return start_server(argv, mode_env(m), m.hubs > 0);
}

// GREEN_SOAK_SECONDS turns the tests that scale with time into a soak of
// that many seconds (bench/soak.sh); unset, they run their CI-sized counts.
inline int soak_seconds() {
    const char* v = std::getenv("GREEN_SOAK_SECONDS");
    return v ? std::atoi(v) : 0;
}

// ---- sockets ----

// A connection with small socket buffers (set before connect, so the
// advertised window is small too): the server's replies back up after a few
// KiB, and a large reply is still being written when the client acts.
inline int connect_small_buffers(int port, int bytes = 4096) {
    return connect_to(port, 10000, bytes);
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

// FNV-1a, 64 bit: the soak's running checksum of what went out and came back.
inline std::uint64_t fnv1a(std::uint64_t h, const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ULL;
    return h;
}
constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325ULL;

}  // namespace green::test
