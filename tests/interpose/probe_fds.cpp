// Differential probe for fds, pipes and processes: what a program sees of
// its fd numbers, of fds it got from elsewhere (raw syscalls stand in for
// inherited or library-made fds the shim never saw created), and of its
// children. Every case prints only what the program observes; under the
// shim the output must be identical, with one hub or two. A case that
// relies on one thread not blocking the others (a reader parked on a
// foreign fd while the others work) would hang under a shim that blocked
// its hub, and the test's timeout reports it.
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "probe_main.hpp"

namespace {

#define CHECK(x)                                                                   \
    do {                                                                           \
        if (!(x)) {                                                                \
            std::printf("CHECK failed: %s (line %d, errno %d)\n", #x, __LINE__, errno); \
            std::exit(1);                                                          \
        }                                                                          \
    } while (0)

int raw_pipe(int p[2]) { return static_cast<int>(syscall(SYS_pipe2, p, 0)); }

// Everything `fd` delivers until EOF.
std::string read_to_eof(int fd) {
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    return text;
}

int exit_status_of(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    return WEXITSTATUS(st);
}

// Two threads hand a byte back and forth `n` times over socketpairs: work
// that can only finish if the hub is not blocked by some other thread.
int ping_pong(int n) {
    int a[2], b[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
    std::thread echo([&] {
        char c;
        for (int i = 0; i < n; ++i) {
            CHECK(read(a[1], &c, 1) == 1);
            CHECK(write(b[1], &c, 1) == 1);
        }
    });
    int done = 0;
    for (int i = 0; i < n; ++i) {
        char c = 'p';
        CHECK(write(a[0], &c, 1) == 1);
        CHECK(read(b[0], &c, 1) == 1);
        ++done;
    }
    echo.join();
    for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
    return done;
}

void first_open() {
    int fd = open("/dev/null", O_RDONLY);
    std::printf("first open: %d\n", fd);
    int p[2];
    CHECK(pipe(p) == 0);
    std::printf("pipe: %d %d\n", p[0], p[1]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    std::printf("socket: %d\n", s);
    std::printf("F_DUPFD from 10: %d\n", fcntl(fd, F_DUPFD, 10));
    std::printf("blocking in the kernel: %d %d %d\n", !(fcntl(p[0], F_GETFL) & O_NONBLOCK),
                !(fcntl(p[1], F_GETFL) & O_NONBLOCK), !(fcntl(s, F_GETFL) & O_NONBLOCK));
}

// What a daemon does at start: close every fd it did not open, then reuse
// the low numbers; the process must keep working (threads, waits).
void daemon_close() {
    int closed = 0, ebadf = 0;
    for (int fd = 3; fd < 1024; ++fd) {
        if (close(fd) == 0) ++closed;
        else if (errno == EBADF) ++ebadf;
    }
    std::printf("closed %d, EBADF %d\n", closed, ebadf);
    int fd = open("/dev/null", O_WRONLY);
    std::printf("open after closing: %d\n", fd);
    std::printf("dup2 onto 3: %d, onto 5: %d\n", dup2(1, 3), dup2(1, 5));
    std::printf("close_range 3..~0: %d\n", static_cast<int>(syscall(SYS_close_range, 3u, ~0u, 0)));
    std::printf("close_range hooked 3..~0: %d\n", close_range(3, ~0u, 0));
    int p[2];
    CHECK(pipe(p) == 0);
    std::printf("pipe after close_range: %d %d\n", p[0], p[1]);
    std::printf("ping-pong after closing: %d\n", ping_pong(100));
}

// A reader thread blocks on a pipe the shim never saw created (stdin of a
// console thread, a popen pipe) while two others keep talking.
void foreign_pipe_thread() {
    int p[2];
    CHECK(raw_pipe(p) == 0);
    char got = 0;
    std::thread reader([&] { CHECK(read(p[0], &got, 1) == 1); });
    int served = ping_pong(1000);
    CHECK(write(p[1], "x", 1) == 1);
    reader.join();
    std::printf("served %d while a thread read a foreign pipe, then read '%c'\n", served, got);
    // The same with the pipe as stdin, read by a console thread.
    CHECK(dup2(p[0], 0) == 0);
    std::thread console([&] { CHECK(read(0, &got, 1) == 1); });
    served = ping_pong(1000);
    CHECK(write(p[1], "y", 1) == 1);
    console.join();
    std::printf("served %d while a thread read stdin, then read '%c'\n", served, got);
}

void eventfd_timerfd() {
    int e = static_cast<int>(syscall(SYS_eventfd2, 0, 0));
    CHECK(e >= 0);
    std::uint64_t v = 0;
    std::thread reader([&] { CHECK(read(e, &v, sizeof v) == sizeof v); });
    int served = ping_pong(200);
    std::uint64_t one = 41;
    CHECK(write(e, &one, sizeof one) == sizeof one);
    reader.join();
    std::printf("eventfd: served %d, read %llu\n", served, static_cast<unsigned long long>(v));
    int t = static_cast<int>(syscall(SYS_timerfd_create, CLOCK_MONOTONIC, 0));
    CHECK(t >= 0);
    itimerspec its{};
    its.it_value.tv_nsec = 50 * 1000 * 1000;
    CHECK(timerfd_settime(t, 0, &its, nullptr) == 0);
    std::uint64_t ticks = 0;
    std::thread treader([&] { CHECK(read(t, &ticks, sizeof ticks) == sizeof ticks); });
    served = ping_pong(200);
    treader.join();
    std::printf("timerfd: served %d, ticks %llu\n", served, static_cast<unsigned long long>(ticks));
    std::printf("still blocking: %d %d\n", !(fcntl(e, F_GETFL) & O_NONBLOCK), !(fcntl(t, F_GETFL) & O_NONBLOCK));
}

// A listening socket the shim never saw (systemd socket activation hands
// it over as fd 3), served thread-per-connection. Client i sends only after
// client i+1 got its answer, so the server threads must run concurrently.
void inherited_listener() {
    int l = static_cast<int>(syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));
    CHECK(l >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(syscall(SYS_bind, l, &a, sizeof a) == 0);
    CHECK(syscall(SYS_listen, l, 16) == 0);
    socklen_t al = sizeof a;
    CHECK(getsockname(l, reinterpret_cast<sockaddr*>(&a), &al) == 0);
    constexpr int kClients = 8;
    std::thread acceptor([&] {
        std::vector<std::thread> conns;
        for (int i = 0; i < kClients; ++i) {
            int c = accept(l, nullptr, nullptr);
            CHECK(c >= 0);
            conns.emplace_back([c] {
                char buf[16];
                ssize_t n = read(c, buf, sizeof buf);
                CHECK(n > 0);
                CHECK(write(c, buf, static_cast<std::size_t>(n)) == n);
                close(c);
            });
        }
        for (auto& t : conns) t.join();
    });
    int fds[kClients];
    for (int& fd : fds) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    int answered = 0;
    for (int i = kClients - 1; i >= 0; --i) {
        char c = static_cast<char>('a' + i), back = 0;
        CHECK(write(fds[i], &c, 1) == 1);
        CHECK(read(fds[i], &back, 1) == 1);
        if (back == c) ++answered;
        close(fds[i]);
    }
    acceptor.join();
    std::printf("inherited listener answered %d of %d\n", answered, kClients);
}

void popen_reader() {
    FILE* f = popen("printf 'one\\ntwo\\n'", "r");
    CHECK(f);
    std::string text;
    std::thread reader([&] { text = read_to_eof(fileno(f)); });
    int served = ping_pong(200);
    reader.join();
    int st = pclose(f);
    std::printf("popen: served %d, read [%s], status %d\n", served, text.c_str(), WEXITSTATUS(st));
}

// A child that execs, fed through a pipe by the parent: the child must get
// a blocking pipe, and the parent must get all of its output.
void child_pipes() {
    int in[2], out[2];
    CHECK(pipe(in) == 0);
    CHECK(pipe(out) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp("sh", "sh", "-c", "flags=$(cat /proc/self/fdinfo/0 | grep flags); sleep 0.1; wc -c; echo \"$flags\"",
               static_cast<char*>(nullptr));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    std::string big(1 << 20, 'x');
    CHECK(write(in[1], big.data(), big.size()) == static_cast<ssize_t>(big.size()));
    close(in[1]);
    const std::string text = read_to_eof(out[0]);
    std::printf("child said: %s", text.c_str());
    std::printf("child status %d\n", exit_status_of(pid));
}

void vfork_exec() {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = vfork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execlp("echo", "echo", "from the vfork child", static_cast<char*>(nullptr));
        _exit(127);
    }
    close(p[1]);
    const std::string text = read_to_eof(p[0]);
    const int status = exit_status_of(pid);
    std::printf("vfork: [%s] status %d, pipe still blocking %d\n", text.c_str(), status,
                !(fcntl(p[0], F_GETFL) & O_NONBLOCK));
}

// Threads created in a fork child run (with any number of hubs).
void fork_threads() {
    pid_t pid = fork();
    if (pid == 0) {
        std::_Exit(ping_pong(100) == 100 ? 5 : 1);
    }
    std::printf("fork child with threads exited %d\n", exit_status_of(pid));
}

// fork() while other threads open and close fds and create keys without a
// pause: every child opens, dups and closes fds and creates a key before it
// exits, as a child does between fork and exec. The runtime's tables must be
// usable in every child, whatever another thread was doing at the fork.
void fork_during_fd_churn() {
    std::atomic<bool> stop{false};
    auto fd_churn = [&] {
        while (!stop.load(std::memory_order_relaxed)) {
            int p[2];
            CHECK(pipe(p) == 0);
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            CHECK(s >= 0);
            int d = dup(s);
            CHECK(d >= 0);
            for (int fd : {p[0], p[1], s, d}) close(fd);
            sched_yield();  // threads of one hub take turns, as threads of one CPU would
        }
    };
    auto key_churn = [&] {
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 1000; ++i) {
                pthread_key_t k;
                CHECK(pthread_key_create(&k, nullptr) == 0);
                pthread_key_delete(k);
            }
            sched_yield();
        }
    };
    std::thread a(fd_churn), b(key_churn);
    constexpr int kForks = 200;
    int exited_ok = 0;
    for (int i = 0; i < kForks; ++i) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            int p[2];
            if (pipe(p) != 0 || dup2(p[0], 100) != 100) std::_Exit(1);
            pthread_key_t k;
            if (pthread_key_create(&k, nullptr) != 0) std::_Exit(1);
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            if (s < 0) std::_Exit(1);
            for (int fd : {p[0], p[1], 100, s}) close(fd);
            std::_Exit(7);
        }
        exited_ok += exit_status_of(pid) == 7;
    }
    stop.store(true);
    a.join();
    b.join();
    std::printf("fork during fd churn: %d of %d children exited 7\n", exited_ok, kForks);
}

// daemon(): the grandchild runs threads and reports through a pipe.
void daemon_threads() {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (daemon(1, 1) != 0) std::_Exit(1);
        char line[64];
        int n = std::snprintf(line, sizeof line, "daemon ping-pong %d\n", ping_pong(100));
        CHECK(write(p[1], line, static_cast<std::size_t>(n)) == n);
        std::_Exit(0);
    }
    close(p[1]);
    const int status = exit_status_of(pid);
    const std::string text = read_to_eof(p[0]);
    std::printf("daemon parent exited %d; %s", status, text.c_str());
}

// MSG_WAITALL through recvfrom with an address and through recvmsg: the
// sender's two parts arrive separately; the call returns both.
void waitall() {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int go[2];
    CHECK(pipe(go) == 0);
    std::thread sender([&] {
        for (int round = 0; round < 2; ++round) {
            CHECK(write(sv[1], "hello", 5) == 5);
            char c;
            CHECK(read(go[0], &c, 1) == 1);
            CHECK(write(sv[1], " world", 6) == 6);
        }
    });
    char buf[32] = {};
    sockaddr_storage from{};
    socklen_t fl = sizeof from;
    // The first part is there; tell the sender to send the second while we wait.
    pollfd pf{sv[0], POLLIN, 0};
    CHECK(poll(&pf, 1, -1) == 1);
    CHECK(write(go[1], "g", 1) == 1);
    ssize_t n = recvfrom(sv[0], buf, 11, MSG_WAITALL, reinterpret_cast<sockaddr*>(&from), &fl);
    std::printf("recvfrom WAITALL: %zd [%s]\n", n, buf);
    std::memset(buf, 0, sizeof buf);
    CHECK(poll(&pf, 1, -1) == 1);
    CHECK(write(go[1], "g", 1) == 1);
    iovec iov[2] = {{buf, 4}, {buf + 4, 7}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    n = recvmsg(sv[0], &m, MSG_WAITALL);
    std::printf("recvmsg WAITALL: %zd [%s]\n", n, buf);
    sender.join();
}

// select with nfds above FD_SETSIZE on a set the program allocated.
void select_big() {
    int p[2];
    CHECK(pipe(p) == 0);
    const int hi = 1500;
    CHECK(dup2(p[0], hi) == hi);
    const std::size_t words = (hi + 1 + 63) / 64;
    std::vector<unsigned long> set(words);
    set[hi / 64] |= 1ul << (hi % 64);
    std::thread writer([&] { CHECK(write(p[1], "z", 1) == 1); });
    int r = select(hi + 1, reinterpret_cast<fd_set*>(set.data()), nullptr, nullptr, nullptr);
    writer.join();
    std::printf("select nfds %d: %d, bit %d\n", hi + 1, r, static_cast<int>((set[hi / 64] >> (hi % 64)) & 1));
}

void splice_tee() {
    int a[2], b[2], sv[2];
    CHECK(pipe(a) == 0);
    CHECK(pipe(b) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    std::thread writer([&] { CHECK(write(a[1], "spliced", 7) == 7); });
    ssize_t t = tee(a[0], b[1], 64, 0);
    writer.join();
    ssize_t s = splice(a[0], nullptr, sv[0], nullptr, 64, 0);
    char buf[32] = {}, buf2[32] = {};
    CHECK(read(sv[1], buf, sizeof buf) == s);
    CHECK(read(b[0], buf2, sizeof buf2) == t);
    std::printf("tee %zd [%s], splice %zd [%s]\n", t, buf2, s, buf);
    std::thread writer2([&] {
        CHECK(write(sv[1], "back", 4) == 4);
    });
    s = splice(sv[0], nullptr, a[1], nullptr, 64, 0);
    writer2.join();
    std::memset(buf, 0, sizeof buf);
    CHECK(read(a[0], buf, sizeof buf) == s);
    std::printf("splice from socket %zd [%s]\n", s, buf);
}

void mmsg() {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    char bufs[3][8] = {};
    iovec iov[3];
    mmsghdr msgs[3] = {};
    for (int i = 0; i < 3; ++i) {
        iov[i] = {bufs[i], sizeof bufs[i]};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    std::thread sender([&] {
        char out[3][4] = {"one", "two", "six"};
        iovec oiov[3];
        mmsghdr omsgs[3] = {};
        for (int i = 0; i < 3; ++i) {
            oiov[i] = {out[i], 3};
            omsgs[i].msg_hdr.msg_iov = &oiov[i];
            omsgs[i].msg_hdr.msg_iovlen = 1;
        }
        CHECK(sendmmsg(sv[1], omsgs, 1, 0) == 1);
        CHECK(sendmmsg(sv[1], omsgs + 1, 2, 0) == 2);
    });
    int n = recvmmsg(sv[0], msgs, 3, 0, nullptr);
    sender.join();
    std::printf("recvmmsg %d:", n);
    for (int i = 0; i < n; ++i) std::printf(" %.*s", static_cast<int>(msgs[i].msg_len), bufs[i]);
    std::printf("\n");
}

// close with SO_LINGER waits for unsent data to go; meanwhile the others run.
void linger_close() {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    CHECK(listen(l, 1) == 0);
    socklen_t al = sizeof a;
    CHECK(getsockname(l, reinterpret_cast<sockaddr*>(&a), &al) == 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    int s = accept(l, nullptr, nullptr);
    linger lg{1, 5};
    CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    std::string data(64 * 1024, 'd');
    CHECK(write(c, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    std::size_t got = 0;
    std::thread drainer([&] {
        char buf[8192];
        ssize_t n;
        while ((n = read(s, buf, sizeof buf)) > 0) got += static_cast<std::size_t>(n);
    });
    int r = close(c);
    drainer.join();
    std::printf("linger close %d, peer got %zu\n", r, got);
}

// stdio on a socket: glibc's internal read/write are not hooked, so they
// see the kernel's flags as they are; a 4 MiB fwrite must arrive whole.
void stdio_socket() {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        FILE* in = fdopen(sv[1], "r+");
        std::size_t got = 0;
        char buf[65536];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) got += n;
        std::fprintf(in, "got %zu\n", got);
        std::fclose(in);
        std::_Exit(0);
    }
    close(sv[1]);
    FILE* out = fdopen(sv[0], "r+");
    std::string big(4 << 20, 'q');
    std::size_t put = std::fwrite(big.data(), 1, big.size(), out);
    CHECK(std::fflush(out) == 0);
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    char line[64] = {};
    CHECK(std::fgets(line, sizeof line, out) != nullptr);
    std::fclose(out);
    int st = 0;
    waitpid(pid, &st, 0);
    std::printf("fwrite %zu, peer %s", put, line);
}

// A tty has no RWF_NOWAIT: the reader thread waits for readiness first.
void pty_reader() {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0);
    CHECK(grantpt(m) == 0 && unlockpt(m) == 0);
    int sl = open(ptsname(m), O_RDWR | O_NOCTTY);
    CHECK(sl >= 0);
    char line[32] = {};
    std::thread reader([&] { CHECK(read(sl, line, sizeof line - 1) > 0); });
    int served = ping_pong(300);
    CHECK(write(m, "typed\n", 6) == 6);
    reader.join();
    std::printf("pty: served %d, read [%s], blocking %d\n", served, line, !(fcntl(sl, F_GETFL) & O_NONBLOCK));
}

const green::probe::Case kCases[] = {
    {"first_open", first_open},
    {"daemon_close", daemon_close},
    {"foreign_pipe_thread", foreign_pipe_thread},
    {"eventfd_timerfd", eventfd_timerfd},
    {"inherited_listener", inherited_listener},
    {"popen_reader", popen_reader},
    {"child_pipes", child_pipes},
    {"vfork_exec", vfork_exec},
    {"fork_threads", fork_threads},
    {"fork_during_fd_churn", fork_during_fd_churn},
    {"daemon_threads", daemon_threads},
    {"waitall", waitall},
    {"select_big", select_big},
    {"splice_tee", splice_tee},
    {"mmsg", mmsg},
    {"linger_close", linger_close},
    {"stdio_socket", stdio_socket},
    {"pty_reader", pty_reader},
};

}  // namespace

int main(int argc, char** argv) { return green::probe::main("probe_fds", kCases, argc, argv); }
