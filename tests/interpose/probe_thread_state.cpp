// Per-thread state as a threaded program sees it: errno, the C++ exception
// state and thread_local / __thread variables (of the program and of a
// dlopen'ed library), each kept by a thread across every kind of blocking
// call the shim turns into a suspension, while other threads of the same
// hub run and change their own. Plain POSIX + std::thread, no green headers;
// the differential test runs it unpatched and under the shim (1 and 2 hubs)
// and compares the output.
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe_main.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <latch>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 8;

void nap_ms(int ms) {
    timespec t{0, ms * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

// Runs `suspend` in kThreads threads at once, each with its own errno value
// set just before; prints whether every thread found its own value after.
// `own_errors` are values the call may set itself, depending on timing (a
// futex wait whose word changed before it slept fails with EAGAIN, and
// libstdc++'s atomic wait leaves that in errno): they count as kept, since
// they are no other thread's.
void errno_across(const char* kind, const std::function<void(int)>& suspend, std::initializer_list<int> own_errors = {}) {
    std::atomic<int> kept{0};
    std::latch started(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] {
            started.arrive_and_wait();
            const int mine = 1000 + i;  // no real call sets these
            errno = mine;
            suspend(i);
            const int after = errno;
            if (after == mine || std::find(own_errors.begin(), own_errors.end(), after) != own_errors.end())
                kept.fetch_add(1);
        });
    }
    for (auto& t : threads) t.join();
    std::printf("errno kept across %s: %d of %d\n", kind, kept.load(), kThreads);
}

void case_errno() {
    errno_across("sleep", [](int) { usleep(2000); });
    errno_across("nanosleep", [](int) {
        timespec t{0, 2000000};
        nanosleep(&t, nullptr);
    });
    errno_across("join", [](int) {
        std::thread t([] { nap_ms(2); });
        t.join();
    });
    {
        std::mutex m;
        errno_across("mutex", [&](int) {
            for (int k = 0; k < 3; ++k) {
                std::lock_guard g(m);
                nap_ms(1);  // held across a suspension: the others wait for it
            }
        });
    }
    {
        std::mutex m;
        std::condition_variable cv;
        int turn = 0;
        errno_across("condvar", [&](int i) {
            std::unique_lock lk(m);
            cv.wait(lk, [&] { return turn == i; });
            ++turn;
            cv.notify_all();
        });
    }
    {
        std::shared_mutex rw;
        errno_across("rwlock", [&](int i) {
            if (i % 2) {
                std::unique_lock w(rw);
                nap_ms(1);
            } else {
                std::shared_lock r(rw);
                nap_ms(1);
            }
        });
    }
    {
        sem_t sem;
        sem_init(&sem, 0, 0);
        std::thread poster([&] {
            for (int i = 0; i < kThreads; ++i) {
                nap_ms(1);
                sem_post(&sem);
            }
        });
        errno_across("semaphore", [&](int) { sem_wait(&sem); });
        poster.join();
        sem_destroy(&sem);
    }
    {
        std::atomic<int> flag{0};
        std::thread setter([&] {
            nap_ms(3);
            flag.store(1);
            flag.notify_all();
        });
        errno_across("futex", [&](int) { flag.wait(0); }, {EAGAIN, EINTR});
        setter.join();
    }
    errno_across("socket", [](int) {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        std::thread peer([&] {
            nap_ms(2);
            (void)!write(sv[1], "x", 1);
        });
        char c;
        (void)!read(sv[0], &c, 1);
        peer.join();
        close(sv[0]);
        close(sv[1]);
    });
    errno_across("poll", [](int) {
        int p[2];
        (void)!pipe(p);
        std::thread peer([&] {
            nap_ms(2);
            (void)!write(p[1], "x", 1);
        });
        pollfd pfd{p[0], POLLIN, 0};
        poll(&pfd, 1, 5000);
        peer.join();
        close(p[0]);
        close(p[1]);
    });
    errno_across("dns", [](int) {
        addrinfo* res = nullptr;
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo("localhost", "80", &hints, &res) == 0) freeaddrinfo(res);
    });
    errno_across("waitpid", [](int) {
        int p[2];
        (void)!pipe(p);
        pid_t child = fork();
        if (child == 0) {
            char c;
            (void)!read(p[0], &c, 1);
            _exit(0);
        }
        std::thread release([&] {
            nap_ms(2);
            (void)!write(p[1], "x", 1);
        });
        int status = 0;
        waitpid(child, &status, 0);
        release.join();
        close(p[0]);
        close(p[1]);
    });
}

// A thread blocks inside a catch block (and in a destructor run by
// unwinding) while the others throw and catch their own exceptions.
constexpr int kCatchers = 100;

struct DuringUnwind {
    int* out;
    ~DuringUnwind() {
        nap_ms(1);
        *out = std::uncaught_exceptions();
    }
};

void case_exceptions() {
    std::atomic<int> what_ok{0}, current_ok{0}, rethrow_ok{0}, uncaught_ok{0}, unwinding_ok{0};
    std::latch started(kCatchers);
    std::vector<std::thread> threads;
    for (int i = 0; i < kCatchers; ++i) {
        threads.emplace_back([&, i] {
            const std::string mine = "connection " + std::to_string(i) + " failed";
            started.arrive_and_wait();
            int during_unwind = -1;
            try {
                try {
                    DuringUnwind d{&during_unwind};
                    throw std::runtime_error(mine);
                } catch (const std::exception& e) {
                    nap_ms(1 + i % 3);  // suspended with the exception caught
                    if (e.what() == mine) what_ok.fetch_add(1);
                    if (std::uncaught_exceptions() == 0) uncaught_ok.fetch_add(1);
                    std::exception_ptr p = std::current_exception();
                    try {
                        std::rethrow_exception(p);
                    } catch (const std::exception& again) {
                        if (again.what() == mine) current_ok.fetch_add(1);
                    }
                    nap_ms(1);
                    throw;
                }
            } catch (const std::runtime_error& outer) {
                if (outer.what() == mine) rethrow_ok.fetch_add(1);
            }
            if (during_unwind == 1) unwinding_ok.fetch_add(1);
        });
    }
    for (auto& t : threads) t.join();
    std::printf("what() after a suspension: %d of %d\n", what_ok.load(), kCatchers);
    std::printf("current_exception after a suspension: %d of %d\n", current_ok.load(), kCatchers);
    std::printf("throw; after a suspension: %d of %d\n", rethrow_ok.load(), kCatchers);
    std::printf("uncaught_exceptions in a catch block: %d of %d\n", uncaught_ok.load(), kCatchers);
    std::printf("uncaught_exceptions in a destructor during unwinding: %d of %d\n", unwinding_ok.load(), kCatchers);
}

// thread_local state: fresh initial values per thread, a per-request
// context kept across blocking reads, destructors once per thread.
std::atomic<int> g_destroyed{0};
struct RequestContext {
    int request = -1;
    std::string trace = "fresh";
    ~RequestContext() { g_destroyed.fetch_add(1); }
};
thread_local RequestContext tl_context;
thread_local int tl_counter = 42;
__thread int c_thread_counter = 7;

void case_thread_locals() {
    constexpr int kRequests = 50;
    std::atomic<int> fresh{0}, kept{0};
    std::latch started(kRequests);
    std::vector<std::thread> threads;
    for (int i = 0; i < kRequests; ++i) {
        threads.emplace_back([&, i] {
            if (tl_counter == 42 && c_thread_counter == 7 && tl_context.request == -1 && tl_context.trace == "fresh")
                fresh.fetch_add(1);
            started.arrive_and_wait();  // every thread exists before any changes its copy
            tl_context.request = i;
            tl_context.trace = "trace-" + std::to_string(i);
            tl_counter = i;
            c_thread_counter = -i;
            int sv[2];
            socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
            std::thread peer([&] {
                nap_ms(1);
                (void)!write(sv[1], "request", 7);
            });
            char buf[16];
            (void)!read(sv[0], buf, sizeof buf);  // blocking read, others run
            peer.join();
            close(sv[0]);
            close(sv[1]);
            if (tl_context.request == i && tl_context.trace == "trace-" + std::to_string(i) && tl_counter == i &&
                c_thread_counter == -i)
                kept.fetch_add(1);
        });
    }
    for (auto& t : threads) t.join();
    // The peers never touched tl_context: only the 50 request threads did.
    std::printf("fresh initial values: %d of %d\n", fresh.load(), kRequests);
    std::printf("kept across a blocking read: %d of %d\n", kept.load(), kRequests);
    std::printf("destructors run: %d\n", g_destroyed.load());
    std::printf("main's copy untouched: %d\n", tl_counter == 42 && c_thread_counter == 7);
}

// A stateful "database" in the probe: one connection per client thread,
// kept in a thread_local; BEGIN/ADD/COMMIT must never interleave on one
// connection. The server answers "ERR" to a BEGIN inside a transaction.
struct Server {
    int listener = -1;
    int port = 0;
    std::atomic<int> committed{0};
    std::atomic<int> errors{0};
};

void serve_connection(Server* s, int fd) {
    bool in_tx = false;
    int pending = 0;
    char line[64];
    std::size_t len = 0;
    for (;;) {
        char c;
        if (read(fd, &c, 1) != 1) break;
        if (c != '\n') {
            if (len < sizeof line - 1) line[len++] = c;
            continue;
        }
        line[len] = '\0';
        len = 0;
        const char* reply = "OK\n";
        if (std::strcmp(line, "BEGIN") == 0) {
            if (in_tx) reply = "ERR already in a transaction\n", s->errors.fetch_add(1);
            in_tx = true;
            pending = 0;
        } else if (std::strncmp(line, "ADD ", 4) == 0) {
            if (!in_tx) reply = "ERR no transaction\n", s->errors.fetch_add(1);
            pending += std::atoi(line + 4);
        } else if (std::strcmp(line, "COMMIT") == 0) {
            if (!in_tx) reply = "ERR no transaction\n", s->errors.fetch_add(1);
            else s->committed.fetch_add(pending);
            in_tx = false;
        }
        (void)!write(fd, reply, std::strlen(reply));
    }
    close(fd);
}

struct Connection {
    int fd = -1;
    ~Connection() {
        if (fd >= 0) close(fd);
    }
};
thread_local Connection tl_connection;

// How a client waits for its reply: in read() itself, or first in poll()
// on the connection, as an event-driven client such as pgbench or libpq does.
enum class ReplyWait { InRead, InPoll };

std::string call(const char* command, ReplyWait wait) {
    (void)!write(tl_connection.fd, command, std::strlen(command));
    std::string reply;
    char c;
    for (;;) {
        if (wait == ReplyWait::InPoll) {
            pollfd pfd{tl_connection.fd, POLLIN, 0};
            if (poll(&pfd, 1, -1) != 1) break;
        }
        if (read(tl_connection.fd, &c, 1) != 1 || c == '\n') break;
        reply += c;
    }
    return reply;
}

void thread_local_connection(ReplyWait wait) {
    constexpr int kClients = 100;
    Server s;
    s.listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s.listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(s.listener, 512);
    socklen_t alen = sizeof a;
    getsockname(s.listener, reinterpret_cast<sockaddr*>(&a), &alen);
    std::vector<std::thread> servers;
    std::thread acceptor([&] {
        for (int i = 0; i < kClients; ++i) {
            int fd = accept(s.listener, nullptr, nullptr);
            if (fd < 0) break;
            servers.emplace_back(serve_connection, &s, fd);
        }
    });
    std::atomic<int> client_errors{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&, i] {
            if (tl_connection.fd < 0) {
                tl_connection.fd = socket(AF_INET, SOCK_STREAM, 0);
                if (connect(tl_connection.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) client_errors++;
            }
            for (int tx = 0; tx < 3; ++tx) {
                if (call("BEGIN\n", wait) != "OK") client_errors++;
                if (call(("ADD " + std::to_string(i + 1) + "\n").c_str(), wait) != "OK") client_errors++;
                nap_ms(i % 2);  // other clients' transactions run meanwhile
                if (call("COMMIT\n", wait) != "OK") client_errors++;
            }
        });
    }
    for (auto& t : clients) t.join();  // their thread_local connections close here
    acceptor.join();
    for (auto& t : servers) t.join();
    close(s.listener);
    std::printf("committed total: %d (expected %d)\n", s.committed.load(), 3 * kClients * (kClients + 1) / 2);
    std::printf("server-side errors: %d, client-side errors: %d\n", s.errors.load(), client_errors.load());
}

void case_thread_local_connection() { thread_local_connection(ReplyWait::InRead); }
void case_thread_local_connection_poll() { thread_local_connection(ReplyWait::InPoll); }

// A library loaded with dlopen keeps __thread state per thread too.
void case_dlopen_tls() {
    const char* path = std::getenv("GREEN_TLS_MODULE");
    void* lib = path ? dlopen(path, RTLD_NOW) : nullptr;
    if (!lib) {
        std::printf("dlopen failed: %s\n", path ? dlerror() : "GREEN_TLS_MODULE unset");
        return;
    }
    auto bump = reinterpret_cast<int (*)()>(dlsym(lib, "tls_module_bump"));
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&] {
            int a = bump();
            nap_ms(1);
            int b = bump();
            nap_ms(1);
            int c = bump();
            if (a == 1 && b == 2 && c == 3) ok.fetch_add(1);
        });
    }
    for (auto& t : threads) t.join();
    std::printf("dlopen'ed __thread counters private to each thread: %d of %d\n", ok.load(), kThreads);
    std::printf("main's counter starts fresh: %d\n", bump());
}

// Threads that each use thread_local objects, malloc, and a dlopen'ed
// library's __thread, created and joined one after another: memory must
// follow the live threads (one), not the number ever created.
long rss_kib() {
    FILE* f = std::fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

void churn(long n) {
    for (long i = 0; i < n; ++i) {
        std::thread t([] {
            tl_context.request = 1;
            tl_context.trace.assign(64, 'x');  // heap, freed by the destructor
            void* p = std::malloc(200);
            std::free(p);
        });
        t.join();
    }
}

void case_thread_churn() {
    const long n = std::getenv("GREEN_CHURN") ? std::atol(std::getenv("GREEN_CHURN")) : 50000;
    churn(n / 10);  // warm: caches, pools, arenas reach their steady size
    const long before = rss_kib();
    churn(n);
    const long after = rss_kib();
    std::printf("threads created and joined: %ld, resident memory grew by more than 1 MiB: %s\n", n + n / 10,
                after - before > 1024 ? "yes" : "no");
    if (std::getenv("GREEN_CHURN")) std::fprintf(stderr, "rss %ld KiB -> %ld KiB\n", before, after);
}

const green::probe::Case kCases[] = {
    {"errno", case_errno},
    {"exceptions", case_exceptions},
    {"thread_locals", case_thread_locals},
    {"thread_local_connection", case_thread_local_connection},
    {"thread_local_connection_poll", case_thread_local_connection_poll},
    {"dlopen_tls", case_dlopen_tls},
    {"thread_churn", case_thread_churn},
};

}  // namespace

int main(int argc, char** argv) { return green::probe::main("probe_thread_state", kCases, argc, argv); }
