// Waiting for child processes without blocking the hub: waitpid, wait4, wait,
// waitid, system, pclose run on the blocking pool (the kernel offers no
// readiness for "a child exited" that libev could watch without taking over
// SIGCHLD from the program). WNOHANG calls never block and go straight
// through. fork() itself is handled by the runtime's atfork handlers.
#include <signal.h>
//
// vfork() runs as fork(), which POSIX allows: a vfork child shares the
// parent's memory, so its hooked close/dup2 would edit the parent's fd table
// and fiber state (and its stack frames would be the parent fiber's).
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <green/blocking.hpp>

#include "hook_context.hpp"
#include "real.hpp"
#include "signals.hpp"

using namespace green;
using namespace green::interpose;


extern "C" {

pid_t vfork() noexcept { return fork(); }

pid_t waitpid(pid_t pid, int* status, int options) {
    auto real = real_waitpid();
    if (options & WNOHANG) return real(pid, status, options);
    ChildWait child_wait;
    return blocking_keep_errno([&] { return real(pid, status, options); });
}

pid_t wait(int* status) { return waitpid(-1, status, 0); }

pid_t wait4(pid_t pid, int* status, int options, struct rusage* usage) noexcept {
    auto real = real_wait4();
    if (options & WNOHANG) return real(pid, status, options, usage);
    ChildWait child_wait;
    return blocking_keep_errno([&] { return real(pid, status, options, usage); });
}

int waitid(idtype_t type, id_t id, siginfo_t* info, int options) {
    auto real = real_waitid();
    if (options & WNOHANG) return real(type, id, info, options);
    ChildWait child_wait;
    return blocking_keep_errno([&] { return real(type, id, info, options); });
}

int system(const char* command) {
    auto real = real_system();
    if (!command) return real(command);
    // The command inherits the mask of the thread calling system(): the
    // pool thread takes on the calling thread's for the call.
    sigset_t mask;
    bool have_mask = fiber_context() && signals_program_mask(&mask);
    return blocking_keep_errno([&] {
        sigset_t saved;
        if (have_mask) real_pthread_sigmask()(SIG_SETMASK, &mask, &saved);
        int r = real(command);
        if (have_mask) real_pthread_sigmask()(SIG_SETMASK, &saved, nullptr);
        return r;
    });
}

int pclose(FILE* stream) {
    auto real = real_pclose();
    // pclose closes the pipe where no hook sees: drop what was cached for it.
    if (stream) {
        const int fd = fileno(stream);
        if (fd >= 0 && fd_lookup(fd)) {
            notify_fd_closing(fd);
            fd_forget(fd);
        }
    }
    return blocking_keep_errno([&] { return real(stream); });
}

}  // extern "C"
