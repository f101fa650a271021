// Waiting for child processes without blocking the hub: waitpid, wait4, wait,
// waitid, system, pclose run on the blocking pool (the kernel offers no
// readiness for "a child exited" that libev could watch without taking over
// SIGCHLD from the program). WNOHANG calls never block and go straight
// through. fork() itself is handled by the runtime's atfork handlers.
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <green/blocking.hpp>

#include "hook_context.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

namespace {

template <class Fn>
Fn next_fn(const char* name) {
    return reinterpret_cast<Fn>(resolve_next(name));
}

}  // namespace

extern "C" {

pid_t waitpid(pid_t pid, int* status, int options) {
    static auto real = next_fn<pid_t (*)(pid_t, int*, int)>("waitpid");
    if (options & WNOHANG) return real(pid, status, options);
    return blocking_keep_errno([&] { return real(pid, status, options); });
}

pid_t wait(int* status) { return waitpid(-1, status, 0); }

pid_t wait4(pid_t pid, int* status, int options, struct rusage* usage) noexcept {
    static auto real = next_fn<pid_t (*)(pid_t, int*, int, struct rusage*)>("wait4");
    if (options & WNOHANG) return real(pid, status, options, usage);
    return blocking_keep_errno([&] { return real(pid, status, options, usage); });
}

int waitid(idtype_t type, id_t id, siginfo_t* info, int options) {
    static auto real = next_fn<int (*)(idtype_t, id_t, siginfo_t*, int)>("waitid");
    if (options & WNOHANG) return real(type, id, info, options);
    return blocking_keep_errno([&] { return real(type, id, info, options); });
}

int system(const char* command) {
    static auto real = next_fn<int (*)(const char*)>("system");
    if (!command) return real(command);
    return blocking_keep_errno([&] { return real(command); });
}

int pclose(FILE* stream) {
    static auto real = next_fn<int (*)(FILE*)>("pclose");
    return blocking_keep_errno([&] { return real(stream); });
}

}  // extern "C"
