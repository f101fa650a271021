// A plain program (no green headers) that exercises one family of hooked
// calls per case and prints what it observed: return values, errno names,
// bytes, flags. test_differential runs it unpatched and under the shim and
// requires identical output. Timing appears only as lower-bound booleans.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe_main.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using green::probe::Clock;
using green::probe::errno_name;
using green::probe::ms_since;

void show(const char* what, long r) {
    int e = errno;
    if (r < 0) std::printf("%s = %ld errno=%s\n", what, r, errno_name(e));
    else std::printf("%s = %ld\n", what, r);
}

void pair(int sv[2], int type = SOCK_STREAM) {
    if (socketpair(AF_UNIX, type, 0, sv) != 0) {
        std::perror("socketpair");
        std::exit(1);
    }
}

int listener(int* port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(s, 16);
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    *port = ntohs(a.sin_port);
    return s;
}

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    return a;
}

void case_read_write() {
    int sv[2];
    pair(sv);
    show("write 10", write(sv[1], "0123456789", 10));
    char buf[100];
    show("read 100 (short read)", read(sv[0], buf, sizeof buf));
    show("send 3", send(sv[1], "abc", 3, 0));
    show("recv 2", recv(sv[0], buf, 2, 0));
    show("recv rest", recv(sv[0], buf, 10, 0));
    show("recv MSG_DONTWAIT on empty", recv(sv[0], buf, 10, MSG_DONTWAIT));
    shutdown(sv[1], SHUT_WR);
    show("read at EOF", read(sv[0], buf, sizeof buf));
    close(sv[1]);
    show("write to closed peer", send(sv[0], "x", 1, MSG_NOSIGNAL));
    close(sv[0]);
    show("read closed fd", read(sv[0], buf, 1));
}

void case_vectors() {
    int sv[2];
    pair(sv);
    char a[] = "hello ", b[] = "world";
    iovec out[2] = {{a, 6}, {b, 5}};
    show("writev", writev(sv[1], out, 2));
    char x[4], y[20] = {};
    iovec in[2] = {{x, 4}, {y, 19}};
    show("readv", readv(sv[0], in, 2));
    std::printf("readv data: %.4s|%s\n", x, y);
    msghdr m{};
    m.msg_iov = out;
    m.msg_iovlen = 2;
    show("sendmsg", sendmsg(sv[1], &m, 0));
    std::memset(y, 0, sizeof y);
    msghdr r{};
    iovec in2[1] = {{y, 19}};
    r.msg_iov = in2;
    r.msg_iovlen = 1;
    show("recvmsg", recvmsg(sv[0], &r, 0));
    std::printf("recvmsg data: %s\n", y);
    show("send 8", send(sv[1], "12345678", 8, 0));
    char w[8];
    show("recv MSG_WAITALL 8", recv(sv[0], w, 8, MSG_WAITALL));
    int d[2];
    pair(d, SOCK_DGRAM);
    show("dgram send", send(d[1], "datagram", 8, 0));
    show("dgram recvfrom 4 (truncates)", recvfrom(d[0], w, 4, 0, nullptr, nullptr));
}

void case_nonblocking_flags() {
    int sv[2];
    pair(sv);
    int fl = fcntl(sv[0], F_GETFL);
    std::printf("blocking socket F_GETFL has O_NONBLOCK: %d\n", (fl & O_NONBLOCK) != 0);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    std::printf("after F_SETFL O_NONBLOCK: %d\n", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    char c;
    show("read on user-nonblocking empty socket", read(sv[0], &c, 1));
    int dupfd = dup(sv[0]);
    std::printf("dup shares O_NONBLOCK: %d\n", (fcntl(dupfd, F_GETFL) & O_NONBLOCK) != 0);
    fcntl(dupfd, F_SETFL, fcntl(dupfd, F_GETFL) & ~O_NONBLOCK);
    std::printf("cleared via dup, original sees: %d\n", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    int on = 1;
    show("ioctl FIONBIO 1", ioctl(sv[0], FIONBIO, &on));
    std::printf("after FIONBIO F_GETFL has O_NONBLOCK: %d\n", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    show("recv after FIONBIO", recv(sv[0], &c, 1, 0));
    int nb[2];
    show("socketpair SOCK_NONBLOCK", socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, nb));
    std::printf("SOCK_NONBLOCK F_GETFL: %d\n", (fcntl(nb[0], F_GETFL) & O_NONBLOCK) != 0);
    show("read SOCK_NONBLOCK empty", read(nb[0], &c, 1));
    int p[2];
    show("pipe", pipe(p));
    std::printf("pipe F_GETFL O_NONBLOCK: %d, access mode %d\n", (fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0,
                fcntl(p[1], F_GETFL) & O_ACCMODE);
    show("pipe write", write(p[1], "pp", 2));
    show("pipe read", read(p[0], &c, 1));
    int p2[2];
    show("pipe2 O_NONBLOCK", pipe2(p2, O_NONBLOCK));
    show("pipe2 read empty", read(p2[0], &c, 1));
    int d2 = fcntl(sv[1], F_DUPFD_CLOEXEC, 100);
    std::printf("F_DUPFD_CLOEXEC >= 100: %d, FD_CLOEXEC: %d\n", d2 >= 100, fcntl(d2, F_GETFD) & FD_CLOEXEC);
    show("dup2 onto an open fd", dup2(sv[1], d2));
    show("write via dup2 target", write(d2, "z", 1));
    show("read it", read(sv[0], &c, 1));
}

void case_timeouts() {
    int sv[2];
    pair(sv);
    timeval tv{0, 60000};
    show("SO_RCVTIMEO", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    timeval back{};
    socklen_t len = sizeof back;
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &back, &len);
    std::printf("getsockopt SO_RCVTIMEO = %ld.%06ld\n", static_cast<long>(back.tv_sec), static_cast<long>(back.tv_usec));
    char c;
    auto t0 = Clock::now();
    show("read with SO_RCVTIMEO", read(sv[0], &c, 1));
    std::printf("waited >= 50ms: %d\n", ms_since(t0) >= 50);
    // SO_SNDTIMEO: fill the socket until a send times out part way.
    int sndbuf = 4096;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    show("SO_SNDTIMEO", setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    std::vector<char> big(1 << 20, 'b');
    ssize_t n = send(sv[1], big.data(), big.size(), 0);
    std::printf("big send partial: %d\n", n > 0 && n < static_cast<ssize_t>(big.size()));
    show("send on full socket", send(sv[1], big.data(), 100, 0));
}

void case_connect_accept() {
    int port = 0;
    int l = listener(&port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(port);
    show("connect", connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a));
    show("connect again", connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a));
    int s = accept(l, nullptr, nullptr);
    std::printf("accept ok: %d, accepted F_GETFL O_NONBLOCK: %d\n", s >= 0, (fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    show("write", write(c, "ping", 4));
    char buf[8];
    show("read", read(s, buf, sizeof buf));
    int s4 = -1;
    int c2 = socket(AF_INET, SOCK_STREAM, 0);
    connect(c2, reinterpret_cast<sockaddr*>(&a), sizeof a);
    s4 = accept4(l, nullptr, nullptr, SOCK_NONBLOCK);
    std::printf("accept4 SOCK_NONBLOCK F_GETFL: %d\n", (fcntl(s4, F_GETFL) & O_NONBLOCK) != 0);
    show("read on it (nothing sent)", read(s4, buf, 1));
    close(l);
    // Nothing listens on the closed port now.
    int r = socket(AF_INET, SOCK_STREAM, 0);
    show("connect refused", connect(r, reinterpret_cast<sockaddr*>(&a), sizeof a));
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int l2port = 0;
    int l2 = listener(&l2port);  // kept open: the connect below must find it listening
    (void)l2;
    sockaddr_in a2 = loopback(l2port);
    int rc = connect(nb, reinterpret_cast<sockaddr*>(&a2), sizeof a2);
    std::printf("nonblocking connect: %s\n", rc == 0 ? "0" : errno_name(errno));
    pollfd pf{nb, POLLOUT, 0};
    show("poll for connect", poll(&pf, 1, 1000));
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(nb, SOL_SOCKET, SO_ERROR, &err, &el);
    std::printf("SO_ERROR: %s\n", errno_name(err));
    int sock_not = open("/dev/null", O_RDONLY);
    show("connect on a non-socket", connect(sock_not, reinterpret_cast<sockaddr*>(&a2), sizeof a2));
}

// Timeouts the kernel refuses (EINVAL) rather than waits on, even when the
// call would otherwise block: tv_nsec out of [0, 1e9), a negative interval,
// a timeval whose microseconds make it negative.
void case_bad_timeouts() {
    int sv[2];
    pair(sv);
    pollfd one{sv[0], POLLIN, 0};
    for (timespec ts : {timespec{0, 1'000'000'000}, timespec{0, -1}, timespec{-1, 0}}) {
        show("ppoll bad timeout", ppoll(&one, 1, &ts, nullptr));
        fd_set r;
        FD_ZERO(&r);
        FD_SET(sv[0], &r);
        show("pselect bad timeout", pselect(sv[0] + 1, &r, nullptr, nullptr, &ts, nullptr));
        std::uint32_t word = 0;
        show("futex wait bad timeout", static_cast<int>(syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0)));
        show("futex wait bad timeout, value differs", static_cast<int>(syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, &ts, nullptr, 0)));
    }
    for (timeval tv : {timeval{-1, 0}, timeval{0, -1}, timeval{1, -2'000'000}}) {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(sv[0], &r);
        show("select bad timeout", select(sv[0] + 1, &r, nullptr, nullptr, &tv));
    }
    // Whole seconds in tv_usec carry over: a valid, short wait.
    timeval carry{0, 1'000'010};
    fd_set r;
    FD_ZERO(&r);
    FD_SET(sv[1], &r);
    show("select usec carrying into seconds, writable", select(sv[1] + 1, nullptr, &r, nullptr, &carry));
    close(sv[0]);
    close(sv[1]);
}

void case_poll_select() {
    int sv[2];
    pair(sv);
    pollfd pf[3] = {{sv[0], POLLIN, 0}, {sv[1], POLLOUT, 0}, {999, POLLIN, 0}};
    show("poll (in empty, out ready, bad fd)", poll(pf, 3, 50));
    std::printf("revents %d %d %d\n", pf[0].revents, pf[1].revents, pf[2].revents);
    pollfd one{sv[0], POLLIN, 0};
    auto t0 = Clock::now();
    show("poll timeout", poll(&one, 1, 40));
    std::printf("poll waited >= 30ms: %d\n", ms_since(t0) >= 30);
    write(sv[1], "x", 1);
    show("poll readable", poll(&one, 1, 1000));
    std::printf("revents %d\n", one.revents);
    close(sv[1]);
    one.revents = 0;
    char c;
    read(sv[0], &c, 1);
    show("poll after peer closed", poll(&one, 1, 1000));
    std::printf("revents %d\n", one.revents);
    int p[2];
    pipe(p);
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_SET(p[0], &rs);
    FD_SET(p[1], &ws);
    timeval tv{0, 50000};
    show("select (pipe: read empty, write ready)", select(std::max(p[0], p[1]) + 1, &rs, &ws, nullptr, &tv));
    std::printf("sets: r=%d w=%d\n", FD_ISSET(p[0], &rs) ? 1 : 0, FD_ISSET(p[1], &ws) ? 1 : 0);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    tv = {0, 40000};
    t0 = Clock::now();
    show("select timeout", select(p[0] + 1, &rs, nullptr, nullptr, &tv));
    std::printf("select waited >= 30ms: %d, set cleared: %d\n", ms_since(t0) >= 30, FD_ISSET(p[0], &rs) ? 0 : 1);
    timespec ts{0, 30000000};
    FD_SET(p[0], &rs);
    show("pselect timeout", pselect(p[0] + 1, &rs, nullptr, nullptr, &ts, nullptr));
    pollfd pp{p[0], POLLIN, 0};
    show("ppoll timeout", ppoll(&pp, 1, &ts, nullptr));
    int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = p[0];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    epoll_event out[4];
    show("epoll_wait timeout", epoll_wait(ep, out, 4, 30));
    write(p[1], "e", 1);
    int n = epoll_wait(ep, out, 4, 1000);
    std::printf("epoll_wait ready = %d fd match %d events %u\n", n, n == 1 && out[0].data.fd == p[0], out[0].events);
    show("epoll_pwait", epoll_pwait(ep, out, 4, 1000, nullptr));
}

void case_sleep() {
    auto t0 = Clock::now();
    timespec req{0, 20000000}, rem{7, 7};
    show("nanosleep", nanosleep(&req, &rem));
    std::printf("nanosleep >= 20ms: %d\n", ms_since(t0) >= 20);
    t0 = Clock::now();
    show("usleep", usleep(15000));
    std::printf("usleep >= 15ms: %d\n", ms_since(t0) >= 15);
    t0 = Clock::now();
    show("clock_nanosleep rel", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr));
    std::printf("clock_nanosleep >= 20ms: %d\n", ms_since(t0) >= 20);
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 20000000;
    if (now.tv_nsec >= 1000000000) {
        now.tv_nsec -= 1000000000;
        ++now.tv_sec;
    }
    t0 = Clock::now();
    show("clock_nanosleep abs", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, nullptr));
    std::printf("abs >= 15ms: %d\n", ms_since(t0) >= 15);
    timespec bad{0, 2000000000};
    show("nanosleep invalid", nanosleep(&bad, nullptr));
    show("sleep(0)", sleep(0));
}

void case_dns() {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int r = getaddrinfo("localhost", "80", &hints, &res);
    std::printf("getaddrinfo localhost = %d\n", r);
    std::set<std::string> addrs;
    for (addrinfo* a = res; a; a = a->ai_next) {
        char buf[64];
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, buf, sizeof buf);
        addrs.insert(buf);
    }
    for (auto& a : addrs) std::printf("  %s\n", a.c_str());
    if (res) freeaddrinfo(res);
    sockaddr_in a = loopback(80);
    char host[256], serv[64];
    r = getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, host, sizeof host, serv, sizeof serv, NI_NUMERICSERV);
    std::printf("getnameinfo = %d host=%s serv=%s\n", r, host, serv);
    hostent* h = gethostbyname("localhost");
    std::printf("gethostbyname localhost: %s\n", h ? h->h_name : "null");
    hostent he{}, *hr = nullptr;
    char buf[1024];
    int herr = 0;
    r = gethostbyname_r("localhost", &he, buf, sizeof buf, &hr, &herr);
    std::printf("gethostbyname_r = %d %s\n", r, hr ? hr->h_name : "null");
    in_addr lo{htonl(INADDR_LOOPBACK)};
    h = gethostbyaddr(&lo, sizeof lo, AF_INET);
    std::printf("gethostbyaddr 127.0.0.1: %s\n", h ? h->h_name : "null");
    r = getaddrinfo("localhost", "no-such-service-xyz", &hints, &res);
    std::printf("getaddrinfo bad service = %s\n", gai_strerror(r));
}

// Every field of every result, in glibc's order.
void print_addrinfo(const char* node, const char* service, const addrinfo* hints) {
    addrinfo* res = nullptr;
    errno = 0;
    int r = getaddrinfo(node, service, hints, &res);
    std::printf("getaddrinfo(%s, %s, flags=%d family=%d socktype=%d) = %d", node ? node : "NULL",
                service ? service : "NULL", hints ? hints->ai_flags : -1, hints ? hints->ai_family : -1,
                hints ? hints->ai_socktype : -1, r);
    if (r == EAI_SYSTEM) std::printf(" errno=%s", errno_name(errno));
    std::printf("\n");
    for (addrinfo* a = res; a; a = a->ai_next) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (a->ai_family == AF_INET) {
            auto* in = reinterpret_cast<sockaddr_in*>(a->ai_addr);
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (a->ai_family == AF_INET6) {
            auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ai_addr);
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        std::printf("  flags=%d family=%d socktype=%d protocol=%d addrlen=%u %s port %u canon=%s\n", a->ai_flags,
                    a->ai_family, a->ai_socktype, a->ai_protocol, static_cast<unsigned>(a->ai_addrlen), host, port,
                    a->ai_canonname ? a->ai_canonname : "NULL");
    }
    if (res) freeaddrinfo(res);
}

// Numeric hosts and services: answered without a lookup (and, under the
// shim, without the blocking pool: the test checks its pool-job count).
void case_dns_numeric() {
    // (Only names glibc parses as addresses: anything else is looked up.)
    const char* nodes[] = {"127.0.0.1", "::1", "127.1", "0x7f.1", "::ffff:10.0.0.1", "fe80::1%lo", nullptr};
    const char* services[] = {"80", "0", "65536", nullptr};
    const int flags[] = {0, AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, AI_V4MAPPED | AI_ALL, AI_ADDRCONFIG};
    const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
    for (const char* node : nodes)
        for (const char* service : services) {
            if (!node && !service) continue;
            print_addrinfo(node, service, nullptr);
            for (int f : flags)
                for (int fam : families) {
                    addrinfo hints{};
                    hints.ai_flags = f;
                    hints.ai_family = fam;
                    hints.ai_socktype = fam == AF_INET6 ? SOCK_DGRAM : 0;
                    print_addrinfo(node, service, &hints);
                }
        }
    addrinfo bad{};
    bad.ai_flags = 0x4000;  // no such flag
    print_addrinfo("127.0.0.1", "80", &bad);
    bad.ai_flags = 0;
    bad.ai_family = 12345;
    print_addrinfo("127.0.0.1", "80", &bad);

    sockaddr_in a = loopback(8080);
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    a6.sin6_port = htons(443);
    const int ni_flags[] = {NI_NUMERICHOST | NI_NUMERICSERV, NI_NUMERICHOST | NI_NUMERICSERV | NI_DGRAM};
    for (int f : ni_flags) {
        char host[64] = "", serv[32] = "";
        int r = getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, host, sizeof host, serv, sizeof serv, f);
        std::printf("getnameinfo v4 flags=%d = %d %s %s\n", f, r, host, serv);
        r = getnameinfo(reinterpret_cast<sockaddr*>(&a6), sizeof a6, host, sizeof host, serv, sizeof serv, f);
        std::printf("getnameinfo v6 flags=%d = %d %s %s\n", f, r, host, serv);
        r = getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, host, 4, serv, sizeof serv, f);
        std::printf("getnameinfo short buffer = %d\n", r);
        r = getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, nullptr, 0, serv, sizeof serv, NI_NUMERICSERV);
        std::printf("getnameinfo serv only = %d %s\n", r, serv);
    }
    const char* names[] = {"127.0.0.1", "10.1.2.3", "1.2.3.4.5", "::1", "999.1.1.1"};
    for (const char* n : names) {
        h_errno = 0;
        hostent* h = gethostbyname(n);
        std::printf("gethostbyname(%s) = %s h_errno=%d", n, h ? h->h_name : "NULL", h_errno);
        if (h)
            for (char** p = h->h_addr_list; *p; ++p) {
                char buf[64];
                inet_ntop(h->h_addrtype, *p, buf, sizeof buf);
                std::printf(" %s", buf);
            }
        std::printf("\n");
        hostent he{}, *hr = nullptr;
        char buf[1024];
        int herr = 0;
        int r = gethostbyname_r(n, &he, buf, sizeof buf, &hr, &herr);
        std::printf("gethostbyname_r(%s) = %d %s herr=%d\n", n, r, hr ? hr->h_name : "NULL", herr);
    }
}

void case_sendfile() {
    char path[] = "/tmp/green-probe-XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    std::string data(100000, 'f');
    write(f, data.data(), data.size());
    lseek(f, 0, SEEK_SET);
    int sv[2];
    pair(sv);
    // A reader child keeps the socket drained so the blocking sendfile can finish.
    pid_t child = fork();
    if (child == 0) {
        close(sv[1]);
        std::vector<char> buf(65536);
        long total = 0;
        ssize_t n;
        while ((n = read(sv[0], buf.data(), buf.size())) > 0) total += n;
        std::printf("child read %ld\n", total);
        std::fflush(stdout);
        _exit(0);
    }
    close(sv[0]);
    off_t off = 0;
    show("sendfile", sendfile(sv[1], f, &off, data.size()));
    std::printf("offset advanced to %ld\n", static_cast<long>(off));
    std::fflush(stdout);
    close(sv[1]);
    int status = 0;
    waitpid(child, &status, 0);
    std::printf("child exit %d\n", WEXITSTATUS(status));
}

void case_big_transfer() {
    // A blocking write larger than the socket buffer completes (all bytes),
    // with a child process reading slowly enough to make it wait.
    int sv[2];
    pair(sv);
    pid_t child = fork();
    if (child == 0) {
        close(sv[1]);
        char buf[4096];
        unsigned long sum = 0, total = 0;
        ssize_t n;
        while ((n = read(sv[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; ++i) sum = sum * 31 + static_cast<unsigned char>(buf[i]);
            total += static_cast<unsigned long>(n);
        }
        std::printf("child got %lu bytes checksum %lu\n", total, sum);
        std::fflush(stdout);
        _exit(0);
    }
    close(sv[0]);
    std::vector<char> big(3 << 20);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
    show("write 3 MiB", write(sv[1], big.data(), big.size()));
    std::fflush(stdout);
    close(sv[1]);
    int status = 0;
    waitpid(child, &status, 0);
}

void case_files() {
    // Regular files are passed through (never EAGAIN; see ARCHITECTURE.md).
    char path[] = "/tmp/green-probe-file-XXXXXX";
    int f = mkstemp(path);
    show("write file", write(f, "file data", 9));
    show("lseek", lseek(f, 0, SEEK_SET));
    char buf[32] = {};
    show("read file", read(f, buf, sizeof buf));
    std::printf("data: %s\n", buf);
    show("read at file end", read(f, buf, sizeof buf));
    std::printf("file F_GETFL O_NONBLOCK: %d\n", (fcntl(f, F_GETFL) & O_NONBLOCK) != 0);
    pollfd p{f, POLLIN | POLLOUT, 0};
    show("poll regular file", poll(&p, 1, 1000));
    std::printf("revents %d\n", p.revents);
    close(f);
    unlink(path);
    int null = open("/dev/null", O_RDWR);
    show("write /dev/null", write(null, "x", 1));
    show("read /dev/null", read(null, buf, 1));
    close(null);
}

void case_thread_passthrough() {
    // A thread the shim does not own (part 1) makes its blocking calls for
    // real; the main thread's calls suspend only its fiber. Same output.
    int sv[2];
    pair(sv);
    std::string got;
    std::thread reader([&] {
        char buf[16] = {};
        ssize_t n = read(sv[0], buf, sizeof buf);
        got = std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    });
    timespec ts{0, 10000000};
    nanosleep(&ts, nullptr);
    show("main writes", write(sv[1], "to thread", 9));
    reader.join();
    std::printf("thread read: %s\n", got.c_str());
}

const green::probe::Case kCases[] = {
    {"read_write", case_read_write},   {"vectors", case_vectors},       {"nonblocking_flags", case_nonblocking_flags},
    {"timeouts", case_timeouts},       {"connect_accept", case_connect_accept}, {"poll_select", case_poll_select},
    {"bad_timeouts", case_bad_timeouts},
    {"sleep", case_sleep},             {"dns", case_dns}, {"dns_numeric", case_dns_numeric},               {"sendfile", case_sendfile},
    {"big_transfer", case_big_transfer}, {"files", case_files},       {"thread_passthrough", case_thread_passthrough},
};

}  // namespace

int main(int argc, char** argv) { return green::probe::main("probe", kCases, argc, argv); }
