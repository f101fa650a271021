// One-connection ping-pong between two processes over loopback TCP, written
// as ordinary blocking code with no green headers. bench/bench_interpose.sh
// runs it unpatched and under the shim in one invocation and prints the ratio.
// Prints: "pingpong <round trips> <seconds> <ns per round trip> <CPU ns per
// round trip>", the last the measuring process's own user + system time: on
// a machine where waking the other process dominates the round trip, what
// the calls themselves cost shows there.
//
//   bench_pingpong [ROUNDS] [POLL_SET]
// With POLL_SET = N > 0 the measuring side waits for each reply in poll() on
// N fds, the connection and N - 1 idle ones, as an event-loop client (a
// pgbench thread with its connections) does before every read; it prints
// "pingpong-poll<N> ...".
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../tools/common/loopback.hpp"

int main(int argc, char** argv) {
    const long rounds = argc > 1 ? std::atol(argv[1]) : 100000;
    const int poll_set = argc > 2 ? std::atoi(argv[2]) : 0;
    if (poll_set < 0 || poll_set > 1000) return 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = green_tools::loopback_address(0);
    if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 1) != 0) return 1;
    socklen_t len = sizeof a;
    getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    pid_t child = fork();
    if (child == 0) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(1);
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char buf[64];
        for (long i = 0; i < rounds; ++i) {
            if (read(c, buf, sizeof buf) != 64 || write(c, buf, sizeof buf) != 64) _exit(2);
        }
        _exit(0);
    }
    int s = accept(l, nullptr, nullptr);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::vector<pollfd> set;
    if (poll_set > 0) {
        set.push_back({s, POLLIN, 0});
        for (int i = 1; i < poll_set; ++i) {
            int idle[2];
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, idle) != 0) return 1;
            set.push_back({idle[0], POLLIN, 0});
        }
    }
    char buf[64] = {};
    auto cpu_ns = [] {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
    };
    const double cpu0 = cpu_ns();
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < rounds; ++i) {
        if (write(s, buf, sizeof buf) != 64) return 3;
        if (poll_set > 0 && (poll(set.data(), set.size(), -1) != 1 || set[0].revents != POLLIN)) return 3;
        if (read(s, buf, sizeof buf) != 64) return 3;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu_per = (cpu_ns() - cpu0) / static_cast<double>(rounds);
    int status = 0;
    waitpid(child, &status, 0);
    char label[32] = "pingpong";
    if (poll_set > 0) std::snprintf(label, sizeof label, "pingpong-poll%d", poll_set);
    std::printf("%s %ld %.3f %.0f %.0f\n", label, rounds, secs, secs * 1e9 / static_cast<double>(rounds), cpu_per);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 4;
}
