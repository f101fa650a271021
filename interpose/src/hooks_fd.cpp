// Hooks on fd identity and flags: close, close_range, closefrom, fclose, dup,
// dup2, dup3, fcntl (and fcntl64), ioctl(FIONBIO).
//
// close: every fiber waiting on the fd (on any hub) is woken first and its
// call fails with EBADF, as the kernel reports for a closed fd; then the
// table forgets the fd; then it is really closed. The runtime's generation
// counter keeps a later fd with the same number from seeing the old one's
// readiness. A socket with SO_LINGER may block in close until its data is
// gone: that close runs on the blocking pool.
//
// Flags pass to the kernel untouched (the shim never sets O_NONBLOCK); the
// program's O_NONBLOCK is only cached, so hooks know without a syscall
// whether the program expects EAGAIN.
//
// The runtime's own fds (shim_fds.hpp) do not exist for the program.
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>

#include "hook_context.hpp"
#include "real.hpp"
#include "shim_fds.hpp"

using namespace green;
using namespace green::interpose;

namespace {

// The program's view: a shim fd is not open.
bool hidden(int fd) noexcept { return is_shim_fd(fd) && !runtime_caller(); }

void before_close(int fd) noexcept {
    if (fd_lookup(fd)) {
        notify_fd_closing(fd);
        fd_forget(fd);
    }
}

void after_dup(int oldfd, int newfd) noexcept {
    if (newfd < 0) return;
    if (is_shim_fd(oldfd)) fd_adopt(newfd, FdKind::Shim, false);  // libev re-creating its eventfd after fork
    else fd_share(oldfd, newfd);
}

int fcntl_impl(int fd, int cmd, long arg, int (*real)(int, int, ...)) {
    count_call(Family::Fcntl);
    if (hidden(fd)) return fail_with(EBADF);
    switch (cmd) {
        case F_SETFL: {
            int r = real(fd, cmd, arg);
            if (r == 0)
                if (Description* d = fd_lookup(fd)) d->nonblock.store((arg & O_NONBLOCK) != 0);
            return r;
        }
        case F_DUPFD:
        case F_DUPFD_CLOEXEC: {
            int nfd = real(fd, cmd, arg);
            after_dup(fd, nfd);
            return nfd;
        }
        default: return real(fd, cmd, arg);
    }
}

int real_close_range(unsigned first, unsigned last, int flags) noexcept {
    // libc's syscall(), not ours: that one routes close_range back here.
    return static_cast<int>(real_syscall()(SYS_close_range, first, last, flags));
}

}  // namespace

extern "C" {

int close(int fd) {
    count_call(Family::Close);
    Description* d = fd_lookup(fd);
    if (d && d->kind == FdKind::Shim) {
        if (!runtime_caller()) return fail_with(EBADF);
        forget_shim_fd(fd);
        fd_forget(fd);
        return real_close()(fd);
    }
    const bool lingers = d && d->linger.load(std::memory_order_relaxed);
    before_close(fd);
    if (lingers) return blocking_keep_errno([&] { return real_close()(fd); });
    return real_close()(fd);
}

int close_range(unsigned first, unsigned last, int flags) noexcept {
    count_call(Family::Close);
    if (first > last) return fail_with(EINVAL);
    if (flags & CLOSE_RANGE_CLOEXEC) return real_close_range(first, last, flags);  // ours are close-on-exec already
    int shim[256];
    const int n = shim_fd_list(shim, 256);
    // Wake waiters on every fd the table knows in the range, then close the
    // range around the shim's fds.
    fd_each_known(first, last, [](int fd, Description* d) {
        if (d->kind != FdKind::Shim) before_close(fd);
    });
    unsigned from = first;
    for (int i = 0; i < n && from <= last; ++i) {
        const unsigned s = static_cast<unsigned>(shim[i]);
        if (s < from || s > last) continue;
        if (s > from && real_close_range(from, s - 1, flags) != 0) return -1;
        if (s == ~0u) return 0;
        from = s + 1;
    }
    if (from <= last && from >= first) return real_close_range(from, last, flags);
    return 0;
}

void closefrom(int lowfd) noexcept {
    if (lowfd < 0) lowfd = 0;
    close_range(static_cast<unsigned>(lowfd), ~0u, 0);
}

int fclose(FILE* f) {
    // stdio closes its fd where no hook sees; the number must not keep a
    // stale entry (nor a waiter) once the stream is gone.
    const int fd = f ? fileno(f) : -1;
    if (fd >= 0 && !is_shim_fd(fd)) before_close(fd);
    return real_fclose()(f);
}

int dup(int fd) noexcept {
    if (hidden(fd)) return fail_with(EBADF);
    int nfd = real_dup()(fd);
    after_dup(fd, nfd);
    return nfd;
}

int dup3(int oldfd, int newfd, int flags) noexcept {
    if (!runtime_caller() && (is_shim_fd(oldfd) || is_shim_fd(newfd))) return fail_with(EBADF);
    if (oldfd != newfd && !is_shim_fd(newfd)) before_close(newfd);
    int r = real_dup3()(oldfd, newfd, flags);
    after_dup(oldfd, r);
    return r;
}

int dup2(int oldfd, int newfd) noexcept {
    if (!runtime_caller() && (is_shim_fd(oldfd) || is_shim_fd(newfd))) return fail_with(EBADF);
    if (oldfd == newfd) return real_dup2()(oldfd, newfd);
    if (!is_shim_fd(newfd)) before_close(newfd);
    int r = real_dup2()(oldfd, newfd);
    after_dup(oldfd, r);
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
    return fcntl_impl(fd, cmd, arg, real_fcntl64());
}

int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    int r = real_ioctl()(fd, request, arg);
    if (r == 0 && request == FIONBIO)
        if (Description* d = fd_lookup(fd)) d->nonblock.store(*static_cast<int*>(arg) != 0);
    return r;
}

}  // extern "C"
