// One-connection ping-pong between two processes over loopback TCP, written
// as ordinary blocking code with no green headers. bench/bench_interpose.sh
// runs it unpatched and under the shim in one invocation and prints the ratio.
// Prints: "pingpong <round trips> <seconds> <ns per round trip>".
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "../tools/common/loopback.hpp"

int main(int argc, char** argv) {
    const long rounds = argc > 1 ? std::atol(argv[1]) : 100000;
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
    char buf[64] = {};
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < rounds; ++i) {
        if (write(s, buf, sizeof buf) != 64 || read(s, buf, sizeof buf) != 64) return 3;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int status = 0;
    waitpid(child, &status, 0);
    std::printf("pingpong %ld %.3f %.0f\n", rounds, secs, secs * 1e9 / static_cast<double>(rounds));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 4;
}
