// A server process for a test: started with its stdout on a pipe, ready once
// it prints "listening on PORT" (no sleeps: the line is the synchronisation),
// stopped with SIGTERM (then SIGKILL) when the object goes away. Shared by the
// e2e example tests and the greenbench/greenrun tests.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace green::test {

class ServerChild {
public:
    // `env` entries are "NAME=value" added to the child's environment.
    explicit ServerChild(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                         std::chrono::milliseconds startup = std::chrono::seconds(10)) {
        int out[2];
        if (pipe2(out, O_CLOEXEC) != 0) std::abort();
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test that crashed or aborted
            dup2(out[1], 1);
            dup2(out[1], 2);
            for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            execvp(args[0], args.data());
            _exit(127);
        }
        close(out[1]);
        fd_ = out[0];
        auto deadline = std::chrono::steady_clock::now() + startup;
        std::string pending;
        while (port_ == 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            char buf[512];
            ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) break;  // exited
            output_.append(buf, static_cast<size_t>(n));
            size_t at = output_.find("listening on ");
            if (at != std::string::npos && output_.find('\n', at) != std::string::npos)
                port_ = std::atoi(output_.c_str() + at + 13);
        }
    }
    ~ServerChild() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            for (int i = 0; i < 200; ++i) {  // at most 2 s, then SIGKILL
                if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                    pid_ = -1;
                    break;
                }
                usleep(10000);
            }
            if (pid_ > 0) {
                kill(pid_, SIGKILL);
                waitpid(pid_, nullptr, 0);
            }
        }
        if (fd_ >= 0) close(fd_);
    }
    ServerChild(const ServerChild&) = delete;
    ServerChild& operator=(const ServerChild&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }

    // Reads the server's output until it contains `needle` (true) or the
    // server closes its output or `limit` passes (false).
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (output_.find(needle) == std::string::npos) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
            char buf[512];
            ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) return output_.find(needle) != std::string::npos;
            output_.append(buf, static_cast<size_t>(n));
        }
        return true;
    }

    // Waits for a server that ends by itself; its exit status, or -1.
    int wait_exit() {
        int status = 0;
        if (pid_ <= 0 || waitpid(pid_, &status, 0) != pid_) return -1;
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    const std::string& output() const { return output_; }

    // Is `library` mapped into the server? (Proof that a preload took effect.)
    bool maps(const std::string& library) const {
        std::ifstream f("/proc/" + std::to_string(pid_) + "/maps");
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str().find(library) != std::string::npos;
    }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    int port_ = 0;
    std::string output_;
};

// A blocking TCP connection to 127.0.0.1:port with a receive timeout, so a
// broken server fails the test instead of hanging it. `buffer_bytes` > 0
// sets both socket buffers before connecting (so the advertised window is
// small too).
inline int connect_to(int port, int timeout_ms = 10000, int buffer_bytes = 0) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (buffer_bytes > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

inline bool send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace green::test
