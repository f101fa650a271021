// Hooks on fd identity and flags: close, dup, dup2, dup3, fcntl (and
// fcntl64), ioctl(FIONBIO).
//
// close: every fiber waiting on the fd (on any hub) is woken first and its
// call fails with EBADF, as the kernel reports for a closed fd; then the
// table forgets the fd; then it is really closed. The runtime's generation
// counter keeps a later fd with the same number from seeing the old one's
// readiness.
//
// Flags: the kernel's O_NONBLOCK stays set on managed fds; F_GETFL reports,
// and F_SETFL / FIONBIO change, the program's own view of it.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdarg>

#include "hook_context.hpp"
#include "real.hpp"

using namespace green;
using namespace green::interpose;

namespace {

// dup2/dup3 onto an open managed fd closes it implicitly.
void before_implicit_close(int fd) noexcept {
    if (fd_lookup(fd)) {
        notify_fd_closing(fd);
        fd_forget(fd);
    }
}

int fcntl_impl(int fd, int cmd, long arg, int (*real)(int, int, ...)) {
    count_call(Family::Fcntl);
    Description* d = fd_lookup(fd);
    if (!d) return real(fd, cmd, arg);
    switch (cmd) {
        case F_GETFL: {
            int flags = real(fd, cmd);
            if (flags < 0) return flags;
            return d->user_nonblock.load() ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
        }
        case F_SETFL: {
            int r = real(fd, cmd, arg | O_NONBLOCK);
            if (r == 0) d->user_nonblock.store((arg & O_NONBLOCK) != 0);
            return r;
        }
        case F_DUPFD:
        case F_DUPFD_CLOEXEC: {
            int nfd = real(fd, cmd, arg);
            if (nfd >= 0) fd_share(fd, nfd);
            return nfd;
        }
        default: return real(fd, cmd, arg);
    }
}

}  // namespace

extern "C" {

int close(int fd) {
    count_call(Family::Close);
    if (fd_lookup(fd)) {
        notify_fd_closing(fd);
        fd_forget(fd);
    }
    return real_close()(fd);
}

int dup(int fd) noexcept {
    int nfd = real_dup()(fd);
    if (nfd >= 0) fd_share(fd, nfd);
    return nfd;
}

int dup3(int oldfd, int newfd, int flags) noexcept {
    if (oldfd != newfd) before_implicit_close(newfd);
    int r = real_dup3()(oldfd, newfd, flags);
    if (r >= 0) fd_share(oldfd, r);
    return r;
}

int dup2(int oldfd, int newfd) noexcept {
    if (oldfd == newfd) return real_dup2()(oldfd, newfd);
    before_implicit_close(newfd);
    int r = real_dup2()(oldfd, newfd);
    if (r >= 0) fd_share(oldfd, r);
    return r;
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);  // every fcntl argument fits a register-sized slot on x86-64
    va_end(ap);
    return fcntl_impl(fd, cmd, arg, real_fcntl());
}

int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return fcntl_impl(fd, cmd, arg, GREEN_NEXT(fcntl64));
}

int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (request == FIONBIO) {
        if (Description* d = fd_lookup(fd)) {
            if (!arg) {
                errno = EFAULT;
                return -1;
            }
            int on = 1;
            int r = real_ioctl()(fd, FIONBIO, &on);  // the kernel flag stays set
            if (r == 0) d->user_nonblock.store(*static_cast<int*>(arg) != 0);
            return r;
        }
    }
    return real_ioctl()(fd, request, arg);
}

}  // extern "C"
