// Runs a command with extra environment and captures stdout, stderr and the
// exit status; shared by the interpose tests that compare patched and
// unpatched runs of the same program.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace green::test {

struct Captured {
    std::string out;
    std::string err;
    int status = -1;  // exit status, or 128+signal
};

inline std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline std::string env_or_die(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) {
        std::fprintf(stderr, "test setup: environment variable %s is not set (run through meson test)\n", name);
        std::abort();
    }
    return v;
}

// `env` entries are "NAME=value" added to the child's environment.
inline Captured run_capture(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                            const std::string& stdin_text = {}) {
    char out_path[] = "/tmp/green-test-out-XXXXXX";
    char err_path[] = "/tmp/green-test-err-XXXXXX";
    char in_path[] = "/tmp/green-test-in-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path), in_fd = mkstemp(in_path);
    if (write(in_fd, stdin_text.data(), stdin_text.size()) < 0) std::abort();
    lseek(in_fd, 0, SEEK_SET);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in_fd, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(out_fd);
    close(err_fd);
    close(in_fd);
    Captured c;
    c.out = slurp(out_path);
    c.err = slurp(err_path);
    c.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    unlink(out_path);
    unlink(err_path);
    unlink(in_path);
    return c;
}

inline std::string preload_env() { return "LD_PRELOAD=" + env_or_die("GREEN_PRELOAD"); }

}  // namespace green::test
