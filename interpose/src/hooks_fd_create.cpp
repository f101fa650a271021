// Hooks on calls that hand out new fd numbers without being hooked for I/O:
// open, openat, creat (and their *64 twins), eventfd, timerfd_create,
// signalfd, epoll_create, epoll_create1, inotify_init, inotify_init1.
//
// Two jobs. A number just returned was free, so whatever the fd table cached
// for it is stale (the old fd was closed where no hook sees, e.g. inside a
// library): it is forgotten or set afresh. And when the runtime itself
// creates an fd (libev's epoll fd and eventfd), it is moved out of the
// program's way (shim_fds.hpp).
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <cstdarg>

#include "fd_table.hpp"
#include "real.hpp"
#include "shim_fds.hpp"

using namespace green;
using namespace green::interpose;

namespace {

int fresh_number(int fd) noexcept {
    if (fd >= 0) fd_forget(fd);
    return fd;
}

int pollable(int fd, bool nonblock) noexcept {
    if (fd < 0) return fd;
    if (runtime_caller()) return adopt_shim_fd(fd);
    fd_adopt(fd, FdKind::Pollable, nonblock);
    return fd;
}

mode_t mode_arg(int flags, va_list ap) noexcept {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

}  // namespace

extern "C" {

// open and openat carry a mode argument only with O_CREAT or O_TMPFILE; it
// can be read only in the variadic function itself, hence a macro.
#define GREEN_OPEN_WITH_MODE(real, ...)                        \
    do {                                                       \
        va_list ap;                                            \
        va_start(ap, flags);                                   \
        const mode_t mode = mode_arg(flags, ap);               \
        va_end(ap);                                            \
        return fresh_number(real(__VA_ARGS__, flags, mode));   \
    } while (0)

int open(const char* path, int flags, ...) { GREEN_OPEN_WITH_MODE(real_open(), path); }
int open64(const char* path, int flags, ...) { GREEN_OPEN_WITH_MODE(real_open64(), path); }
int openat(int dirfd, const char* path, int flags, ...) { GREEN_OPEN_WITH_MODE(real_openat(), dirfd, path); }
int openat64(int dirfd, const char* path, int flags, ...) { GREEN_OPEN_WITH_MODE(real_openat64(), dirfd, path); }

#undef GREEN_OPEN_WITH_MODE

int creat(const char* path, mode_t mode) { return fresh_number(real_creat()(path, mode)); }
int creat64(const char* path, mode_t mode) { return fresh_number(real_creat64()(path, mode)); }

int eventfd(unsigned int initval, int flags) noexcept {
    return pollable(real_eventfd()(initval, flags), (flags & EFD_NONBLOCK) != 0);
}

int timerfd_create(clockid_t clock, int flags) noexcept {
    return pollable(real_timerfd_create()(clock, flags), (flags & TFD_NONBLOCK) != 0);
}

int signalfd(int fd, const sigset_t* mask, int flags) noexcept {
    int r = real_signalfd()(fd, mask, flags);
    if (r < 0) return r;
    if (fd == -1) return pollable(r, (flags & SFD_NONBLOCK) != 0);
    return r;
}

int epoll_create(int size) noexcept {
    int fd = real_epoll_create()(size);
    return runtime_caller() ? adopt_shim_fd(fd) : fresh_number(fd);
}

int epoll_create1(int flags) noexcept {
    int fd = real_epoll_create1()(flags);
    return runtime_caller() ? adopt_shim_fd(fd) : fresh_number(fd);
}

int inotify_init() noexcept { return fresh_number(real_inotify_init()()); }
int inotify_init1(int flags) noexcept { return fresh_number(real_inotify_init1()(flags)); }

}  // extern "C"
