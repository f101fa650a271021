// The libc functions behind every hook: how a hook reaches the next
// definition of its own name (libc's, or another preloaded library's).
//
// Each hook forwards to the real function when it must not or need not
// suspend. real_NAME() returns it, resolved with dlsym(RTLD_NEXT) on first
// use, so a hook that runs before our constructor (another library's
// constructor calling socket(), say) still works. dlsym on an existing
// symbol does not allocate. The pointer's type is libc's own declaration
// of NAME, so no signature is written twice.
//
// Each slot is an atomic that starts null (constant-initialised), never a
// function-local static with a dynamic initializer: that takes a guard
// whose contended wait is a futex call, which from a fiber goes through the
// shim's own futex hook and left EAGAIN in the caller's errno when threads
// on two hubs made their first call of a hook at the same moment. Racing
// first calls both resolve the same pointer; errno is kept across dlsym.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

// glibc's entry points behind the C pthread_cleanup_push/pop macros (only
// declared by pthread.h for C without exceptions).
extern "C" {
void __pthread_register_cancel(__pthread_unwind_buf_t* buf);
void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf);
[[noreturn]] void __pthread_unwind_next(__pthread_unwind_buf_t* buf);
}

namespace green::interpose {

void* resolve_next(const char* name) noexcept;

inline void* next_in(std::atomic<void*>& slot, const char* name) noexcept {
    void* fn = slot.load(std::memory_order_acquire);
    if (fn) [[likely]]
        return fn;
    const int saved_errno = errno;
    fn = resolve_next(name);
    slot.store(fn, std::memory_order_release);
    errno = saved_errno;
    return fn;
}

// One slot per symbol the shim forwards, typed by libc's declaration, and
// private to the shim (not exported, so nothing can interpose on it).
#define GREEN_REAL(name)                                                               \
    [[gnu::visibility("hidden")]] inline auto real_##name() noexcept {                 \
        static std::atomic<void*> fn{nullptr};                                         \
        return reinterpret_cast<decltype(&::name)>(next_in(fn, #name));                \
    }

// fds: creation, I/O, control
GREEN_REAL(socket)
GREEN_REAL(socketpair)
GREEN_REAL(pipe2)
GREEN_REAL(accept4)
GREEN_REAL(connect)
GREEN_REAL(shutdown)
GREEN_REAL(setsockopt)
GREEN_REAL(getsockopt)
GREEN_REAL(open)
GREEN_REAL(open64)
GREEN_REAL(openat)
GREEN_REAL(openat64)
GREEN_REAL(creat)
GREEN_REAL(creat64)
GREEN_REAL(eventfd)
GREEN_REAL(timerfd_create)
GREEN_REAL(signalfd)
GREEN_REAL(epoll_create)
GREEN_REAL(epoll_create1)
GREEN_REAL(inotify_init)
GREEN_REAL(inotify_init1)
GREEN_REAL(read)
GREEN_REAL(readv)
GREEN_REAL(recv)
GREEN_REAL(recvfrom)
GREEN_REAL(recvmsg)
GREEN_REAL(recvmmsg)
GREEN_REAL(write)
GREEN_REAL(writev)
GREEN_REAL(send)
GREEN_REAL(sendto)
GREEN_REAL(sendmsg)
GREEN_REAL(sendmmsg)
GREEN_REAL(sendfile)
GREEN_REAL(splice)
GREEN_REAL(tee)
GREEN_REAL(vmsplice)
GREEN_REAL(close)
GREEN_REAL(fclose)
GREEN_REAL(dup)
GREEN_REAL(dup2)
GREEN_REAL(dup3)
GREEN_REAL(fcntl)
GREEN_REAL(fcntl64)
GREEN_REAL(ioctl)
GREEN_REAL(syscall)
// readiness and sleeps
GREEN_REAL(poll)
GREEN_REAL(ppoll)
GREEN_REAL(select)
GREEN_REAL(pselect)
GREEN_REAL(epoll_wait)
GREEN_REAL(epoll_pwait)
GREEN_REAL(sleep)
GREEN_REAL(usleep)
GREEN_REAL(nanosleep)
GREEN_REAL(clock_nanosleep)
// name lookups
GREEN_REAL(getaddrinfo)
GREEN_REAL(getnameinfo)
GREEN_REAL(gethostbyname)
GREEN_REAL(gethostbyname_r)
GREEN_REAL(gethostbyaddr)
// threads, keys, cancellation
GREEN_REAL(pthread_create)
GREEN_REAL(pthread_join)
GREEN_REAL(pthread_tryjoin_np)
GREEN_REAL(pthread_timedjoin_np)
GREEN_REAL(pthread_detach)
GREEN_REAL(pthread_exit)
GREEN_REAL(pthread_self)
GREEN_REAL(pthread_setname_np)
GREEN_REAL(pthread_getname_np)
GREEN_REAL(pthread_getattr_np)
GREEN_REAL(pthread_kill)
GREEN_REAL(pthread_cancel)
GREEN_REAL(pthread_setaffinity_np)
GREEN_REAL(pthread_getaffinity_np)
GREEN_REAL(pthread_key_create)
GREEN_REAL(pthread_setspecific)
GREEN_REAL(pthread_setcancelstate)
GREEN_REAL(pthread_setcanceltype)
GREEN_REAL(pthread_testcancel)
GREEN_REAL(__pthread_register_cancel)
GREEN_REAL(__pthread_unregister_cancel)
GREEN_REAL(__pthread_unwind_next)
GREEN_REAL(sched_yield)
// semaphores (process-shared ones stay libc's)
GREEN_REAL(sem_init)
GREEN_REAL(sem_destroy)
GREEN_REAL(sem_wait)
GREEN_REAL(sem_trywait)
GREEN_REAL(sem_timedwait)
GREEN_REAL(sem_clockwait)
GREEN_REAL(sem_post)
GREEN_REAL(sem_getvalue)
// signals
GREEN_REAL(pthread_sigmask)
GREEN_REAL(sigprocmask)
GREEN_REAL(sigaction)
GREEN_REAL(signal)
GREEN_REAL(sigpending)
GREEN_REAL(sigwait)
GREEN_REAL(sigwaitinfo)
GREEN_REAL(sigtimedwait)
GREEN_REAL(sigsuspend)
GREEN_REAL(pause)
GREEN_REAL(raise)
GREEN_REAL(kill)
// processes
GREEN_REAL(execve)
GREEN_REAL(execv)
GREEN_REAL(execvp)
GREEN_REAL(execvpe)
GREEN_REAL(fexecve)
GREEN_REAL(posix_spawn)
GREEN_REAL(posix_spawnp)
GREEN_REAL(popen)
GREEN_REAL(pclose)
GREEN_REAL(system)
GREEN_REAL(waitpid)
GREEN_REAL(wait4)
GREEN_REAL(waitid)

#undef GREEN_REAL

// real_NAME(), spelled as a macro.
#define GREEN_NEXT(name) ::green::interpose::real_##name()

}  // namespace green::interpose
