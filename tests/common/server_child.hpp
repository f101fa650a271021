// A server process for a test: started with its stdout and stderr on one
// pipe, ready once it prints its port (no sleeps: that line is the
// synchronisation), stopped with SIGTERM, then SIGKILL, when the object goes
// away. Every wait on its output is bounded.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "child.hpp"
#include "proc.hpp"

namespace green::test {

class ServerChild {
public:
    // `env` entries are "NAME=value" added to the child's environment. The
    // port is the number after `port_marker` on the first line that has it,
    // waited for up to `startup` (0: not waited for; port() stays 0).
    explicit ServerChild(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                         std::chrono::milliseconds startup = std::chrono::seconds(10),
                         const std::string& port_marker = "listening on ") {
        int out[2];
        if (pipe2(out, O_CLOEXEC) != 0) std::abort();
        pid_ = Command(argv, env).spawn(-1, out[1], out[1]);
        close(out[1]);
        fd_ = out[0];
        std::size_t at = std::string::npos;
        auto whole_line = [&] {
            at = output_.find(port_marker);
            return at != std::string::npos && output_.find('\n', at) != std::string::npos;
        };
        if (startup.count() > 0 && read_until(whole_line, std::chrono::steady_clock::now() + startup))
            port_ = std::atoi(output_.c_str() + at + port_marker.size());
    }
    ~ServerChild() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            // At most 2 s for a clean exit: the pidfd becomes readable when it ends.
            int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
            pollfd p{pidfd, POLLIN, 0};
            if (pidfd < 0 || poll(&p, 1, 2000) != 1) kill(pid_, SIGKILL);
            if (pidfd >= 0) close(pidfd);
            waitpid(pid_, nullptr, 0);
        }
        if (fd_ >= 0) close(fd_);
    }
    ServerChild(const ServerChild&) = delete;
    ServerChild& operator=(const ServerChild&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    const std::string& output() const { return output_; }

    // Reads the server's output until it contains `needle` (true) or the
    // server closes its output or `limit` passes (false).
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds limit) {
        return wait_for([&] { return output_.find(needle) != std::string::npos; }, limit);
    }
    // The same for any condition on output() (checked before each read).
    template <class Done>
    bool wait_for(Done done, std::chrono::milliseconds limit) {
        return read_until(done, std::chrono::steady_clock::now() + limit);
    }

    // Waits for a server that ends by itself; its exit status, or -1.
    int wait_exit() {
        int status = 0;
        if (pid_ <= 0 || waitpid(pid_, &status, 0) != pid_) return -1;
        pid_ = -1;
        return exit_code(status);
    }

    // Is `library` mapped into the server? (Proof that a preload took effect.)
    bool maps(const std::string& library) const { return proc_maps_contain(pid_, library); }

private:
    template <class Done>
    bool read_until(Done done, std::chrono::steady_clock::time_point deadline) {
        while (!done()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
            char buf[512];
            ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) return done();  // the server closed its output: it exited
            output_.append(buf, static_cast<size_t>(n));
        }
        return true;
    }

    pid_t pid_ = -1;
    int fd_ = -1;
    int port_ = 0;
    std::string output_;
};

}  // namespace green::test
