// Every program a test starts goes through here: argv[0] looked up in PATH,
// the test's own environment with "NAME=value" entries added (an entry
// replaces the inherited variable of that name), stdio redirected to fds the
// test chose. The argument and environment arrays are built before fork, so
// the child only rearranges fds and execs. A child never outlives the test
// (PR_SET_PDEATHSIG), and an exit status reads as a shell's does: the code,
// or 128 + the signal that killed it. A captured run that outlives its limit
// is sent SIGQUIT first (under the shim: every fiber, what it waits on and
// where, on its stderr), then killed, so a hang fails its own test with that
// dump instead of stalling the whole suite.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "temp_dir.hpp"

extern char** environ;

namespace green::test {

inline int exit_code(int wait_status) {
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

class Command {
public:
    Command(const std::vector<std::string>& argv, const std::vector<std::string>& env) : strings_(argv) {
        for (char** e = environ; *e; ++e) {
            const char* eq = std::strchr(*e, '=');
            const std::size_t name_len = eq ? static_cast<std::size_t>(eq - *e) + 1 : std::strlen(*e);
            bool replaced = false;
            for (const auto& add : env) replaced |= add.compare(0, name_len, *e, name_len) == 0;
            if (!replaced) strings_.emplace_back(*e);
        }
        strings_.insert(strings_.end(), env.begin(), env.end());
        for (std::size_t i = 0; i < strings_.size(); ++i) {
            (i < argv.size() ? argv_ : envp_).push_back(strings_[i].data());
        }
        argv_.push_back(nullptr);
        envp_.push_back(nullptr);
    }
    Command(const Command&) = delete;
    Command& operator=(const Command&) = delete;

    // Replaces this process; returns only when the exec failed (errno says why).
    void exec() const { execvpe(argv_[0], argv_.data(), envp_.data()); }

    // Starts the command with fds `in`, `out`, `err` as its stdio (-1: this
    // process' own). Returns the child's pid.
    pid_t spawn(int in = -1, int out = -1, int err = -1) const {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            // As a command started from a terminal: a suite run in the
            // background (`bash scripts/test.sh &`) inherits SIGINT and SIGQUIT
            // ignored, and the shim honours an ignored SIGQUIT by offering no
            // dump.
            struct sigaction default_action {};
            default_action.sa_handler = SIG_DFL;
            sigaction(SIGINT, &default_action, nullptr);
            sigaction(SIGQUIT, &default_action, nullptr);
            if (in >= 0) dup2(in, 0);
            if (out >= 0) dup2(out, 1);
            if (err >= 0) dup2(err, 2);
            exec();
            _exit(127);
        }
        return pid;
    }

private:
    std::vector<std::string> strings_;  // argv, then the environment
    std::vector<char*> argv_, envp_;
};

struct Captured {
    std::string out;
    std::string err;
    int status = -1;  // exit status, or 128+signal
};

// Waits for `pid` to exit, at most `limit_ms`; true if it did (reaped, with
// its status in `status`).
inline bool wait_exit_within(pid_t pid, int limit_ms, int& status) {
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) return waitpid(pid, &status, 0) == pid;  // no pidfds: wait without a limit
    pollfd p{pidfd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, limit_ms)) < 0 && errno == EINTR) {
    }
    close(pidfd);
    return r > 0 && waitpid(pid, &status, 0) == pid;
}

// How long a captured run may take before it counts as hung.
constexpr int kCaptureLimitMs = 45'000;

// Runs the command to its end with `stdin_text` as its input.
inline Captured run_capture(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                            const std::string& stdin_text = {}, int limit_ms = kCaptureLimitMs) {
    TempDir dir;
    const std::string in_path = dir / "in", out_path = dir / "out", err_path = dir / "err";
    int in = open(in_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || err < 0 || write(in, stdin_text.data(), stdin_text.size()) < 0) std::abort();
    lseek(in, 0, SEEK_SET);
    int status = 0;
    const pid_t pid = Command(argv, env).spawn(in, out, err);
    std::string hung;
    if (!wait_exit_within(pid, limit_ms, status)) {
        kill(pid, SIGQUIT);
        if (!wait_exit_within(pid, 10'000, status)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        hung = "\n[test harness: " + argv[0] + " had not exited after " + std::to_string(limit_ms / 1000) +
               " s: sent SIGQUIT (the shim's fiber dump is above), then SIGKILL]\n";
    }
    close(in);
    close(out);
    close(err);
    return {slurp(out_path), slurp(err_path) + hung, exit_code(status)};
}

}  // namespace green::test
